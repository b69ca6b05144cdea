"""soak_60m's run config is derived from the soak's own model: every field, its default and bounds."""

from __future__ import annotations

import pytest

from alpha_assets.assets.soak import SoakRunConfig
from alpha_assets.definitions import defs
from alpha_assets.live.soak_config import SoakConfig, soak_config_from
from alpha_assets.settings import settings


def test_every_soak_field_is_in_the_run_config_with_its_default() -> None:
    fields = SoakRunConfig.model_fields
    assert set(SoakConfig.model_fields) <= set(fields)
    assert set(fields) - set(SoakConfig.model_fields) == {"progress_interval_s"}  # the op's own
    run, soak = SoakRunConfig(), SoakConfig()
    for name in SoakConfig.model_fields:
        expected = {"symbols": list(settings().symbols), "seed": settings().market.seed}.get(name, getattr(soak, name))
        got = getattr(run, name)
        assert (list(got) if isinstance(expected, tuple) else got) == (list(expected) if isinstance(expected, tuple)
                                                                      else expected), name
    # the endpoint, the join, the sinks' batch policy and the bus are there for users to set
    assert {"feed_ws_url", "feed_rest_url", "book_join", "sink_batch_n", "sink_flush_ms", "bus_url"} <= set(fields)


def test_a_run_config_reaches_the_soak_model_and_bad_values_name_their_field() -> None:
    values = SoakRunConfig(feed="external", feed_ws_url="ws://127.0.0.1:9/stream?streams=btcusdt@aggTrade",
                           book_join="event_time", sink_flush_ms=50,
                           fault_plan=[{"at_s": 5, "kind": "kill_redis"}]).model_dump()
    values.pop("progress_interval_s")
    cfg = soak_config_from(values)
    assert cfg.feed == "external" and cfg.book_join == "event_time" and cfg.fault_plan[0].target == "redis"
    with pytest.raises(Exception, match="sink_batch_n"):
        SoakRunConfig(sink_batch_n=0)
    with pytest.raises(ValueError, match="sink_flush_ms"):
        soak_config_from({**values, "sink_flush_ms": 20})
    # the job's config schema (what dagster validates a launch against) carries the fields too
    job = defs.resolve_job_def("soak_60m")
    schema = job.run_config_schema.config_type.fields["ops"].config_type.fields["soak_report"]
    assert {"book_join", "feed_ws_url", "sink_flush_ms", "bus_url"} <= set(schema.config_type.fields["config"].config_type.fields)


def test_one_fault_vocabulary_for_soak_and_fault_job() -> None:
    """The soak's fault_plan, soak_60m's run config and fault_injection's config all carry the plan's FaultSpec."""
    from alpha_assets.assets.faults import FaultConfig
    from alpha_assets.faults.plan import FaultSpec

    assert SoakConfig.model_fields["fault_plan"].annotation == list[FaultSpec]
    for model in (FaultConfig, SoakRunConfig.model_fields["fault_plan"].annotation.__args__[0]):
        assert set(model.model_fields) == set(FaultSpec.model_fields)
        assert model.model_fields["kind"].annotation == FaultSpec.model_fields["kind"].annotation
    # a timed fault without its duration is refused by the soak's model at load, naming the field
    with pytest.raises(ValueError, match="duration_s is required"):
        SoakConfig(fault_plan=[{"at_s": 1, "kind": "sqlite_locked"}])
