"""Operate a running Dagster webserver from a script, through the GraphQL API its UI uses.

Every function takes the webserver's address (``http://HOST:PORT``, with or without ``/graphql``) and posts a
plain GraphQL document with ``requests``: launch an asset backfill or a (ranged) run the way the UI's
"Materialize" dialog does, wait for them, read the asset check results of a run, and switch sensors and
schedules off. An answer other than the expected type (``PythonError``, ``UnauthorizedError``,
``PartitionKeysNotFoundError``...) raises :class:`WebserverError` naming that type and its message.

Used by ``sigmasight backfill --submit``; it imports nothing of Dagster, so a script needs only ``requests``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

import requests

from sigmasight_pipeline.run_tags import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
BACKFILL_ID_TAG = "dagster/backfill"
#: The implicit job of every asset of a code location (``__ASSET_JOB``, or ``__ASSET_JOB_<n>`` in old releases).
ASSET_JOB_PREFIX = "__ASSET_JOB"

RUN_FINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
BACKFILL_FINAL_STATUSES = frozenset({"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})


class _HasPath(Protocol):
    path: Sequence[str]


#: ``"stress_results"``, ``"prefix/name"`` (Dagster's user string), ``["prefix", "name"]`` or a ``dg.AssetKey``.
AssetKeyLike = Union[str, Sequence[str], _HasPath]
#: One ``(start, end)`` partition key range; a single key is ``(key, key)``.
KeyRange = tuple[str, str]


class WebserverError(RuntimeError):
    """The webserver answered with an error: a GraphQL error type (``typename``) and its message."""

    def __init__(self, what: str, typename: str, message: str):
        self.typename = typename
        self.message = message
        super().__init__(f"{what}: {typename}: {message}")


class WebserverTimeout(TimeoutError):
    """A run or backfill did not finish in time; ``last`` is its last state (``RunInfo``/``BackfillInfo``)."""

    def __init__(self, message: str, last: Any = None):
        self.last = last
        super().__init__(message)


@dataclass(frozen=True)
class RunInfo:
    """A run as the UI shows it: id, status (``QUEUED``, ``STARTED``, ``SUCCESS``, ``FAILURE``...) and tags."""

    run_id: str
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def partition(self) -> str | None:
        return self.tags.get(PARTITION_TAG)

    @property
    def partition_range(self) -> KeyRange | None:
        start, end = self.tags.get(RANGE_START_TAG), self.tags.get(RANGE_END_TAG)
        return (start, end) if start is not None and end is not None else None


@dataclass(frozen=True)
class BackfillInfo:
    """A backfill: id, status (``REQUESTED``, ``COMPLETED_SUCCESS``, ``COMPLETED_FAILED``...), its runs and error."""

    backfill_id: str
    status: str
    runs: tuple[RunInfo, ...] = ()
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in ("COMPLETED", "COMPLETED_SUCCESS") and all(r.status == "SUCCESS" for r in self.runs)


@dataclass(frozen=True)
class CheckEvaluation:
    """One asset check evaluation of a run (one per partition for a partitioned check)."""

    asset_key: str  # user string, "a/b"
    check_name: str
    passed: bool
    severity: str  # "ERROR" or "WARN"
    partition: str | None = None

    @property
    def name(self) -> str:
        return f"{self.asset_key}.{self.check_name}"


@dataclass(frozen=True)
class InstigatorInfo:
    """A sensor or schedule: name, ``RUNNING``/``STOPPED``, kind (``sensor``/``schedule``), sensor type."""

    name: str
    status: str
    kind: str
    sensor_type: str | None = None
    state_id: str = ""
    repository: str = ""
    location: str = ""


# --------------------------------------------------------------------------------------------------------
# Transport


def endpoint(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/graphql`` (an address already ending in /graphql is kept)."""
    url = url.rstrip("/")
    return url if url.endswith("/graphql") else url + "/graphql"


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None, *, timeout: float = 60.0) -> dict:
    """Post one GraphQL document and return its ``data``; transport and GraphQL-level errors raise WebserverError."""
    try:
        response = requests.post(endpoint(url), json={"query": query, "variables": dict(variables or {})}, timeout=timeout)
    except requests.RequestException as exc:
        raise WebserverError(f"POST {endpoint(url)}", type(exc).__name__, str(exc)) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise WebserverError(f"POST {endpoint(url)}", f"HTTP {response.status_code}", response.text[:500])
    if body.get("errors"):  # the document itself was refused (syntax, unknown field, variable types)
        raise WebserverError("GraphQL request", "GraphQLError", "; ".join(e.get("message", str(e)) for e in body["errors"]))
    if not isinstance(body.get("data"), dict):
        raise WebserverError(f"POST {endpoint(url)}", f"HTTP {response.status_code}", response.text[:500])
    # A result of an error type (PythonError...) comes with HTTP 500 but complete data: the caller reads its type.
    return body["data"]


_ERROR_FIELDS = """
    __typename
    ... on Error { message }
    ... on PythonError { stack }
"""
# Extra detail of the launch mutations' error types (a fragment on a type outside a union is invalid GraphQL).
_RUN_ERROR_FIELDS = _ERROR_FIELDS + "    ... on RunConfigValidationInvalid { errors { message } }\n"
_BACKFILL_ERROR_FIELDS = _RUN_ERROR_FIELDS + "    ... on PartitionKeysNotFoundError { partitionKeys }\n"


def _expect(result: Mapping[str, Any] | None, typename: str, what: str) -> Mapping[str, Any]:
    """The result if its ``__typename`` is ``typename``; otherwise WebserverError with the error's type and message."""
    if result is not None and result.get("__typename") == typename:
        return result
    if result is None:
        raise WebserverError(what, "null", "the webserver returned nothing")
    message = result.get("message") or ""
    if result.get("errors"):
        message = "; ".join(filter(None, [message, *(e.get("message", "") for e in result["errors"])]))
    if result.get("partitionKeys") and not message:
        message = f"unknown partition keys: {', '.join(result['partitionKeys'][:10])}"
    if result.get("stack"):
        message += "\n" + "".join(result["stack"][-3:]).rstrip()
    raise WebserverError(what, result.get("__typename", "?"), message or "(no message)")


def _key_input(key: AssetKeyLike) -> dict[str, list[str]]:
    if isinstance(key, str):
        return {"path": key.split("/")}
    path = getattr(key, "path", key)
    return {"path": [str(p) for p in path]}


def _key_string(path: Sequence[str]) -> str:
    return "/".join(path)


def _tags_input(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": str(k), "value": str(v)} for k, v in (tags or {}).items()]


def _tags(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["key"]: t["value"] for t in items or []}


# --------------------------------------------------------------------------------------------------------
# Server


_WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""


def wait_for_server(url: str, timeout: float = 120.0, *, poll: float = 0.5) -> list[str]:
    """Wait until the webserver answers and every code location is loaded; returns the location names.

    A code location that failed to load raises WebserverError with its error at once.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            workspace = _expect(graphql(url, _WORKSPACE, timeout=10)["workspaceOrError"], "Workspace", "workspace")
        except WebserverError as exc:
            if exc.typename not in ("ConnectionError", "ReadTimeout", "ConnectTimeout") and not exc.typename.startswith("HTTP"):
                raise
            last = str(exc)
        else:
            entries = workspace["locationEntries"]
            for entry in entries:
                error = entry.get("locationOrLoadError") or {}
                if error.get("__typename") == "PythonError":
                    raise WebserverError(f"code location {entry['name']}", "PythonError", error.get("message", ""))
            if entries and all(e["loadStatus"] == "LOADED" and e.get("locationOrLoadError") for e in entries):
                return [e["name"] for e in entries]
            last = ", ".join(f"{e['name']}: {e['loadStatus']}" for e in entries) or "no code location"
        if time.monotonic() > deadline:
            raise WebserverTimeout(f"webserver {url} not ready after {timeout:.0f} s ({last})")
        time.sleep(poll)


# --------------------------------------------------------------------------------------------------------
# Assets


_ASSET_NODES = """
query AssetNodes($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    jobNames
    repository { name location { name } }
    assetChecksOrError { __typename ... on AssetChecks { checks { name jobNames } } }
  }
}
"""


def _asset_nodes(url: str, asset_keys: Sequence[AssetKeyLike]) -> list[dict]:
    """The asset nodes of ``asset_keys``; an unknown key raises WebserverError (``AssetNotFoundError``)."""
    keys = [_key_input(k) for k in asset_keys]
    nodes = graphql(url, _ASSET_NODES, {"assetKeys": keys})["assetNodes"]
    found = {_key_string(n["assetKey"]["path"]) for n in nodes}
    missing = [_key_string(k["path"]) for k in keys if _key_string(k["path"]) not in found]
    if missing:
        raise WebserverError("asset selection", "AssetNotFoundError", f"unknown asset key(s): {', '.join(missing)}")
    return nodes


# --------------------------------------------------------------------------------------------------------
# Backfills


_LAUNCH_BACKFILL = f"""
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {{
  launchPartitionBackfill(backfillParams: $backfillParams) {{
    ... on LaunchBackfillSuccess {{ backfillId }}
    {_BACKFILL_ERROR_FIELDS}
  }}
}}
"""


def launch_backfill(
    url: str,
    asset_keys: Sequence[AssetKeyLike],
    *,
    partition_names: Sequence[str] | None = None,
    partition_ranges: Sequence[KeyRange] | Mapping[Any, Sequence[KeyRange]] | None = None,
    all_partitions: bool = False,
    tags: Mapping[str, str] | None = None,
    title: str | None = None,
    description: str | None = None,
) -> str:
    """Launch an asset backfill (mutation ``launchPartitionBackfill``) and return its id.

    Give exactly one of: ``partition_names`` (keys of every selected asset, sent with ``assetSelection``, as
    the UI's Materialize dialog does), ``partition_ranges`` (``(start, end)`` key ranges, sent as
    ``partitionsByAssets``; a list applies to every asset, a mapping ``asset key -> ranges`` per asset; a
    date x portfolio range ``("2025-06-23|p", "2025-06-27|p")`` is the rectangle between its two keys), or
    ``all_partitions``. The daemon then launches the runs following each asset's backfill policy.
    """
    if sum(x is not None for x in (partition_names, partition_ranges, all_partitions or None)) != 1:
        raise ValueError("give exactly one of partition_names, partition_ranges, all_partitions")
    _asset_nodes(url, [*asset_keys, *(partition_ranges if isinstance(partition_ranges, Mapping) else [])])
    params: dict[str, Any] = {"tags": _tags_input(tags)}
    if title:
        params["title"] = title
    if description:
        params["description"] = description
    if partition_ranges is not None:
        if isinstance(partition_ranges, Mapping):
            by_asset = {_key_string(_key_input(k)["path"]): list(r) for k, r in partition_ranges.items()}
            keys = [_key_string(_key_input(k)["path"]) for k in asset_keys] or list(by_asset)
        else:
            keys = [_key_string(_key_input(k)["path"]) for k in asset_keys]
            by_asset = {k: list(partition_ranges) for k in keys}
        params["partitionsByAssets"] = [
            {
                "assetKey": _key_input(k),
                "partitions": {"ranges": [{"start": s, "end": e} for s, e in by_asset[k]]} if by_asset.get(k) else None,
            }
            for k in keys
        ]
    else:
        params["assetSelection"] = [_key_input(k) for k in asset_keys]
        if all_partitions:
            params["allPartitions"] = True
        else:
            params["partitionNames"] = list(partition_names or [])
            params["fromFailure"] = False
    result = graphql(url, _LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    return _expect(result, "LaunchBackfillSuccess", "launchPartitionBackfill")["backfillId"]


_BACKFILL = f"""
query Backfill($backfillId: String!) {{
  partitionBackfillOrError(backfillId: $backfillId) {{
    ... on PartitionBackfill {{
      id
      status
      error {{ message }}
      runs {{ runId status tags {{ key value }} }}
    }}
    {_ERROR_FIELDS}
  }}
}}
"""


def get_backfill(url: str, backfill_id: str) -> BackfillInfo:
    """The backfill's status, error and runs (id, status, tags such as ``dagster/asset_partition_range_*``)."""
    result = graphql(url, _BACKFILL, {"backfillId": backfill_id})["partitionBackfillOrError"]
    b = _expect(result, "PartitionBackfill", f"backfill {backfill_id}")
    runs = tuple(RunInfo(r["runId"], r["status"], _tags(r["tags"])) for r in reversed(b["runs"]))  # oldest first
    return BackfillInfo(b["id"], b["status"], runs, (b.get("error") or {}).get("message"))


def wait_for_backfill(url: str, backfill_id: str, timeout: float = 600.0, *, poll: float = 2.0) -> BackfillInfo:
    """Poll until the backfill reaches a final status and all its runs are finished; returns it.

    Raises WebserverTimeout (with the last state) after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        info = get_backfill(url, backfill_id)
        if info.status in BACKFILL_FINAL_STATUSES and all(r.status in RUN_FINAL_STATUSES for r in info.runs):
            return info
        if time.monotonic() > deadline:
            runs = ", ".join(f"{r.run_id[:8]} {r.status}" for r in info.runs) or "no run yet"
            raise WebserverTimeout(f"backfill {backfill_id} still {info.status} after {timeout:.0f} s ({runs})", info)
        time.sleep(poll)


# --------------------------------------------------------------------------------------------------------
# Runs


_PARTITION_TAGS = f"""
query PartitionTags($selector: PipelineSelector!, $partitionName: String!, $assetKeys: [AssetKeyInput!]) {{
  pipelineOrError(params: $selector) {{
    ... on Pipeline {{
      partition(partitionName: $partitionName, selectedAssetKeys: $assetKeys) {{
        runConfigOrError {{ ... on PartitionRunConfig {{ yaml }} {_ERROR_FIELDS} }}
        tagsOrError {{ ... on PartitionTags {{ results {{ key value }} }} {_ERROR_FIELDS} }}
      }}
    }}
    {_ERROR_FIELDS}
  }}
}}
"""

_LAUNCH_RUN = f"""
mutation LaunchRun($executionParams: ExecutionParams!) {{
  launchRun(executionParams: $executionParams) {{
    ... on LaunchRunSuccess {{ run {{ runId }} }}
    {_RUN_ERROR_FIELDS}
  }}
}}
"""


def launch_run(
    url: str,
    asset_keys: Sequence[AssetKeyLike],
    *,
    partition_key: str | None = None,
    partition_range: KeyRange | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> str:
    """Launch one run materializing ``asset_keys`` and their asset checks; returns the run id.

    Does what the UI's Materialize button does: the implicit asset job (``__ASSET_JOB``) with an
    ``assetSelection`` and the checks of those assets, the partition's own tags and run config from the job's
    partition set (``dagster/partition`` and, for a multi-partitioned asset, ``dagster/partition/<dimension>``),
    sent with mutation ``launchRun``. ``partition_range=(start, end)`` replaces the partition tags with
    ``dagster/asset_partition_range_start|end`` (a single run over the range: the assets must have a single-run
    backfill policy). ``run_config`` (e.g. ``{"ops": {"portfolio_reports": {"config": {...}}}}``, what the UI's
    Launchpad edits) is merged over the partition's own run config. The run is queued; the daemon starts it.
    """
    if partition_key is not None and partition_range is not None:
        raise ValueError("give partition_key or partition_range, not both")
    keys = [_key_input(k) for k in asset_keys]
    if not keys:
        raise ValueError("no asset to materialize")
    nodes = _asset_nodes(url, asset_keys)
    found = {_key_string(n["assetKey"]["path"]) for n in nodes}
    repos = {(n["repository"]["location"]["name"], n["repository"]["name"]) for n in nodes}
    if len(repos) != 1:
        raise ValueError(f"the assets are in several code locations: {sorted(repos)}")
    location, repository = repos.pop()
    jobs = set.intersection(*(set(n["jobNames"]) for n in nodes))
    asset_jobs = sorted(j for j in jobs if j.startswith(ASSET_JOB_PREFIX))
    if not asset_jobs:
        raise ValueError(f"no implicit asset job ({ASSET_JOB_PREFIX}) contains all of {sorted(found)}")
    job = asset_jobs[0]
    checks = [
        {"assetKey": {"path": n["assetKey"]["path"]}, "name": c["name"]}
        for n in nodes
        if n["assetChecksOrError"]["__typename"] == "AssetChecks"
        for c in n["assetChecksOrError"]["checks"]
        if not c["jobNames"] or job in c["jobNames"]
    ]
    run_tags: dict[str, str] = {}
    partition_config: Any = {}
    first_key = partition_key if partition_key is not None else partition_range[0] if partition_range else None
    if first_key is not None:
        selector = {"pipelineName": job, "repositoryName": repository, "repositoryLocationName": location}
        data = graphql(url, _PARTITION_TAGS, {"selector": selector, "partitionName": first_key, "assetKeys": keys})
        pipeline = _expect(data["pipelineOrError"], "Pipeline", f"job {job}")
        partition = pipeline.get("partition")
        if partition is None:
            raise WebserverError("launchRun", "PartitionNotFoundError", f"no partition {first_key!r} for {sorted(found)}")
        run_tags = _tags(_expect(partition["tagsOrError"], "PartitionTags", f"tags of {first_key}")["results"])
        partition_config = _expect(partition["runConfigOrError"], "PartitionRunConfig", f"run config of {first_key}")["yaml"]
        if partition_range is not None:
            run_tags = {k: v for k, v in run_tags.items() if not k.startswith(PARTITION_TAG)}
            run_tags[RANGE_START_TAG], run_tags[RANGE_END_TAG] = partition_range
    run_tags.update(tags or {})
    config: Any = partition_config
    if run_config:
        import yaml

        base = yaml.safe_load(partition_config) if isinstance(partition_config, str) else partition_config
        config = _merged(base or {}, run_config)
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "pipelineName": job,
            "assetSelection": keys,
            "assetCheckSelection": checks,
        },
        "mode": "default",
        "runConfigData": config or {},
        "executionMetadata": {"tags": _tags_input(run_tags)},
    }
    result = graphql(url, _LAUNCH_RUN, {"executionParams": params})["launchRun"]
    return _expect(result, "LaunchRunSuccess", "launchRun")["run"]["runId"]


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, mapping by mapping (a value of ``over`` wins)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


_RUN = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    ... on Run {{ runId status tags {{ key value }} }}
    {_ERROR_FIELDS}
  }}
}}
"""


def get_run(url: str, run_id: str) -> RunInfo:
    """The run's status and tags."""
    run = _expect(graphql(url, _RUN, {"runId": run_id})["runOrError"], "Run", f"run {run_id}")
    return RunInfo(run["runId"], run["status"], _tags(run["tags"]))


def wait_for_run(url: str, run_id: str, timeout: float = 600.0, *, poll: float = 1.0) -> RunInfo:
    """Poll until the run is SUCCESS, FAILURE or CANCELED; returns it. WebserverTimeout after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        info = get_run(url, run_id)
        if info.status in RUN_FINAL_STATUSES:
            return info
        if time.monotonic() > deadline:
            raise WebserverTimeout(f"run {run_id} still {info.status} after {timeout:.0f} s", info)
        time.sleep(poll)


_RUN_LOGS = f"""
query RunLogs($runId: ID!, $cursor: String, $limit: Int) {{
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {{
    ... on EventConnection {{
      cursor
      hasMore
      events {{
        __typename
        ... on AssetCheckEvaluationEvent {{
          evaluation {{ assetKey {{ path }} checkName success severity partition }}
        }}
        ... on ExecutionStepFailureEvent {{ stepKey stepError: error {{ message }} }}
        ... on RunFailureEvent {{ message runError: error {{ message }} }}
      }}
    }}
    {_ERROR_FIELDS}
  }}
}}
"""


_SELECTED_EVENTS = ("AssetCheckEvaluationEvent", "ExecutionStepFailureEvent", "RunFailureEvent")


def _run_events(url: str, run_id: str, page: int = 1000) -> Iterator[Mapping[str, Any]]:
    """The run's check evaluations and failures from its event log (as the run page reads it), in order."""
    cursor = None
    while True:
        data = graphql(url, _RUN_LOGS, {"runId": run_id, "cursor": cursor, "limit": page})["logsForRun"]
        conn = _expect(data, "EventConnection", f"event log of run {run_id}")
        yield from (e for e in conn["events"] if e["__typename"] in _SELECTED_EVENTS)
        if not conn["hasMore"] or conn["cursor"] == cursor:
            return
        cursor = conn["cursor"]


def check_results(url: str, run_id: str) -> list[CheckEvaluation]:
    """Every asset check evaluation of the run (asset, check, passed, severity, partition), in order."""
    return [
        CheckEvaluation(_key_string(ev["assetKey"]["path"]), ev["checkName"], ev["success"], ev["severity"],
                        ev.get("partition"))
        for ev in (e["evaluation"] for e in _run_events(url, run_id) if e["__typename"] == "AssetCheckEvaluationEvent")
    ]


def run_failures(url: str, run_id: str) -> list[str]:
    """Why a run failed: one line per failed step (``step: first line of the error``) and the run's failure."""
    out = []
    for e in _run_events(url, run_id):
        if e["__typename"] == "ExecutionStepFailureEvent":
            message = ((e.get("stepError") or {}).get("message") or "").strip().splitlines() or ["(no message)"]
            out.append(f"{e.get('stepKey')}: {message[0]}")
        elif e["__typename"] == "RunFailureEvent":
            message = ((e.get("runError") or {}).get("message") or e.get("message") or "").strip().splitlines()
            out.append(f"run: {message[0] if message else '(no message)'}")
    return out


# --------------------------------------------------------------------------------------------------------
# Partitions


_PARTITION_KEYS = """
query PartitionKeys($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) { partitionKeysByDimension { name partitionKeys } }
}
"""


def partition_keys_by_dimension(url: str, asset_key: AssetKeyLike) -> dict[str, list[str]]:
    """The partition keys of an asset per dimension (``{"date": [...], "portfolio": [...]}``; ``{"default": ...}``
    for a one-dimensional asset); dynamic dimensions as the instance holds them now."""
    nodes = graphql(url, _PARTITION_KEYS, {"assetKeys": [_key_input(asset_key)]})["assetNodes"]
    if not nodes:
        raise WebserverError("partition keys", "AssetNotFoundError", f"unknown asset key {asset_key!r}")
    return {d["name"]: list(d["partitionKeys"]) for d in nodes[0]["partitionKeysByDimension"]}


# --------------------------------------------------------------------------------------------------------
# Automation: sensors and schedules


_INSTIGATORS = f"""
query Instigators {{
  repositoriesOrError {{
    ... on RepositoryConnection {{
      nodes {{
        name
        location {{ name }}
        sensors {{ name sensorType sensorState {{ id status }} }}
        schedules {{ name scheduleState {{ id status }} }}
      }}
    }}
    {_ERROR_FIELDS}
  }}
}}
"""


def instigators(url: str) -> list[InstigatorInfo]:
    """Every sensor (automation condition sensors included) and schedule of the workspace, with its status."""
    data = graphql(url, _INSTIGATORS)["repositoriesOrError"]
    repos = _expect(data, "RepositoryConnection", "repositories")
    out = []
    for repo in repos["nodes"]:
        where = {"repository": repo["name"], "location": repo["location"]["name"]}
        for s in repo["sensors"]:
            out.append(InstigatorInfo(s["name"], s["sensorState"]["status"], "sensor", s["sensorType"],
                                      s["sensorState"]["id"], **where))
        for s in repo["schedules"]:
            out.append(InstigatorInfo(s["name"], s["scheduleState"]["status"], "schedule", None,
                                      s["scheduleState"]["id"], **where))
    return out


def sensor_names(url: str, *, running_only: bool = False) -> list[str]:
    """Names of the sensors (only those RUNNING with ``running_only``)."""
    return [i.name for i in instigators(url) if i.kind == "sensor" and (not running_only or i.status == "RUNNING")]


def schedule_names(url: str, *, running_only: bool = False) -> list[str]:
    """Names of the schedules (only those RUNNING with ``running_only``)."""
    return [i.name for i in instigators(url) if i.kind == "schedule" and (not running_only or i.status == "RUNNING")]


def _one(url: str, kind: str, name: str) -> InstigatorInfo:
    matches = [i for i in instigators(url) if i.kind == kind and i.name == name]
    if len(matches) != 1:
        typename = "SensorNotFoundError" if kind == "sensor" else "ScheduleNotFoundError"
        raise WebserverError(f"stop {kind}", typename, f"{len(matches)} {kind}s named {name!r}")
    return matches[0]


_STOP_SENSOR = f"""
mutation StopSensor($id: String!) {{
  stopSensor(id: $id) {{
    ... on StopSensorMutationResult {{ instigationState {{ status }} }}
    {_ERROR_FIELDS}
  }}
}}
"""

_STOP_SCHEDULE = f"""
mutation StopSchedule($id: String!) {{
  stopRunningSchedule(id: $id) {{
    ... on ScheduleStateResult {{ scheduleState {{ status }} }}
    {_ERROR_FIELDS}
  }}
}}
"""


def stop_sensor(url: str, sensor_name: str) -> str:
    """Stop a sensor as the UI's toggle does (mutation ``stopSensor``); returns its new status (``STOPPED``)."""
    sensor = _one(url, "sensor", sensor_name)
    result = _expect(graphql(url, _STOP_SENSOR, {"id": sensor.state_id})["stopSensor"], "StopSensorMutationResult",
                     f"stopSensor {sensor_name}")
    return result["instigationState"]["status"]


def stop_schedule(url: str, schedule_name: str) -> str:
    """Stop a schedule (mutation ``stopRunningSchedule``); returns its new status (``STOPPED``)."""
    schedule = _one(url, "schedule", schedule_name)
    result = graphql(url, _STOP_SCHEDULE, {"id": schedule.state_id})["stopRunningSchedule"]
    return _expect(result, "ScheduleStateResult", f"stopRunningSchedule {schedule_name}")["scheduleState"]["status"]


def stop_automation(url: str) -> list[str]:
    """Stop every running sensor and schedule, so only what a script launches runs; returns their names."""
    stopped = []
    for i in instigators(url):
        if i.status == "RUNNING":
            (stop_sensor if i.kind == "sensor" else stop_schedule)(url, i.name)
            stopped.append(i.name)
    return stopped
