"""ExchangeExecutor against the fake Binance on 127.0.0.1: signing, keys, retry policy, and no
duplicate order under timeouts, 5xx, dropped connections and duplicate acks."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from executors.contract import client_order_id
from executors.exchange import ExchangeConfig, ExchangeExecutor
from executors.testing import TEST_API_KEY as API_KEY
from executors.testing import TEST_API_SECRET as API_SECRET
from executors.testing.fake_exchange import FakeExchange


def _bounds(cfg: ExchangeConfig, k: int) -> tuple[float, float]:
    base = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** k)
    return base, base * (1 + cfg.jitter_frac)


def test_fake_verifies_signature_and_key(fake: FakeExchange) -> None:
    qs = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.01&price=100&timeInForce=GTC&newClientOrderId=x1"
    import time
    qs += f"&recvWindow=5000&timestamp={int(time.time() * 1000)}"
    good = hmac.new(API_SECRET.encode(), qs.encode(), hashlib.sha256).hexdigest()
    with httpx.Client(base_url=fake.base_url) as c:
        bad = c.post(f"/fapi/v1/order?{qs}&signature={'0' * 64}", headers={"X-MBX-APIKEY": API_KEY})
        assert bad.status_code == 400 and bad.json()["code"] == -1022
        nokey = c.post(f"/fapi/v1/order?{qs}&signature={good}", headers={"X-MBX-APIKEY": "other"})
        assert nokey.status_code == 401 and nokey.json()["code"] == -2015
        ok = c.post(f"/fapi/v1/order?{qs}&signature={good}", headers={"X-MBX-APIKEY": API_KEY})
        assert ok.status_code == 200 and ok.json()["clientOrderId"] == "x1"
        dup = c.post(f"/fapi/v1/order?{qs}&signature={good}", headers={"X-MBX-APIKEY": API_KEY})
        assert dup.status_code == 400 and dup.json()["code"] == -4116
    assert fake.order_count() == 1


def test_signed_request_shape(exchange: ExchangeExecutor, fake: FakeExchange, make_ctx: Any) -> None:
    ctx = make_ctx(qty=0.0127)
    r = exchange.submit(ctx)
    assert r.status == "accepted" and r.exchange_order_id
    (post,) = fake.requests("POST")
    p = post.params
    assert p["newClientOrderId"] == client_order_id(ctx)
    assert p["recvWindow"] == "5000" and p["timestamp"].isdigit() and len(p["signature"]) == 64
    assert p["quantity"] == "0.012" and p["type"] == "LIMIT" and p["timeInForce"] == "IOC"
    assert exchange.sleeps == []


def test_wrong_secret_is_a_final_reject_not_retried(monkeypatch: pytest.MonkeyPatch, fake: FakeExchange,
                                                     make_ctx: Any) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", "wrong-secret")
    sleeps: list[float] = []
    ex = ExchangeExecutor(ExchangeConfig(base_url=fake.base_url, timeout_s=0.25), sleep=sleeps.append)
    r = ex.submit(make_ctx())
    assert r.status == "rejected" and r.reject_reason.startswith("exchange:-1022")
    assert sleeps == [] and len(fake.requests("POST")) == 1 and fake.order_count() == 0
    ex.close()


def test_keys_never_logged_or_shown(monkeypatch: pytest.MonkeyPatch, fake: FakeExchange, make_ctx: Any,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", API_SECRET)
    caplog.set_level(logging.DEBUG)
    ex = ExchangeExecutor(ExchangeConfig(base_url=fake.base_url, timeout_s=0.25, backoff_base_s=0),
                          sleep=lambda s: None)
    fake.inject("POST", "timeout_after", "5xx_before")
    rs = [ex.submit(make_ctx(i=i)) for i in (1, 2)]
    fake.inject("POST", "drop_before", "drop_before", "drop_before", "drop_before")
    rs.append(ex.submit(make_ctx(i=3)))
    assert rs[2].status == "rejected" and rs[2].reject_reason.startswith("unknown:")
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(ex) + str(ex.__dict__.get("cfg"))
    text += "".join(r.model_dump_json() for r in rs)
    assert caplog.records, "the faults should have produced log lines to inspect"
    assert API_KEY not in text and API_SECRET not in text
    ex.close()
    monkeypatch.delenv("BINANCE_API_SECRET")
    with pytest.raises(ValueError, match="BINANCE_API_SECRET") as e:
        ExchangeExecutor(ExchangeConfig(base_url=fake.base_url))
    assert API_KEY not in str(e.value)


@pytest.mark.parametrize("fault", ["timeout_after", "timeout_before", "5xx_after", "5xx_before",
                                   "drop_after", "drop_before"])
def test_fault_then_success_makes_exactly_one_order(fault: str, exchange: ExchangeExecutor, fake: FakeExchange,
                                                    make_ctx: Any) -> None:
    fake.inject("POST", fault)
    ctx = make_ctx()
    r = exchange.submit(ctx)
    assert r.status == "accepted", r.reject_reason
    assert fake.order_count() == 1
    cfg = exchange.cfg
    assert len(exchange.sleeps) == 1
    lo, hi = _bounds(cfg, 0)
    assert lo <= exchange.sleeps[0] <= hi
    gets = fake.requests("GET")
    # the executor asked before it resent: one query, then a POST only if the order was not there
    assert len(gets) == 1 and gets[0].params["origClientOrderId"] == client_order_id(ctx)
    processed = fault.endswith("_after")
    assert len(fake.requests("POST")) == (1 if processed else 2)
    # a later resubmission of the same intent is answered locally
    assert exchange.submit(ctx).duplicate and fake.order_count() == 1


def test_retry_budget_and_backoff_schedule(exchange: ExchangeExecutor, fake: FakeExchange, make_ctx: Any) -> None:
    cfg = exchange.cfg
    fake.inject("*", *["5xx_before"] * 20)
    r = exchange.submit(make_ctx())
    assert r.status == "rejected" and r.reject_reason.startswith("unknown:retries_exhausted")
    assert len(exchange.sleeps) == cfg.max_retries == 3
    for k, s in enumerate(exchange.sleeps):
        lo, hi = _bounds(cfg, k)
        assert lo <= s <= hi, (k, s)
    # jitter is seeded: a second executor with the same seed sleeps the same
    import random
    rng = random.Random(cfg.seed)
    expect = [min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** k) * (1 + cfg.jitter_frac * rng.random())
              for k in range(3)]
    assert exchange.sleeps == pytest.approx(expect, rel=0, abs=0)
    assert fake.order_count() == 0
    # once the exchange is back, resubmitting the unknown intent reconciles and places one order
    fake.state.faults.clear()
    again = exchange.submit(make_ctx())
    assert again.status == "accepted" and fake.order_count() == 1


def test_timeouts_on_every_attempt_never_duplicate(exchange: ExchangeExecutor, fake: FakeExchange,
                                                   make_ctx: Any) -> None:
    # the order is placed by the first request but every answer is lost; queries time out too
    fake.inject("*", "timeout_after", "timeout_before", "timeout_after", "drop_after")
    r = exchange.submit(make_ctx())
    assert fake.order_count() == 1
    assert r.status in ("accepted", "rejected")
    exchange.submit(make_ctx())
    assert fake.order_count() == 1


def test_duplicate_ack_is_one_order(exchange: ExchangeExecutor, fake: FakeExchange, make_ctx: Any) -> None:
    ctx = make_ctx()
    first = exchange.submit(ctx)
    # a second executor process (restart) sends the same intent; the exchange acks it again
    exchange.orders.clear()
    fake.inject("POST", "dup_ack")
    second = exchange.submit(ctx)
    assert second.exchange_order_id == first.exchange_order_id
    # without dup_ack, the exchange answers -4116 and the executor resolves to the same order
    exchange.orders.clear()
    third = exchange.submit(ctx)
    assert third.status == "accepted" and third.exchange_order_id == first.exchange_order_id
    assert fake.order_count() == 1


def test_4xx_is_never_retried(exchange: ExchangeExecutor, fake: FakeExchange, make_ctx: Any) -> None:
    r = exchange.submit(make_ctx(symbol="BTCUSDT", qty=0.0004))  # floors to 0 on the 0.001 step
    assert r.status == "rejected" and r.reject_reason == "qty_below_step"
    assert fake.requests("POST") == []
    fake2_ctx = make_ctx(side="SELL")
    ok = exchange.submit(fake2_ctx)
    assert ok.status == "accepted"
    # amend with the wrong side is a 4xx from the exchange: answered once, no sleep
    exchange._ctx[ok.client_order_id] = make_ctx(side="BUY")
    a = exchange.amend("BTCUSDT", ok.client_order_id, px=1.0)
    assert a.status == "rejected" and "-4015" in a.reason and exchange.sleeps == []


def test_cancel_after_lost_ack_resolves(exchange: ExchangeExecutor, fake: FakeExchange, make_ctx: Any) -> None:
    r = exchange.submit(make_ctx())
    fake.inject("DELETE", "timeout_after")
    c = exchange.cancel("BTCUSDT", r.client_order_id)
    assert c.status == "canceled"
    o = fake.state.orders[("BTCUSDT", r.client_order_id)]
    assert o["status"] == "CANCELED" and len(exchange.sleeps) == 1


def test_filled_orders_report_fill_and_slippage(creds: None, make_ctx: Any) -> None:
    with FakeExchange(API_KEY, API_SECRET, auto_fill=True) as fx:
        ex = ExchangeExecutor(ExchangeConfig(base_url=fx.base_url, timeout_s=1.0))
        ctx = make_ctx(px_intent=43000.04, side="BUY")
        r = ex.submit(ctx)
        assert r.status == "filled" and r.px_fill == 43000.1 and r.rounding_diff == pytest.approx(0.06)
        assert r.slippage_bps == pytest.approx(0.06 / 43000.04 * 1e4)
        assert r.latency_ms is not None and r.ack_ts_ms is not None
        ex.close()


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="max_retries"):
        ExchangeConfig(max_retries=5)
    with pytest.raises(ValidationError, match="recv_window_ms"):
        ExchangeConfig(recv_window_ms=70_000)
    assert ExchangeConfig(env="live").url == "https://fapi.binance.com"
    assert ExchangeConfig().url == "https://testnet.binancefuture.com"


def test_gate_denials_never_reach_the_exchange(exchange: ExchangeExecutor, fake: FakeExchange,
                                               make_ctx: Any) -> None:
    from executors.gated import GatedExecutor

    g = GatedExecutor(exchange)
    assert g.submit(make_ctx(warmup=True)).reject_reason == "pre_deny:warmup"
    g.risk.kill.trip("ops")
    d = g.submit(make_ctx(i=5))
    assert d.reject_reason == "risk:kill_switch:ops"
    assert g.submit(make_ctx(i=5)).duplicate  # asked again: the same answer, still nothing sent
    assert fake.requests() == [] and exchange.sleeps == []
    g.risk.kill.reset()
    assert g.submit(make_ctx(i=6)).status == "accepted" and fake.order_count() == 1


def test_random_fault_storm_never_duplicates(exchange: ExchangeExecutor, fake: FakeExchange, make_ctx: Any) -> None:
    import random
    rng = random.Random(99)
    kinds = ["timeout_after", "timeout_before", "5xx_after", "5xx_before", "drop_after", "drop_before", "dup_ack",
             "latency:20"]
    ctxs = [make_ctx(i=10 + k, side=rng.choice(["BUY", "SELL"])) for k in range(30)]
    first = []
    for c in ctxs:
        fake.inject("*", *rng.choices(kinds, k=rng.randint(0, 3)))
        first.append(exchange.submit(c))
    # every intent again, as a restarted process would (no local memory), through more faults
    exchange.orders.clear()
    fake.inject("*", *rng.choices(kinds, k=10))
    second = [exchange.submit(c) for c in ctxs]
    fake.state.faults.clear()
    third = [exchange.submit(c) for c in ctxs]
    assert fake.order_count() <= len(ctxs)
    assert fake.order_count() == len(ctxs)  # everything resolved in the end: one order per intent
    coids = [o["clientOrderId"] for o in fake.state.orders.values()]
    assert len(coids) == len(set(coids))
    ids = {r.client_order_id: r.exchange_order_id for r in third}
    for r in first + second:
        if r.status == "accepted":
            assert r.exchange_order_id == ids[r.client_order_id]
    for k in range(len(exchange.sleeps)):
        assert 0.1 <= exchange.sleeps[k] <= 0.1 * 2 ** 2 * 1.5
