"""How the API asks Dagster to compute (api.md, "Operations"): every request for work becomes a *work request*.

Two ways, chosen by ``SIGMASIGHT_DAGSTER_URL`` (``ApiSettings.dagster_url``):

* **Through a Dagster webserver** (the deployment: ``docker compose up``, ``make dev``): the route's
  ``via_webserver(url, tags)`` sends the UI's own GraphQL mutation (``webserver_client.launch_backfill`` /
  ``launch_run``); the daemon runs it. The request id is the Dagster backfill or run id.
* **In the API's own worker thread** (no webserver configured: ``make api`` beside ``make demo``): the route's
  ``in_process(context)`` calls the functions the CLI calls (``runner.run_window``, ``runner.import_portfolio``...)
  on the Dagster instance of ``DAGSTER_HOME``. One request runs at a time, in order. Its runs carry the tag
  ``sigmasight/backfill=<request id>`` (as the CLI's backfills do), so the instance, the UI and
  ``GET /requests/{id}`` show them.

Either way the runs are recorded in the Dagster instance; ``status`` reads them there.
"""

from __future__ import annotations

import datetime as dt
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sigmasight_pipeline.api.settings import ApiSettings
from sigmasight_pipeline.run_tags import BACKFILL_TAG, REQUESTED_BY_TAG
STATUS_PATH = "/api/v1/requests/{request_id}"  # where a request's state and runs are read (routes/operations.py)


@dataclass
class WorkContext:
    """What an in-process plan gets: the Dagster instance, the loaded definitions, the tags its runs carry."""

    instance: object
    defs: object
    tags: dict[str, str]


@dataclass
class WorkRequest:
    """One request for work: id, label, who asked, how it runs, its state and the error if it failed.

    ``state``: ``queued`` | ``running`` | ``succeeded`` | ``failed`` (in process), ``launched`` (webserver: the
    Dagster backfill or run holds the state)."""

    request_id: str
    label: str
    key_id: str
    mode: str  # "in_process" | "webserver"
    submitted_at: dt.datetime
    state: str = "queued"
    error: str | None = None
    result: dict = field(default_factory=dict)  # what the plan returned (e.g. the onboarding run id)


class Launcher:
    """Submits work (module docstring); keeps the in-process requests of this API process."""

    def __init__(self, settings: ApiSettings):
        self.settings = settings
        self._pool: ThreadPoolExecutor | None = None
        self._requests: dict[str, WorkRequest] = {}
        self._lock = threading.Lock()
        self._instance = None
        self._defs = None

    @property
    def mode(self) -> str:
        return "webserver" if self.settings.dagster_url else "in_process"

    def instance(self):
        """The Dagster instance of ``DAGSTER_HOME`` (opened once)."""
        import dagster as dg

        with self._lock:
            if self._instance is None:
                self._instance = dg.DagsterInstance.get()
            return self._instance

    def definitions(self):
        from sigmasight_pipeline import runner

        with self._lock:
            if self._defs is None:
                self._defs = runner.load_definitions()
            return self._defs

    def submit(
        self, label: str, *, key_id: str,
        in_process: Callable[[WorkContext], dict | None],
        via_webserver: Callable[[str, dict[str, str]], str] | None = None,
    ) -> WorkRequest:
        """Start the work (module docstring) and return its request at once."""
        from sigmasight_pipeline.runner import new_backfill_id

        now = dt.datetime.now(dt.timezone.utc)
        tags = {REQUESTED_BY_TAG: key_id}
        if self.settings.dagster_url and via_webserver is not None:
            launched_id = via_webserver(self.settings.dagster_url, tags)
            request = WorkRequest(launched_id, label, key_id, "webserver", now, state="launched")
            with self._lock:
                self._requests[request.request_id] = request
            return request
        request = WorkRequest(new_backfill_id(), label, key_id, "in_process", now)
        tags[BACKFILL_TAG] = request.request_id
        with self._lock:
            self._requests[request.request_id] = request
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sigmasight-work")
        self._pool.submit(self._run, request, in_process, tags)
        return request

    def _run(self, request: WorkRequest, plan: Callable[[WorkContext], dict | None], tags: dict[str, str]) -> None:
        request.state = "running"
        try:
            request.result = plan(WorkContext(self.instance(), self.definitions(), dict(tags))) or {}
            request.state = "succeeded"
        except Exception as exc:  # noqa: BLE001 - the request records the failure; the API keeps serving
            request.error = f"{type(exc).__name__}: {exc}"
            request.state = "failed"
            traceback.print_exc()

    def describe(self, request: WorkRequest) -> dict:
        """The answer to a request for work (202): id, label, state, mode, when, error, result, status URL."""
        return {
            "request_id": request.request_id, "label": request.label, "state": request.state, "mode": request.mode,
            "submitted_at": request.submitted_at, "error": request.error, "result": dict(request.result),
            "status_url": STATUS_PATH.format(request_id=request.request_id),
        }

    def get(self, request_id: str) -> WorkRequest | None:
        with self._lock:
            return self._requests.get(request_id)

    def recover(self, request_id: str) -> WorkRequest | None:
        """A work request this process does not hold (it restarted since, or another API process took it), read
        back from the Dagster instance: its runs, or its backfill or run, carry the request id and the key that
        asked (:data:`REQUESTED_BY_TAG`). None when nothing there names it as an API request."""
        return recover_request(self.instance(), request_id)

    def requests(self) -> list[WorkRequest]:
        with self._lock:
            return sorted(self._requests.values(), key=lambda r: r.submitted_at, reverse=True)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every in-process request submitted so far has finished (tests, shutdown)."""
        if self._pool is not None:
            self._pool.submit(lambda: None).result(timeout=timeout)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
        if self._instance is not None:
            self._instance.dispose()


#: A run's final states that mean the request failed.
_FAILED_RUNS = frozenset({"FAILURE", "CANCELED"})


def recover_request(instance, request_id: str) -> WorkRequest | None:
    """:meth:`Launcher.recover`. An in-process request is the runs tagged ``sigmasight/backfill=<id>``: its
    state is ``failed`` if one of them failed, ``succeeded`` once all succeeded, else ``running`` (a request cut off
    by a restart stays so: its runs say how far it got). A webserver request is the Dagster backfill or run of
    that id (``launched``: the instance holds its state). Its label is what its runs cover; its result is not kept."""
    import dagster as dg

    from sigmasight_pipeline.run_tags import COVERS_TAG

    if len(request_id) > 64:
        return None
    records = list(instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_TAG: request_id})))  # newest first
    if records:
        runs = [r.dagster_run for r in reversed(records)]
        key_id, mode = runs[0].tags.get(REQUESTED_BY_TAG), "in_process"
        statuses = {run.status.value for run in runs}
        state = ("failed" if statuses & _FAILED_RUNS else "succeeded" if statuses == {"SUCCESS"} else "running")
        submitted = min(r.create_timestamp for r in records)
        labels = [run.tags.get(COVERS_TAG) for run in runs]
    else:
        backfill = instance.get_backfill(request_id)
        record = None if backfill is not None else instance.get_run_record_by_id(request_id)
        if backfill is None and record is None:
            return None
        tags = backfill.tags if backfill is not None else record.dagster_run.tags
        key_id, mode, state = tags.get(REQUESTED_BY_TAG), "webserver", "launched"
        submitted = (dt.datetime.fromtimestamp(backfill.backfill_timestamp, dt.timezone.utc) if backfill is not None
                     else record.create_timestamp)
        labels = [tags.get(COVERS_TAG)]
    if not key_id:
        return None  # a CLI backfill or a UI launch: not an API work request
    label = "; ".join(x for x in labels if x) or request_id
    if submitted.tzinfo is None:
        submitted = submitted.replace(tzinfo=dt.timezone.utc)
    return WorkRequest(request_id, f"{label} (read back from the Dagster instance)", key_id, mode, submitted,
                       state=state)
