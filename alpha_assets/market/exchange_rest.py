"""The loopback exchange's REST side: ``GET /fapi/v1/aggTrades?symbol=&fromId=&limit=`` as Binance
USD-M serves it (ids from ``fromId`` on, at most ``limit`` ≤ 1000), from the trades the exchange
has streamed; each trade served is stamped with its send time if it has none yet."""

from __future__ import annotations

import time
from collections.abc import Collection
from http import HTTPStatus
from typing import Any

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Response

from alpha_assets.market.send_times import SendTimes

BACKFILL_LIMIT_MAX = 1000


def json_response(status: HTTPStatus, body: Any) -> Response:
    data = orjson.dumps(body)
    # the server closes an HTTP connection after its one response: say so, or a client reuses the
    # closed connection for its next request and fails ("disconnected without sending a response")
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                       ("Connection", "close")])
    return Response(status.value, status.phrase, headers, data)


def agg_trades(q: dict[str, str], symbols: Collection[str], history: dict[str, dict[int, dict[str, Any]]],
               send_times: dict[str, SendTimes]) -> Response:
    symbol = q.get("symbol", "").upper()
    if symbol not in symbols:
        return json_response(HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."})
    try:
        from_id = int(q["fromId"])
        limit = min(int(q.get("limit", "500")), BACKFILL_LIMIT_MAX)
    except (KeyError, ValueError):
        return json_response(HTTPStatus.BAD_REQUEST, {"code": -1102, "msg": "fromId/limit must be integers"})
    hist = history[symbol]
    out = []
    served = time.time_ns()
    times = send_times[symbol]
    for i in range(from_id, from_id + limit):
        row = hist.get(i)
        if row is None:
            break
        out.append({k: row[k] for k in ("a", "p", "q", "f", "l", "T", "m")} | {"E": row["E"]})
        times.set(i, served, only_if_unset=True)
    return json_response(HTTPStatus.OK, out)
