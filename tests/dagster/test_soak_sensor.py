import uuid

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from alpha_assets.sensors.soak import SOAK_JOB, decide_soak, soak_sensor
from alpha_assets.version import code_version


def add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> None:
    instance.add_run(DagsterRun(job_name=SOAK_JOB, run_id=str(uuid.uuid4()), status=status))


def passing_soak(instance: dg.DagsterInstance, version: str, passed: bool = True) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("soak_report", metadata={"code_version": version, "soak_passed": passed})
    )


def test_launches_for_an_unsoaked_code_version() -> None:
    with dg.instance_for_test() as instance:
        result = soak_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.RunRequest)
        assert result.run_key == f"soak-{code_version()}"
        assert result.run_config["ops"]["soak_report"]["config"]["minutes"] > 0


def test_skips_while_a_soak_is_running() -> None:
    with dg.instance_for_test() as instance:
        add_run(instance, dg.DagsterRunStatus.STARTED)
        result = soak_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SkipReason)
        assert "already in progress" in (result.skip_message or "")


def test_a_failed_soak_does_not_count_as_passing() -> None:
    with dg.instance_for_test() as instance:
        add_run(instance, dg.DagsterRunStatus.FAILURE)
        passing_soak(instance, code_version(), passed=False)
        result = soak_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.RunRequest) and result.run_key == f"soak-{code_version()}"


def test_skips_when_version_soaked_and_cadence_not_due() -> None:
    with dg.instance_for_test() as instance:
        add_run(instance, dg.DagsterRunStatus.SUCCESS)  # just now
        passing_soak(instance, code_version())
        result = soak_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SkipReason)
        assert "next cadence soak" in (result.skip_message or "")


def test_cadence_decision_and_run_key_dedupe() -> None:
    day = 86_400.0
    first = decide_soak(now_s=10 * day + 5, version="v1", version_has_passing_soak=True, running=False,
                        last_soak_start_s=8 * day, cadence_s=day)
    again = decide_soak(now_s=10 * day + 500, version="v1", version_has_passing_soak=True, running=False,
                        last_soak_start_s=8 * day, cadence_s=day)
    # Two evaluations inside one cadence slot ask with the same run_key: Dagster launches one run.
    assert first.run_key == again.run_key == "soak-v1-cadence-10"
    assert decide_soak(now_s=10 * day, version="v1", version_has_passing_soak=True, running=True,
                       last_soak_start_s=None, cadence_s=day).run_key is None
