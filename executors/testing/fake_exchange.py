"""A protocol-faithful fake of the Binance USD-M futures order REST API, on 127.0.0.1 in a thread.

It checks what the real exchange checks for these endpoints: the ``X-MBX-APIKEY`` header, an
HMAC-SHA256 ``signature`` over the exact query string (+ form body), ``timestamp`` within
``recvWindow``, and uniqueness of ``newClientOrderId`` (``-4116 ClientOrderId is duplicated``).
Endpoints: ``POST/GET/DELETE/PUT /fapi/v1/order`` and ``GET /fapi/v1/time``.

Faults are injected per request from a queue (``inject(method, fault)``), consumed in order by the
first matching request:

* ``latency:<ms>`` answer normally after a delay;
* ``timeout_before`` / ``timeout_after`` hang ``hang_s`` without answering, without / after
  processing the request (after = the order exists but the ack is lost);
* ``5xx_before`` / ``5xx_after`` answer 503, without / after processing;
* ``drop_before`` / ``drop_after`` close the connection without a response;
* ``dup_ack`` a repeated newClientOrderId is answered 200 with the existing order (a duplicate ack)
  instead of -4116. Either way no second order exists.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
FAULTS = ("timeout_before", "timeout_after", "5xx_before", "5xx_after", "drop_before", "drop_after", "dup_ack")


class _ApiError(Exception):
    def __init__(self, http: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.http, self.code, self.msg = http, code, msg


@dataclass
class RequestLog:
    method: str
    path: str
    params: dict[str, str]
    fault: str | None
    answered: int | None  # HTTP status sent, None when no answer


@dataclass
class FakeExchangeState:
    orders: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (symbol, clientOrderId)
    by_id: dict[int, tuple[str, str]] = field(default_factory=dict)
    next_id: int = 1_000_000
    log: list[RequestLog] = field(default_factory=list)
    faults: deque[tuple[str, str]] = field(default_factory=deque)


class FakeExchange:
    def __init__(self, api_key: str, api_secret: str, *, hang_s: float = 1.0, auto_fill: bool = False,
                 max_recv_window_ms: int = 60_000) -> None:
        if not api_key or not api_secret:
            raise ValueError("api_key and api_secret must be non-empty")
        self.api_key, self._secret = api_key, api_secret.encode()
        self.hang_s, self.auto_fill, self.max_recv_window_ms = hang_s, auto_fill, max_recv_window_ms
        self.state = FakeExchangeState()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            exchange = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-exchange", daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeExchange:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls --------------------------------------------------------------------------
    def inject(self, method: str, *faults: str) -> None:
        for f in faults:
            if f not in FAULTS and not f.startswith("latency:"):
                raise ValueError(f"unknown fault {f!r}; allowed: {FAULTS} or latency:<ms>")
            self.state.faults.append((method.upper(), f))

    def order_count(self, symbol: str | None = None) -> int:
        with self.lock:
            return sum(1 for (s, _) in self.state.orders if symbol is None or s == symbol)

    def requests(self, method: str | None = None) -> list[RequestLog]:
        with self.lock:
            return [r for r in self.state.log if method is None or r.method == method]

    # ---- protocol -------------------------------------------------------------------------------
    def take_fault(self, method: str) -> str | None:
        with self.lock:
            q = self.state.faults
            if q and q[0][0] in (method, "*"):
                return q.popleft()[1]
        return None

    def authenticate(self, headers: Any, raw_params: str) -> dict[str, str]:
        if headers.get("X-MBX-APIKEY") != self.api_key:
            raise _ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload, sep, sig = raw_params.rpartition("&signature=")
        if not sep:
            raise _ApiError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        want = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            raise _ApiError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload, keep_blank_values=True))
        try:
            ts = int(params["timestamp"])
            rw = int(params.get("recvWindow", "5000"))
        except (KeyError, ValueError) as e:
            raise _ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.") from e
        if rw > self.max_recv_window_ms:
            raise _ApiError(400, -1131, "recvWindow must be less than 60000")
        now = int(time.time() * 1000)
        if ts > now + 1000 or now - ts > rw:
            raise _ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return params

    def _find(self, p: dict[str, str]) -> dict[str, Any]:
        sym = p.get("symbol", "")
        if "orderId" in p:
            key = self.state.by_id.get(int(p["orderId"]))
            o = self.state.orders.get(key) if key else None
        elif "origClientOrderId" in p:
            o = self.state.orders.get((sym, p["origClientOrderId"]))
        else:
            raise _ApiError(400, -1102, "Either orderId or origClientOrderId must be sent.")
        if o is None or o["symbol"] != sym:
            raise _ApiError(400, -2013, "Order does not exist.")
        return o

    def handle(self, method: str, p: dict[str, str], fault: str | None) -> dict[str, Any]:
        with self.lock:
            if method == "POST":
                return self._new_order(p, fault)
            o = self._find(p)
            if method == "GET":
                return dict(o)
            if method == "DELETE":
                if o["status"] != "NEW":
                    raise _ApiError(400, -2011, "Unknown order sent.")
                o["status"] = "CANCELED"
                return dict(o)
            if method == "PUT":
                if o["status"] != "NEW":
                    raise _ApiError(400, -2013, "Order does not exist.")
                if p.get("side") != o["side"]:
                    raise _ApiError(400, -4015, "Side does not match.")
                o["price"], o["origQty"] = p["price"], p["quantity"]
                o["updateTime"] = int(time.time() * 1000)
                return dict(o)
        raise _ApiError(405, -1000, "method not allowed")

    def _new_order(self, p: dict[str, str], fault: str | None) -> dict[str, Any]:
        for k in ("symbol", "side", "type", "quantity"):
            if not p.get(k):
                raise _ApiError(400, -1102, f"Mandatory parameter '{k}' was not sent, was empty/null, or malformed.")
        if p["side"] not in ("BUY", "SELL"):
            raise _ApiError(400, -1117, "Invalid side.")
        if p["type"] == "LIMIT" and not p.get("price"):
            raise _ApiError(400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        coid = p.get("newClientOrderId") or f"fake-{self.state.next_id}"
        if not CLIENT_ID_RE.match(coid):
            raise _ApiError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'.")
        key = (p["symbol"], coid)
        if key in self.state.orders:
            if fault == "dup_ack":
                return dict(self.state.orders[key])
            raise _ApiError(400, -4116, "ClientOrderId is duplicated.")
        oid = self.state.next_id
        self.state.next_id += 1
        filled = self.auto_fill
        px = p.get("price", "0")
        o = {"orderId": oid, "symbol": p["symbol"], "status": "FILLED" if filled else "NEW", "clientOrderId": coid,
             "price": px, "avgPrice": px if filled else "0.00", "origQty": p["quantity"],
             "executedQty": p["quantity"] if filled else "0", "cumQuote": "0", "timeInForce": p.get("timeInForce", "GTC"),
             "type": p["type"], "side": p["side"], "updateTime": int(time.time() * 1000)}
        self.state.orders[key] = o
        self.state.by_id[oid] = key
        return dict(o)


class _Handler(BaseHTTPRequestHandler):
    exchange: FakeExchange
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return None

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        ex = self.exchange
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        raw = "&".join(x for x in (query, body) if x)
        if path == "/fapi/v1/time" and method == "GET":
            self._send(200, {"serverTime": int(time.time() * 1000)})
            return
        if path != "/fapi/v1/order":
            self._send(404, {"code": -1000, "msg": "not found"})
            return
        fault = ex.take_fault(method)
        entry = RequestLog(method, path, dict(parse_qsl(raw)), fault, None)
        with ex.lock:
            ex.state.log.append(entry)
        if fault and fault.startswith("latency:"):
            time.sleep(float(fault.split(":", 1)[1]) / 1000)
        if fault in ("timeout_before", "drop_before", "5xx_before"):
            self._fail(fault, entry)
            return
        try:
            params = ex.authenticate(self.headers, raw)
            out: tuple[int, dict[str, Any]] = (200, ex.handle(method, params, fault))
        except _ApiError as e:
            out = (e.http, {"code": e.code, "msg": e.msg})
        if fault in ("timeout_after", "drop_after", "5xx_after"):
            self._fail(fault, entry)
            return
        entry.answered = out[0]
        self._send(*out)

    def _fail(self, fault: str, entry: RequestLog) -> None:
        if fault.startswith("timeout"):
            time.sleep(self.exchange.hang_s)
        if fault.startswith("5xx"):
            entry.answered = 503
            self._send(503, {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."})
            return
        self.close_connection = True  # no response at all: the client sees a dropped connection

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
