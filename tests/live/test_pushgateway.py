from __future__ import annotations

import time

from alpha_assets.live.pushgateway import PushgatewayExporter, resolve_pushgateway_url


def test_push_reaches_gateway_and_counts(pushgateway) -> None:
    exp = PushgatewayExporter(pushgateway.url, run_id="t_push_1")
    for i in range(3):
        assert exp.push({"signals_total": 10 * (i + 1), "queue_dropped": 0, "restarts": 1})
    assert exp.stats.export_count == 3 and exp.stats.error_count == 0
    assert pushgateway.value("export_count", job="alpha_soak", run_id="t_push_1") == 3
    assert pushgateway.value("signals_total", run_id="t_push_1") == 30
    assert pushgateway.value("restarts", run_id="t_push_1") == 1


def test_background_loop_exports_every_interval(pushgateway) -> None:
    exp = PushgatewayExporter(pushgateway.url, run_id="t_loop")
    ticks = iter(range(1000))
    exp.start(lambda: {"signals_total": next(ticks)}, interval_s=0.2)
    time.sleep(1.5)
    stats = exp.stop(final={"signals_total": 99})
    assert 6 <= stats.export_count <= 9
    assert stats.error_count == 0
    assert pushgateway.value("export_count", run_id="t_loop") == stats.export_count
    assert pushgateway.value("signals_total", run_id="t_loop") == 99


def test_unreachable_gateway_counts_errors_and_recovers(dead_port_url, pushgateway) -> None:
    exp = PushgatewayExporter(dead_port_url, run_id="t_dead", timeout_s=0.5)
    assert not exp.push({"signals_total": 1})
    assert not exp.push({"signals_total": 2})
    assert exp.stats.error_count == 2 and exp.stats.export_count == 0
    assert "Error" in exp.stats.last_error or "refused" in exp.stats.last_error.lower()
    exp.url = pushgateway.url  # the gateway comes back: the next tick succeeds
    assert exp.push({"signals_total": 3})
    assert exp.stats.export_count == 1
    assert pushgateway.value("error_count", run_id="t_dead") == 2


def test_url_resolution_keeps_v13_names() -> None:
    env = {"TIMESERIES_TYPE": "prometheus", "TIMESERIES_URL": "http://h:9091"}
    assert resolve_pushgateway_url("", env) == "http://h:9091"
    assert resolve_pushgateway_url("http://x:1", env) == "http://x:1"
    assert resolve_pushgateway_url("", {"TIMESERIES_TYPE": "influx", "TIMESERIES_URL": "http://h"}) == ""
    assert resolve_pushgateway_url("", {"ALPHA_PUSHGATEWAY_URL": "http://a:2"}) == "http://a:2"


def test_no_url_skips_without_error() -> None:
    exp = PushgatewayExporter("", run_id="t_none")
    assert not exp.push({"signals_total": 1})
    assert exp.stats.skipped == 1 and exp.stats.error_count == 0
