"""The executor contract: the checked-in JSON Schema is the generated one, and every executor's
answers satisfy it, with the same idempotence and grid rules."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from executors.contract import (
    SCHEMA_PATH,
    AmendResult,
    CancelResult,
    ExecResult,
    IExecutor,
    OrderCtx,
    client_order_id,
    contract_schema,
    schema_text,
)


def _validator(model: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": f"#/$defs/{model}"}]})


def test_checked_in_schema_equals_generated() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "run: python -m executors.contract"
    jsonschema.Draft202012Validator.check_schema(contract_schema())


def test_schema_rejects_what_the_models_reject(make_ctx: Any) -> None:
    v = _validator("ExecResult")
    good = ExecResult(status="filled", client_order_id="aa-1", px_fill=1.0).model_dump(mode="json")
    v.validate(good)
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**good, "status": "done"})
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**good, "surprise": 1})
    with pytest.raises(ValidationError, match="qty"):
        make_ctx(qty=-1.0)
    with pytest.raises(ValidationError, match="side"):
        make_ctx(side="HOLD")


def test_client_order_id_is_stable_and_distinguishes_intents(make_ctx: Any) -> None:
    a = make_ctx(i=10)
    assert client_order_id(a) == client_order_id(OrderCtx(**a.model_dump()))
    assert len(client_order_id(a)) <= 36
    ids = {client_order_id(make_ctx(i=10, **kw)) for kw in
           ({}, {"qty": 0.0124}, {"side": "SELL"}, {"signal_seq": 1}, {"ts_ms": a.ts_ms + 1}, {"px_intent": 1.0})}
    assert len(ids) == 6


def test_contract_suite(any_executor: IExecutor, make_ctx: Any) -> None:
    ex = any_executor
    assert isinstance(ex, IExecutor)
    v_exec, v_cancel, v_amend = _validator("ExecResult"), _validator("CancelResult"), _validator("AmendResult")
    results = []
    for i, side in ((50, "BUY"), (60, "SELL"), (70, "BUY")):
        ctx = make_ctx(i=i, side=side, qty=0.01234)  # qty off the 0.001 step grid
        r = ex.submit(ctx)
        v_exec.validate(r.model_dump(mode="json"))
        assert r.client_order_id == client_order_id(ctx)
        assert r.status in ("accepted", "filled"), r.reject_reason
        assert r.qty_sent == 0.012  # floored to the step, never more than sized
        assert Decimal(repr(r.px_sent)) % Decimal("0.1") == 0, r.px_sent  # on the tick grid
        if r.status == "filled":
            assert r.px_fill is not None and r.slippage_bps is not None
        results.append((ctx, r))
    # the same intent twice is one order
    ctx0, r0 = results[0]
    again = ex.submit(ctx0)
    v_exec.validate(again.model_dump(mode="json"))
    assert again.duplicate and again.client_order_id == r0.client_order_id
    assert again.exchange_order_id == r0.exchange_order_id and again.status == r0.status
    # cancel / amend answer within the contract whatever the order's state
    c = ex.cancel("BTCUSDT", "aa-does-not-exist")
    v_cancel.validate(c.model_dump(mode="json"))
    assert isinstance(c, CancelResult) and c.status == "not_found"
    for ctx, r in results:
        a = ex.amend("BTCUSDT", r.client_order_id, px=ctx.px_intent - 5.03)
        v_amend.validate(a.model_dump(mode="json"))
        assert isinstance(a, AmendResult)
        if r.status == "accepted":
            assert a.status == "amended" and a.px_sent is not None
            assert Decimal(repr(a.px_sent)) % Decimal("0.1") == 0
            c = ex.cancel("BTCUSDT", r.client_order_id)
            assert c.status == "canceled"
            assert ex.cancel("BTCUSDT", r.client_order_id).status in ("not_found", "rejected")
        else:
            assert a.status == "rejected"
    ex.flush()
    ex.close()


def test_ctx_rejects_bad_config_naming_the_field(make_ctx: Any) -> None:
    with pytest.raises(ValidationError) as e:
        make_ctx(tick_size=0)
    assert "tick_size" in str(e.value)
    with pytest.raises(ValidationError) as e:
        make_ctx(consistency=1.5)
    assert "consistency" in str(e.value)


def test_results_validate_as_plain_dicts(make_ctx: Any) -> None:
    # the schema keeps nullable fields nullable: a rejection with no prices validates
    r = ExecResult(status="rejected", reject_reason="no_book", client_order_id=client_order_id(make_ctx()))
    _validator("ExecResult").validate(json.loads(r.model_dump_json()))
