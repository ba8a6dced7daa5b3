"""Portfolio runs in parallel worker processes on a persistent Dagster instance (what `sigmasight demo` and
`sigmasight backfill` do): the same rows as one run after another, every run recorded in the instance, and a
failing portfolio that does not stop the others."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigmasight_pipeline import cli
from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.run_tags import BACKFILL_TAG
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table
from sigmasight_pipeline_tests.test_pipeline_end_to_end import COMPARED, _sorted

START, END = "2025-06-25", "2025-06-27"  # three sessions
IDS = [b.portfolio_id for b in DEMO_BOOKS]


@pytest.fixture(scope="module")
def defs():
    return orch.load_definitions()


def _import_all(instance, defs) -> None:
    for book in DEMO_BOOKS:
        orch.import_portfolio(instance, demo_csv_text(book), name=book.name, owner=book.owner,
                              portfolio_id=book.portfolio_id, defs=defs)


def _warehouse(tmp_path, monkeypatch, name: str) -> str:
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", url)
    monkeypatch.setenv("SIGMASIGHT_REPORTS_DIR", str(tmp_path / f"reports_{name}"))
    return url


def _runs(instance) -> list[dg.DagsterRun]:
    return list(reversed(instance.get_runs()))  # oldest first


def test_parallel_runs_equal_sequential_runs_and_are_recorded(tmp_path, monkeypatch, defs):
    tables = {}
    for name, workers in (("sequential", 1), ("parallel", 2)):
        url = _warehouse(tmp_path, monkeypatch, name)
        (tmp_path / f"dagster_{name}").mkdir()
        # the reference runs one after another on an in-memory instance; the parallel runs need a persistent one
        instance_cm = dg.instance_for_test(temp_dir=str(tmp_path / f"dagster_{name}")) if workers > 1 else dg.DagsterInstance.ephemeral()
        with instance_cm as instance:
            _import_all(instance, defs)
            finished = []
            summary = orch.run_window(instance, IDS, START, END, defs=defs, progress=lambda _: None,
                                      on_run=finished.append, workers=workers)
            assert all(summary["checks"].values()), summary["checks"]
            assert len(finished) == 1 + len(IDS) + 1  # market, each portfolio, SQL models
            runs = _runs(instance)
            assert len(runs) == len(IDS) + len(summary["runs"])  # the imports, then this window's runs
            assert sorted(r.run_id for r in runs[len(IDS):]) == sorted(summary["runs"])
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            portfolio_runs = [r for r in runs if "|" in r.tags.get(orch.RANGE_START_TAG, "")]  # date x portfolio ranges
            ranges = sorted(r.tags[orch.RANGE_START_TAG] for r in portfolio_runs)
            assert ranges == sorted(f"{pid}|2025-06-25" for pid in IDS) or ranges == sorted(f"2025-06-25|{pid}" for pid in IDS)
            if workers == 2:
                # the worker processes ran at the same time: some two portfolio runs overlap
                records = instance.get_run_records(dg.RunsFilter(run_ids=[r.run_id for r in portfolio_runs]))
                spans = sorted((rec.start_time, rec.end_time) for rec in records)
                assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans
        tables[name] = {t.name: _sorted(read_table(get_engine(url), t)) for t in COMPARED}
        dispose_engines()
    for table in tables["sequential"]:
        a, b = tables["sequential"][table], tables["parallel"][table]
        assert len(a) == len(b) > 0, table
        for col in a.columns:
            if pd.api.types.is_numeric_dtype(a[col]) and not pd.api.types.is_bool_dtype(a[col]):
                np.testing.assert_allclose(a[col].astype(float), b[col].astype(float), rtol=1e-12, atol=1e-12, err_msg=f"{table}.{col}")
            else:
                assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), f"{table}.{col}"


def test_a_failing_portfolio_does_not_stop_the_others(tmp_path, monkeypatch, defs):
    url = _warehouse(tmp_path, monkeypatch, "failing")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        _import_all(instance, defs)
        engine = get_engine(url)
        with engine.begin() as conn:  # demo-hnw's stored book loses its rows: its run must fail, the others must not
            conn.execute(sa.update(schema.portfolios).where(schema.portfolios.c.portfolio_id == "demo-hnw")
                         .values(source_csv="ticker,quantity,entry_price,entry_date\n"))
        finished = []
        with pytest.raises(orch.RunFailedError) as failure:
            orch.run_window(instance, IDS, START, END, defs=defs, progress=lambda _: None, on_run=finished.append, workers=2)
        assert "demo-hnw" in str(failure.value) and failure.value.run_id  # the error crossed the process boundary whole
        assert any("demo-hnw" in f and "FAILED" in f for f in finished)
        assert not any("SQL models" in f for f in finished)  # nothing downstream of a failed backfill
        reports = read_table(engine, schema.portfolio_reports)
        assert sorted(reports.portfolio_id.unique()) == ["demo-hedge-fund", "demo-individual"]
        assert (reports.groupby("portfolio_id").size() == 3).all()
        statuses = {r.tags[orch.RANGE_START_TAG]: r.status for r in _runs(instance) if orch.RANGE_START_TAG in r.tags}
        assert sum(s == dg.DagsterRunStatus.FAILURE for s in statuses.values()) == 1
    dispose_engines()


def test_cli_backfill_runs_every_portfolio_in_parallel(tmp_path, monkeypatch, defs, capsys):
    _warehouse(tmp_path, monkeypatch, "cli")
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        _import_all(instance, defs)
    assert cli.main(["backfill", "--from", START, "--to", END, "--workers", "2", "--no-sql"]) == 0
    out = capsys.readouterr().out
    assert "failed checks: none" in out
    with dg.DagsterInstance.get() as instance:
        tagged = instance.get_runs(dg.RunsFilter(tags={BACKFILL_TAG: next(
            r.tags[BACKFILL_TAG] for r in instance.get_runs() if BACKFILL_TAG in r.tags)}))
        assert len(tagged) == 1 + len(IDS)  # the market run and one run per portfolio, all under one backfill tag
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in tagged)
    dispose_engines()


def test_a_killed_worker_is_a_clear_error(tmp_path, monkeypatch, defs):
    """SIGKILL of a worker process (the OOM killer, an operator) ends the backfill with an error naming the
    portfolio, not a BrokenProcessPool traceback; the runs already finished stay recorded."""
    import multiprocessing
    import os
    import signal
    import threading
    import time

    _warehouse(tmp_path, monkeypatch, "killed")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        _import_all(instance, defs)
        outcome = {}

        def backfill():
            try:
                outcome["runs"] = list(orch.materialize_portfolios(instance, IDS[:2], START, END, defs=defs, workers=2))
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                outcome["error"] = exc

        thread = threading.Thread(target=backfill)
        thread.start()
        deadline = time.monotonic() + 120
        started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        # kill a worker while it is inside its run (a run has started, as the instance records it)
        while not (len(multiprocessing.active_children()) >= 2 and instance.get_runs(filters=started)):
            assert time.monotonic() < deadline, "no run started"
            time.sleep(0.05)
        workers = multiprocessing.active_children()
        assert workers, "no worker process started"
        os.kill(workers[0].pid, signal.SIGKILL)
        thread.join(300)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), orch.WorkerDiedError), outcome
        message = str(outcome["error"])
        assert "worker process died" in message and "rerun" in message and any(pid in message for pid in IDS[:2])
    dispose_engines()


def test_ctrl_c_stops_a_parallel_backfill_cleanly(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) during `sigmasight demo`: the runs in
    progress stop and are recorded as failed, no further portfolio run starts, the command exits 130 with a
    message instead of a traceback."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster-local.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k != "SIGMASIGHT_DATABASE_URL"}
    env.update(DAGSTER_HOME=str(home), SIGMASIGHT_HOME=str(tmp_path / "sigmasight"), SIGMASIGHT_MARKET_DATA="sample")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sigmasight_pipeline.cli", "demo", "--start", "2025-04-01", "--end", "2025-06-30", "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's foreground job has it
    )
    try:
        for line in proc.stdout:
            if "portfolio run(s)" in line:
                break
        time.sleep(8)  # the two workers are inside their runs (62 sessions each take longer than this)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: runs in progress stopped" in err
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        runs = {r.tags.get(orch.RANGE_START_TAG, ""): r.status for r in instance.get_runs()}
    portfolio_runs = {k.split("|")[1]: v for k, v in runs.items() if "|" in k}
    assert "demo-hedge-fund" not in portfolio_runs  # the third portfolio never started
    assert all(status == dg.DagsterRunStatus.FAILURE for status in portfolio_runs.values()), portfolio_runs
