"""Assets: wiring only; computation lives in plain modules."""
