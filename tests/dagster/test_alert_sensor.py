import json
import os
from pathlib import Path

import dagster as dg
import pytest

from alpha_assets.resources.data_root import DataRoot
from alpha_assets.sensors import alerts
from alpha_assets.sensors.alerts import run_failure_alert


@dg.op
def explode() -> None:
    raise RuntimeError("feed exploded")


@dg.job
def failing_job() -> None:
    explode()


def test_failed_run_becomes_an_alert_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "pushgateway_url", lambda: "")
    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=failure, dagster_instance=instance,
            dagster_run=result.dagster_run, resources={"data_root": DataRoot(root=str(tmp_path))},
        ).for_run_failure()
        run_failure_alert(context)
    lines = (tmp_path / "artifacts" / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 1
    alert = json.loads(lines[0])
    assert alert["job"] == "failing_job" and alert["run_id"] == result.run_id
    assert "explode" in alert["message"] or "feed exploded" in alert["message"]


def test_pushgateway_url_honours_v13_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMESERIES_TYPE", "prometheus")
    monkeypatch.setenv("TIMESERIES_URL", "http://127.0.0.1:9091")
    assert alerts.pushgateway_url() == "http://127.0.0.1:9091"
    monkeypatch.setenv("TIMESERIES_TYPE", "influx")
    assert alerts.pushgateway_url() == ""
    assert os.environ["TIMESERIES_URL"]  # untouched
