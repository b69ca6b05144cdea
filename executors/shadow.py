"""ShadowExecutor: sends every order to a primary and a shadow executor, answers with the primary,
and records whether the two agree on intent price, status and reject reason
(``executor_shadow_parity_ratio`` = agreeing actions / actions). Cancels and amends are recorded the
same way (``action``). A failing shadow never affects the primary's answer; its exception, on any
action, is recorded as a disagreement with status ``error``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from executors.contract import AmendResult, CancelResult, ExecResult, IExecutor, OrderCtx
from executors.metrics import ExecutorMetrics


@dataclass(frozen=True)
class ShadowRecord:
    client_order_id: str
    px_intent: float
    primary_status: str
    shadow_status: str
    primary_reason: str
    shadow_reason: str
    px_sent_agree: bool
    status_agree: bool
    reject_agree: bool
    action: str = "submit"

    @property
    def agree(self) -> bool:
        return self.px_sent_agree and self.status_agree and self.reject_agree

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "agree": self.agree}


class ShadowExecutor:
    name = "shadow"

    def __init__(self, primary: IExecutor, shadow: IExecutor, metrics: ExecutorMetrics | None = None) -> None:
        self.primary, self.shadow = primary, shadow
        self.metrics = metrics or ExecutorMetrics(self.name)
        self.records: list[ShadowRecord] = []
        self._agree = 0

    def submit(self, ctx: OrderCtx) -> ExecResult:
        p = self.primary.submit(ctx)
        try:
            answer = self.shadow.submit(ctx)
            s: ExecResult | None = answer
            s_status: str = answer.status
            s_reason = answer.reject_reason
        except Exception as e:  # the shadow must never break the primary path
            s, s_status, s_reason = None, "error", f"shadow_error:{type(e).__name__}"
        rec = ShadowRecord(
            client_order_id=p.client_order_id, px_intent=ctx.px_intent, primary_status=p.status,
            shadow_status=s_status, primary_reason=p.reject_reason, shadow_reason=s_reason,
            px_sent_agree=s is not None and p.px_sent == s.px_sent,
            status_agree=p.status == s_status,
            reject_agree=(p.status == "rejected") == (s_status == "rejected") and p.reject_reason == s_reason,
        )
        if not p.duplicate:
            self._record(rec)
            self.metrics.observe(p)
        return p

    @property
    def parity_ratio(self) -> float:
        return self._agree / len(self.records) if self.records else 1.0

    def _record(self, rec: ShadowRecord) -> None:
        self.records.append(rec)
        self._agree += rec.agree
        self.metrics.shadow_parity_ratio.set(self.parity_ratio)

    def _action(self, action: str, p: CancelResult | AmendResult, call: Callable[[], CancelResult | AmendResult]
                ) -> None:
        """The shadow's answer to a cancel/amend, recorded beside the primary's (an exception as ``error``)."""
        try:
            answer = call()
            s: CancelResult | AmendResult | None = answer
            s_status: str = answer.status
            s_reason = answer.reason
        except Exception as e:  # the shadow must never break the primary path
            s, s_status, s_reason = None, "error", f"shadow_error:{type(e).__name__}"
        px_agree = s is not None and getattr(p, "px_sent", None) == getattr(s, "px_sent", None)
        self._record(ShadowRecord(
            client_order_id=p.client_order_id, px_intent=float("nan"), primary_status=p.status,
            shadow_status=s_status, primary_reason=p.reason, shadow_reason=s_reason, px_sent_agree=px_agree,
            status_agree=p.status == s_status,
            reject_agree=(p.status == "rejected") == (s_status == "rejected") and p.reason == s_reason, action=action))

    def cancel(self, symbol: str, client_order_id: str) -> CancelResult:
        p = self.primary.cancel(symbol, client_order_id)
        self._action("cancel", p, lambda: self.shadow.cancel(symbol, client_order_id))
        return p

    def amend(self, symbol: str, client_order_id: str, px: float | None = None,
              qty: float | None = None) -> AmendResult:
        p = self.primary.amend(symbol, client_order_id, px, qty)
        self._action("amend", p, lambda: self.shadow.amend(symbol, client_order_id, px, qty))
        return p

    def flush(self) -> None:
        self.primary.flush()
        self.shadow.flush()

    def close(self) -> None:
        self.primary.close()
        self.shadow.close()
