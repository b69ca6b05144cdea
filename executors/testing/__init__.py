"""Test doubles that speak the real protocols (a fake Binance USD-M order endpoint)."""

# throwaway credentials for the fake exchange in tests (never real keys)
TEST_API_KEY = "test-key-9f8e7d6c5b4a39281706"
TEST_API_SECRET = "test-secret-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
