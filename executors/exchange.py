"""ExchangeExecutor: Binance USD-M futures order REST client (``/fapi/v1/order``).

* Signed requests: every parameter goes in the query string, ``signature`` = HMAC-SHA256 of that
  exact string with the API secret, API key in ``X-MBX-APIKEY``; ``timestamp`` + ``recvWindow``.
* Keys come from the environment (``api_key_env``/``api_secret_env``) and are never logged, put in
  an exception message or shown by ``repr``.
* Retries only on network errors/timeouts and 5xx, at most ``max_retries`` (<= 3), sleeping
  ``min(backoff_max_s, backoff_base_s * 2**k) * (1 + jitter_frac * u)`` with ``u`` from a seeded
  generator. 4xx answers and risk rejections are final and never retried.
* A lost ack never duplicates: after a timeout, dropped connection or 5xx the order may exist, so
  it is queried by ``origClientOrderId`` before anything is resent; ``-4116`` (duplicate
  client id) also resolves to the existing order. The client order id is the stable hash of the
  intent, so even a resend that races the exchange cannot create a second order.
* ``sent_ts_ms``/``ack_ts_ms``/``latency_ms`` are wall-clock here (this is the live I/O edge), from
  an injectable ``clock``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field

from executors.contract import AmendResult, CancelResult, ExecResult, OrderCtx, client_order_id
from executors.metrics import ExecutorMetrics, SampledLogger
from executors.rounding import align, align_order, slippage_bps

log = logging.getLogger("executors.exchange")

BASE_URLS = {"testnet": "https://testnet.binancefuture.com", "live": "https://fapi.binance.com"}
ORDER_PATH = "/fapi/v1/order"
NETWORK_ERRORS = (httpx.TimeoutException, httpx.TransportError)


class ExchangeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: Literal["testnet", "live"] = "testnet"
    base_url: str | None = Field(None, pattern=r"^https?://", description="overrides env (e.g. a local fake)")
    api_key_env: str = Field("BINANCE_API_KEY", min_length=1)
    api_secret_env: str = Field("BINANCE_API_SECRET", min_length=1)
    recv_window_ms: int = Field(5_000, gt=0, le=60_000)
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_retries: int = Field(3, ge=0, le=3)
    backoff_base_s: float = Field(0.2, ge=0, le=10)
    backoff_max_s: float = Field(5.0, ge=0, le=60)
    jitter_frac: float = Field(0.25, ge=0, le=1)
    seed: int = Field(7, ge=0)
    order_type: Literal["LIMIT", "MARKET"] = "LIMIT"
    time_in_force: Literal["GTC", "IOC", "FOK", "GTX"] = "IOC"

    @property
    def url(self) -> str:
        return self.base_url or BASE_URLS[self.env]


class _Final(Exception):
    """A definitive answer from the exchange (4xx): not retried."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status, self.code, self.msg = status, code, msg


class _Uncertain(Exception):
    """No definitive answer (network error, timeout, 5xx): the request may or may not have acted."""


class ExchangeExecutor:
    name = "exchange"

    def __init__(self, cfg: ExchangeConfig | None = None, *, metrics: ExecutorMetrics | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.cfg = cfg or ExchangeConfig()
        # Given (a Dagster resource resolves them from its EnvVars), or read from the environment.
        key, secret = credentials or (os.environ.get(self.cfg.api_key_env), os.environ.get(self.cfg.api_secret_env))
        if not key or not secret:
            missing = [n for n, v in ((self.cfg.api_key_env, key), (self.cfg.api_secret_env, secret)) if not v]
            raise ValueError(f"exchange credentials missing: set environment variable(s) {missing}")
        self.__key, self.__secret = key, secret.encode()
        self.metrics = metrics or ExecutorMetrics(self.name)
        self.slog = SampledLogger(log)
        self.sleep, self.clock = sleep, clock
        self.rng = random.Random(self.cfg.seed)
        self.sleeps: list[float] = []
        self.http = httpx.Client(base_url=self.cfg.url, timeout=self.cfg.timeout_s, transport=transport,
                                 headers={"X-MBX-APIKEY": key})
        self.orders: dict[str, ExecResult] = {}
        self._ctx: dict[str, OrderCtx] = {}

    def __repr__(self) -> str:
        return f"ExchangeExecutor(url={self.cfg.url!r}, env={self.cfg.env!r})"

    # ---- transport ----------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _signed(self, params: dict[str, Any]) -> str:
        p = {k: v for k, v in params.items() if v is not None}
        p["recvWindow"] = self.cfg.recv_window_ms
        p["timestamp"] = self._now_ms()
        qs = urlencode(p)
        sig = hmac.new(self.__secret, qs.encode(), hashlib.sha256).hexdigest()
        return f"{qs}&signature={sig}"

    def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One signed request. Raises _Uncertain (retryable) or _Final (4xx)."""
        try:
            r = self.http.request(method, f"{ORDER_PATH}?{self._signed(params)}")
        except NETWORK_ERRORS as e:
            log.info("%s %s: network error %s", method, ORDER_PATH, type(e).__name__)
            raise _Uncertain(type(e).__name__) from None
        if r.status_code >= 500:
            raise _Uncertain(f"http_{r.status_code}")
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code >= 400:
            raise _Final(r.status_code, int(body.get("code", 0) or 0), str(body.get("msg", "")))
        return body

    def _backoff(self, k: int) -> None:
        c = self.cfg
        d = min(c.backoff_max_s, c.backoff_base_s * 2 ** k) * (1.0 + c.jitter_frac * self.rng.random())
        self.sleeps.append(d)
        self.sleep(d)

    def _with_retries(self, attempt: Callable[[bool], dict[str, Any]]) -> dict[str, Any]:
        """Run ``attempt(uncertain)`` until it answers; ``uncertain`` tells it a previous try may have acted."""
        uncertain = False
        for k in range(self.cfg.max_retries + 1):
            try:
                return attempt(uncertain)
            except _Uncertain as e:
                uncertain = True
                self.metrics.retry_total.labels(reason=str(e).split(":")[0]).inc()
                if k == self.cfg.max_retries:
                    raise _Uncertain(f"retries_exhausted:{e}") from None
                self._backoff(k)
        raise AssertionError("unreachable")

    # ---- IExecutor ----------------------------------------------------------------------------
    def submit(self, ctx: OrderCtx) -> ExecResult:
        coid = client_order_id(ctx)
        prev = self.orders.get(coid)
        if prev is not None and not prev.reject_reason.startswith("unknown"):
            return prev.model_copy(update={"duplicate": True})
        al = align_order(ctx.side, ctx.px_intent, ctx.qty, ctx.tick_size, ctx.step_size, aggressive=True)
        base = dict(client_order_id=coid, symbol=ctx.symbol, side=ctx.side, qty_sent=al.qty, px_sent=al.px,
                    rounding_applied=al.rounding_applied, rounding_diff=al.rounding_diff)
        sent = self._now_ms()
        if al.qty <= 0:
            return self._record(ctx, ExecResult(status="rejected", reject_reason="qty_below_step", **base))
        params: dict[str, Any] = {"symbol": ctx.symbol, "side": ctx.side, "type": self.cfg.order_type,
                                  "quantity": _dec_str(al.qty), "newClientOrderId": coid}
        if self.cfg.order_type == "LIMIT":
            params.update(price=_dec_str(al.px), timeInForce=self.cfg.time_in_force)

        def attempt(uncertain: bool) -> dict[str, Any]:
            if uncertain or prev is not None:
                found = self._query(ctx.symbol, coid)  # the lost ack may have placed it
                if found is not None:
                    return found
            try:
                return self._call("POST", params)
            except _Final as e:
                if e.code == -4116:  # duplicate client id: the order exists, answer with it
                    found = self._query(ctx.symbol, coid)
                    if found is not None:
                        return found
                raise

        try:
            order = self._with_retries(attempt)
        except _Final as e:
            res = ExecResult(status="rejected", reject_reason=f"exchange:{e.code}:{e.msg}", sent_ts_ms=sent,
                             slippage_bps=None, **base)
            return self._record(ctx, res)
        except _Uncertain as e:
            # still unknown after every retry: the next submit of the same intent reconciles first
            res = ExecResult(status="rejected", reject_reason=f"unknown:{e}", sent_ts_ms=sent, **base)
            return self._record(ctx, res)
        ack = self._now_ms()
        return self._record(ctx, self._from_order(ctx, order, base, sent, ack))

    def _query(self, symbol: str, coid: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", {"symbol": symbol, "origClientOrderId": coid})
        except _Final as e:
            if e.code == -2013:  # does not exist
                return None
            raise

    def _from_order(self, ctx: OrderCtx, o: dict[str, Any], base: dict[str, Any], sent: int, ack: int) -> ExecResult:
        st = str(o.get("status", ""))
        fill = float(o.get("avgPrice") or 0) or None
        status: Literal["accepted", "filled", "rejected"]
        reason = ""
        if st == "FILLED":
            status = "filled"
        elif st in ("NEW", "PARTIALLY_FILLED"):
            status = "accepted"
        else:
            status, reason = "rejected", f"exchange_status:{st}"
        px = fill if status == "filled" and fill else base["px_sent"]
        return ExecResult(status=status, reject_reason=reason, exchange_order_id=str(o.get("orderId", "")),
                          px_fill=fill if status == "filled" else None,
                          slippage_bps=slippage_bps(ctx.side, ctx.px_intent, px), sent_ts_ms=sent, ack_ts_ms=ack,
                          latency_ms=float(max(0, ack - sent)), **base)

    def _record(self, ctx: OrderCtx, res: ExecResult) -> ExecResult:
        self.orders[res.client_order_id] = res
        self._ctx[res.client_order_id] = ctx
        self.metrics.observe(res)
        self.slog.log(res)
        return res

    def query(self, symbol: str, coid: str) -> dict[str, Any] | None:
        return self._with_retries(lambda _u: self._query(symbol, coid) or {}) or None

    def cancel(self, symbol: str, client_order_id: str) -> CancelResult:
        def attempt(uncertain: bool) -> dict[str, Any]:
            try:
                return self._call("DELETE", {"symbol": symbol, "origClientOrderId": client_order_id})
            except _Final as e:
                if e.code == -2011 and uncertain:  # an earlier try may have canceled it already
                    found = self._query(symbol, client_order_id)
                    if found is not None and found.get("status") == "CANCELED":
                        return found
                raise

        try:
            self._with_retries(attempt)
        except _Final as e:
            st: Literal["not_found", "rejected"] = "not_found" if e.code in (-2011, -2013) else "rejected"
            return CancelResult(client_order_id=client_order_id, status=st, reason=f"exchange:{e.code}:{e.msg}")
        except _Uncertain as e:
            return CancelResult(client_order_id=client_order_id, status="rejected", reason=f"unknown:{e}")
        prev = self.orders.get(client_order_id)
        if prev is not None:
            self.orders[client_order_id] = prev.model_copy(update={"status": "rejected", "reject_reason": "canceled"})
        return CancelResult(client_order_id=client_order_id, status="canceled")

    def amend(self, symbol: str, client_order_id: str, px: float | None = None,
              qty: float | None = None) -> AmendResult:
        ctx, prev = self._ctx.get(client_order_id), self.orders.get(client_order_id)
        if ctx is None or prev is None:
            return AmendResult(client_order_id=client_order_id, status="not_found", reason="unknown_order")
        new_px = align(px, ctx.tick_size, "nearest") if px is not None else prev.px_sent
        new_qty = align(qty, ctx.step_size, "floor") if qty is not None else prev.qty_sent
        params = {"symbol": symbol, "side": ctx.side, "origClientOrderId": client_order_id,
                  "quantity": _dec_str(float(new_qty or 0)), "price": _dec_str(float(new_px or 0))}
        try:
            self._with_retries(lambda _u: self._call("PUT", params))  # same target: safe to repeat
        except _Final as e:
            st: Literal["not_found", "rejected"] = "not_found" if e.code == -2013 else "rejected"
            return AmendResult(client_order_id=client_order_id, status=st, reason=f"exchange:{e.code}:{e.msg}")
        except _Uncertain as e:
            return AmendResult(client_order_id=client_order_id, status="rejected", reason=f"unknown:{e}")
        self.orders[client_order_id] = prev.model_copy(update={"px_sent": new_px, "qty_sent": new_qty})
        return AmendResult(client_order_id=client_order_id, status="amended", px_sent=new_px, qty_sent=new_qty)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.http.close()


def _dec_str(x: float) -> str:
    """Plain decimal text (no exponent, no trailing zeros): what Binance accepts for price/quantity."""
    s = format(Decimal(repr(float(x))), "f")
    return s.rstrip("0").rstrip(".") if "." in s else s
