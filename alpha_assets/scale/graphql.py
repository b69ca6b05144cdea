"""The few calls of the Dagster webserver's GraphQL API the profile's users (and its tests and
bench) make: launch a run or a partition backfill, start a sensor, ask whether the code location
and the daemons are up. Everything else is in the UI on the same server."""

from __future__ import annotations

import json
from typing import Any

import httpx

LOCATION = "alpha_assets"  # [tool.dagster] code_location_name
REPOSITORY = "__repository__"  # the repository of a Definitions object


class GraphQLError(RuntimeError):
    """The server answered with errors, or with an error result for the mutation."""


_LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}"""

_LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

_START_SENSOR = """
mutation($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on Error { message }
  }
}"""

_SENSOR_TICKS = """
query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 50) { status skipReason runIds runKeys error { message } } } }
    ... on Error { message }
  }
}"""

_BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on Error { message }
  }
}"""

_LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

_RELOAD = """
mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename } }"""

_DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"


class DagsterGraphQL:
    def __init__(self, url: str, location: str = LOCATION, repository: str = REPOSITORY, timeout_s: float = 60) -> None:
        self.url = url.rstrip("/") + "/graphql"
        self.location, self.repository = location, repository
        self._client = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._client.post(self.url, json={"query": text, "variables": variables or {}})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"])[:2000])
        return body["data"]

    @staticmethod
    def _ok(result: dict[str, Any], success: str) -> dict[str, Any]:
        if result["__typename"] != success:
            detail = result.get("message") or result.get("errors") or result
            raise GraphQLError(f"{result['__typename']}: {detail}")
        return result

    def _repo(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": self.repository}

    def launch_run(self, job: str, run_config: dict[str, Any] | None = None,
                   tags: dict[str, str] | None = None) -> str:
        params = {"selector": {**self._repo(), "jobName": job}, "runConfigData": run_config or {},
                  "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}
        result = self._ok(self.query(_LAUNCH_RUN, {"params": params})["launchRun"], "LaunchRunSuccess")
        return str(result["run"]["runId"])

    def launch_backfill(self, job: str, partitions: list[str], tags: dict[str, str] | None = None,
                        title: str = "") -> str:
        """A backfill of a partitioned job: one run per partition, submitted by the daemon."""
        params = {"selector": {"partitionSetName": f"{job}_partition_set", "repositorySelector": self._repo()},
                  "partitionNames": partitions, "title": title or None,
                  "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        result = self._ok(self.query(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"],
                          "LaunchBackfillSuccess")
        return str(result["backfillId"])

    def backfill_status(self, backfill_id: str) -> str:
        """REQUESTED while it runs; COMPLETED_SUCCESS, COMPLETED_FAILED, FAILED or CANCELED at the end."""
        result = self._ok(self.query(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"], "PartitionBackfill")
        return str(result["status"])

    def start_sensor(self, name: str) -> str:
        selector = {**self._repo(), "sensorName": name}
        result = self._ok(self.query(_START_SENSOR, {"selector": selector})["startSensor"], "Sensor")
        return str(result["sensorState"]["status"])

    def sensor_ticks(self, name: str) -> list[dict[str, Any]]:
        """The sensor's recent ticks as the daemon recorded them (newest first): status, skipReason, runIds."""
        selector = {**self._repo(), "sensorName": name}
        result = self._ok(self.query(_SENSOR_TICKS, {"selector": selector})["sensorOrError"], "Sensor")
        return list(result["sensorState"]["ticks"])

    def location_loaded(self) -> bool:
        """True once the code location is loaded without error; asks the server to reload it otherwise."""
        data = self.query(_LOCATIONS)["workspaceOrError"]
        entries = {e["name"]: e for e in data.get("locationEntries", [])}
        entry = entries.get(self.location)
        if entry is None or entry["loadStatus"] != "LOADED":
            return False
        if entry["locationOrLoadError"]["__typename"] == "PythonError":
            self.query(_RELOAD, {"name": self.location})  # the code server may have come up after us
            return False
        return True

    def daemons(self) -> dict[str, bool]:
        """Health of each required daemon (scheduler, sensors, queued runs, backfills, monitoring, ...)."""
        statuses = self.query(_DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return {s["daemonType"]: bool(s["healthy"]) for s in statuses if s["required"]}
