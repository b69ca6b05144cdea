"""The executor contract (``executor_contract/v1``): what goes into an executor and what comes back.

One contract for a backtest, a paper broker and a live exchange client: every executor takes an
:class:`OrderCtx` and answers with an :class:`ExecResult`; cancel/amend answer with
:class:`CancelResult`/:class:`AmendResult`. The JSON Schema in ``executors/schema`` is generated
from these models (``contract_schema()``) and checked in; a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from alpha_assets.signal_contract import STRONG_TYPES
from alpha_assets.symbols import SYMBOL_PATTERN

CONTRACT_ID = "executor_contract/v1"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "executor_contract_v1.json"

Side = Literal["BUY", "SELL"]
ExecStatus = Literal["accepted", "filled", "rejected"]


class OrderCtx(BaseModel):
    """One order intent, decided from one signal row (all times are event time, ms UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts_ms: int = Field(ge=0, description="decision time: ts_ms of the signal")
    event_ts_ms: int = Field(ge=0, description="event time of the market data behind the decision")
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    side: Side
    qty: float = Field(gt=0, description="base-asset quantity before step alignment")
    px_intent: float = Field(gt=0, description="price the strategy meant (the touch)")
    regime: str = "unknown"
    scenario: str = Field("default", description="strategy id: consecutive-loss limits count per scenario")
    tick_size: float = Field(gt=0)
    step_size: float = Field(gt=0)
    guard_reason: str = ""
    warmup: bool = False
    consistency: float = Field(1.0, ge=0, le=1)
    costs_bps: float = Field(0.0, ge=0, description="expected round-trip costs, bps")
    signal_seq: int = Field(ge=0, description="seq of the signal row (= agg_trade_id)")
    signal_type: str = Field("", description="signal_type of the row (strong_* always routed by paper broker)")

    @property
    def strong(self) -> bool:
        return self.signal_type in STRONG_TYPES


class ExecResult(BaseModel):
    """What an executor did with one OrderCtx. Prices are None when nothing was sent/filled."""

    model_config = ConfigDict(extra="forbid")

    status: ExecStatus
    reject_reason: str = ""
    client_order_id: str = Field(min_length=1, max_length=36)
    exchange_order_id: str = ""
    symbol: str = ""
    side: Side | None = None
    qty_sent: float | None = None
    px_sent: float | None = None
    px_fill: float | None = None
    rounding_applied: bool = False
    rounding_diff: float = Field(0.0, description="px_sent - px_intent, price units")
    slippage_bps: float | None = Field(
        None, description="adverse move vs px_intent in bps (positive = cost), rounding included"
    )
    sent_ts_ms: int | None = None
    ack_ts_ms: int | None = None
    latency_ms: float | None = Field(None, ge=0)
    duplicate: bool = Field(False, description="answer to a resubmission: no new order was created")


class CancelResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_order_id: str
    status: Literal["canceled", "not_found", "rejected"]
    reason: str = ""


class AmendResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_order_id: str
    status: Literal["amended", "not_found", "rejected"]
    reason: str = ""
    px_sent: float | None = None
    qty_sent: float | None = None


@runtime_checkable
class IExecutor(Protocol):
    """What every executor provides. ``submit`` of an already-seen client_order_id never creates a
    second order: it answers with the first result (``duplicate=True``)."""

    name: str

    def submit(self, ctx: OrderCtx) -> ExecResult: ...

    def cancel(self, symbol: str, client_order_id: str) -> CancelResult: ...

    def amend(self, symbol: str, client_order_id: str, px: float | None = None,
              qty: float | None = None) -> AmendResult: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _num(x: float) -> str:
    # repr of a float is its shortest round-trip form: stable across runs and platforms
    return repr(float(x))


def client_order_id(ctx: OrderCtx) -> str:
    """Stable id of an order intent: hash of (symbol, signal_seq, ts_ms, side, qty, px_intent).

    Symbol is included because agg_trade_ids of two symbols can coincide. 32 hex chars with a
    prefix fit Binance's newClientOrderId limit (36, ``^[.A-Z:/a-z0-9_-]{1,36}$``)."""
    key = "|".join((ctx.symbol, str(ctx.signal_seq), str(ctx.ts_ms), ctx.side, _num(ctx.qty), _num(ctx.px_intent)))
    return "aa-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def contract_schema() -> dict[str, Any]:
    """JSON Schema of the contract, generated from the models."""
    models: dict[str, type[BaseModel]] = {"OrderCtx": OrderCtx, "ExecResult": ExecResult, "CancelResult": CancelResult,
              "AmendResult": AmendResult}
    defs = {name: m.model_json_schema(ref_template="#/$defs/{model}") for name, m in models.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": CONTRACT_ID,
        "title": "executor contract v1",
        "$defs": defs,
        "oneOf": [{"$ref": f"#/$defs/{n}"} for n in models],
    }


def schema_text() -> str:
    return json.dumps(contract_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text())
    return path


if __name__ == "__main__":  # regenerate: python -m executors.contract
    print(write_schema())
