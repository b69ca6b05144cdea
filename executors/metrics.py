"""Executor metrics on a per-instance CollectorRegistry (two executors in one process never clash),
and deterministic log sampling: 1 % of passes, every failure."""

from __future__ import annotations

import hashlib
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from executors.contract import ExecResult

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def stable_bucket(key: str, modulo: int) -> int:
    """Deterministic bucket of a key (Python's hash() is salted per process; sha1 is not)."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") % modulo


class ExecutorMetrics:
    def __init__(self, executor: str, registry: CollectorRegistry | None = None) -> None:
        self.executor = executor
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.submit_total = Counter("executor_submit_total", "orders submitted, by result and reason",
                                    ["result", "reason"], registry=r)
        self.latency_ms = Histogram("executor_latency_ms", "submit-to-ack latency, ms",
                                    buckets=LATENCY_BUCKETS_MS, registry=r)
        self.throttle_total = Counter("executor_throttle_total", "orders throttled before sending",
                                      ["reason"], registry=r)
        self.pre_deny_total = Counter("executor_pre_deny_total", "orders denied by pre-trade/risk gates",
                                      ["reason"], registry=r)
        self.retry_total = Counter("executor_retry_total", "requests retried after a network error or 5xx",
                                   ["reason"], registry=r)
        self.shadow_parity_ratio = Gauge("executor_shadow_parity_ratio",
                                         "share of orders where primary and shadow agree", registry=r)

    def observe(self, res: ExecResult) -> None:
        reason = res.reject_reason.split(":", 1)[0] if res.reject_reason else ""
        self.submit_total.labels(result=res.status, reason=reason).inc()
        if res.latency_ms is not None:
            self.latency_ms.observe(res.latency_ms)

    def value(self, name: str, **labels: str) -> float:
        v = self.registry.get_sample_value(name, labels)
        return 0.0 if v is None else float(v)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


# rejections the strategy chose (sampling, gates) are decisions, not failures: logged like passes
DELIBERATE_PREFIXES = ("paper_sampled_out", "throttle:", "pre_deny:", "risk:")


def is_failure(res: ExecResult) -> bool:
    return res.status == "rejected" and not res.reject_reason.startswith(DELIBERATE_PREFIXES)


class SampledLogger:
    """Logs 1 in ``pass_every`` passes (chosen by a hash of the client_order_id) and every failure."""

    def __init__(self, logger: logging.Logger, pass_every: int = 100) -> None:
        self.logger = logger
        self.pass_every = pass_every
        self.logged = 0

    def should_log(self, res: ExecResult) -> bool:
        if is_failure(res):
            return True
        return stable_bucket(res.client_order_id, self.pass_every) == 0

    def log(self, res: ExecResult) -> bool:
        if not self.should_log(res):
            return False
        self.logged += 1
        level = logging.WARNING if is_failure(res) else logging.INFO
        self.logger.log(level, "order %s %s %s reason=%s px_sent=%s px_fill=%s slip_bps=%s",
                        res.client_order_id, res.symbol, res.status, res.reject_reason or "-",
                        res.px_sent, res.px_fill, res.slippage_bps)
        return True
