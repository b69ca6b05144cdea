"""The features columns `signal_rows.signals_step` reads; the signals asset loads only these (16 of 45).

A light module of its own: the code location imports it without loading the engine's JIT kernels.
A column signals_step starts to read belongs here too (a missing one would read as absent there).
"""

SIGNAL_INPUTS = ["symbol", "agg_trade_id", "event_time_ms", "recv_time_ms", "price", "spread_bps", "z_ofi", "z_cvd",
                 "lag_ms", "event_lag_ms", "cvd_accepted", "trade_rate_per_min", "realized_vol", "missing_msgs_rate",
                 "resync", "reconnect"]
