"""Report benchmark: seconds per report, by phase, on an existing warehouse (e.g. the demo's). Asserts nothing.

For each portfolio it takes the last ``--sessions`` sessions with a snapshot, reads their report inputs the
way the ``portfolio_reports`` asset does (``load_report_inputs``: each table once for the range), then for
every (portfolio, session) times, ``--repeat`` times, the phases of the asset:

* build       ``build_report`` (all of it), and, where the package has them, its parts (timed on a second
              build of the same input): the sections (every section's data from the inputs), the Markdown
              (Jinja2), the JSON document and the CSV;
* json text   ``report_json_text`` (what the writer puts in portfolio_report.json);
* validate    ``prepublish_problems`` (the blocking check: JSON Schema, counts, dates, availability);
* charts      ``render_charts``, and each of its charts;
* write       ``write_report`` (the files, atomically, into a temp directory; the JSON text included: the
              asset formats it once, there).

Each portfolio's range runs as the asset runs a batch: with the garbage collector paused
(``collection_paused``, where the package has it; a package without it runs with the collector on, as its
asset did).

It prints milliseconds per report (mean and median), the whole (load + build + validate + charts + write),
the CPU time next to the wall time and the load average (on a shared machine wall time is inflated).
``--profile`` runs the same work once more under cProfile and prints the top entries.

    python benchmarks/reports.py --warehouse /tmp/rptdemo/.sigmasight/warehouse.db
    python benchmarks/reports.py --sessions 40 --repeat 3 --profile

``--warehouse``: a SQLAlchemy URL or a SQLite file (default ``$SIGMASIGHT_DATABASE_URL`` or
``$SIGMASIGHT_HOME/warehouse.db``, as the pipeline resolves it). ``--package``: the reporting package to
time (default ``sigmasight_pipeline.reporting``); a copy of an earlier version on ``PYTHONPATH`` gives
"before" figures::

    mkdir -p /tmp/before && git archive <commit> sigmasight_pipeline/reporting | tar -x -C /tmp/before
    mv /tmp/before/sigmasight_pipeline/reporting /tmp/before/reporting_before
    PYTHONPATH=/tmp/before python benchmarks/reports.py --package reporting_before
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import importlib
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from sigmasight_pipeline.warehouse import schema  # noqa: E402
from sigmasight_pipeline.warehouse.io import get_engine  # noqa: E402


def _engine(warehouse: str | None):
    if warehouse and "://" not in warehouse:
        warehouse = f"sqlite:///{Path(warehouse).resolve()}"
    return get_engine(warehouse or None)


def _sessions(engine, portfolio_id: str, n: int) -> list[dt.date]:
    snap = schema.portfolio_snapshots
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(snap.c.date).where(snap.c.portfolio_id == portfolio_id).order_by(snap.c.date.desc()).limit(n)
        ).all()
    return sorted(pd.Timestamp(r[0]).date() for r in rows)


def _portfolios(engine) -> list[str]:
    p = schema.portfolios
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(p.c.portfolio_id).order_by(p.c.portfolio_id)).all()]


class _Timer:
    """Wall and CPU seconds per call, by phase (on a loaded machine the CPU time is the steadier figure)."""

    def __init__(self):
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, list[float]] = defaultdict(list)

    def __call__(self, phase: str, fn, *args, **kwargs):
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn(*args, **kwargs)
        self.cpu[phase].append(time.thread_time() - c0)
        self.samples[phase].append(time.perf_counter() - t0)
        return out


def _parts(R):
    """The parts of build_report the package exposes (the split layout), else {}."""
    try:
        sections = importlib.import_module(f"{R.__name__}.sections")
        markdown = importlib.import_module(f"{R.__name__}.markdown")
        json_report = importlib.import_module(f"{R.__name__}.json_report")
        csv_report = importlib.import_module(f"{R.__name__}.csv_report")
    except ImportError:
        return {}
    return {
        "sections": sections.build_sections,
        "markdown": markdown.render_markdown,
        "json doc": json_report.report_document,
        "csv": csv_report.csv_text,
    }


def run(R, engine, work: list[tuple[str, list[dt.date]]], repeat: int, timer: _Timer, out_dir: Path) -> int:
    charts_mod = importlib.import_module(f"{R.__name__}.charts")
    draw = {
        "factor_exposures.png": ("  factor chart", charts_mod.factor_exposure_chart),
        "stress_pnl.png": ("  stress chart", charts_mod.stress_chart),
        "cumulative_pnl.png": ("  P&L chart", charts_mod.cumulative_pnl_chart),
        "drawdown.png": ("  drawdown chart", charts_mod.drawdown_chart),
        "var_backtest.png": ("  VaR backtest chart", charts_mod.var_backtest_chart),
    }
    parts = _parts(R)
    generated = dt.datetime(2025, 7, 1, 6, 30, tzinfo=dt.timezone.utc)
    paused = getattr(R, "collection_paused", contextlib.nullcontext)  # as the asset reports a batch
    reports = 0
    for portfolio_id, dates in work:
        with paused():
            reports += _run_portfolio(R, engine, portfolio_id, dates, repeat, timer, out_dir, parts, draw, generated)
    return reports


def _run_portfolio(R, engine, portfolio_id, dates, repeat, timer, out_dir, parts, draw, generated) -> int:
    """One portfolio's range (a batch of the asset): its inputs read once, then every report timed by phase."""
    reports = 0
    t0, c0 = time.perf_counter(), time.thread_time()
    inputs = list(R.load_report_inputs(engine, portfolio_id, dates))
    timer.cpu["load inputs (per report)"].extend([(time.thread_time() - c0) / len(dates)] * len(dates))
    timer.samples["load inputs (per report)"].extend([(time.perf_counter() - t0) / len(dates)] * len(dates))
    for inp in inputs:
        for _ in range(repeat):
            rendered = timer("build", R.build_report, inp, generated)
            if parts:
                sec = timer("  sections", parts["sections"], inp, generated)
                timer("  markdown", parts["markdown"], sec)
                timer("  json document", parts["json doc"], sec)
                timer("  csv", parts["csv"], sec)
            timer("json text", R.report_json_text, rendered)
            problems = timer("validate", R.prepublish_problems, rendered, inp, expected_scenarios=len(inp.scenarios))
            if problems:
                raise SystemExit(f"{portfolio_id} {inp.anchor_date}: {problems[:3]}")
            charts = timer("charts", R.render_charts, rendered)
            subtitle = f"{inp.portfolio_name} - as of {inp.anchor_date.isoformat()}"
            for name in rendered.chart_files:
                label, fn = draw[name]
                timer(label, fn, rendered.chart_data[name], subtitle)
            directory = R.report_dir(out_dir, inp.portfolio_name, inp.anchor_date)
            timer("write", R.write_report, rendered, charts, directory)
            reports += 1
    return reports


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warehouse", help="SQLAlchemy URL or SQLite file of a built warehouse (the demo's)")
    ap.add_argument("--portfolio", action="append", help="portfolio id (repeatable; default every portfolio)")
    ap.add_argument("--sessions", type=int, default=20, help="last N sessions per portfolio (default 20)")
    ap.add_argument("--repeat", type=int, default=1, help="times each report is built (default 1)")
    ap.add_argument("--package", default="sigmasight_pipeline.reporting", help="reporting package to time")
    ap.add_argument("--profile", action="store_true", help="also profile the same work with cProfile")
    args = ap.parse_args(argv)

    R = importlib.import_module(args.package)
    engine = _engine(args.warehouse)
    portfolios = args.portfolio or _portfolios(engine)
    work = [(p, _sessions(engine, p, args.sessions)) for p in portfolios]
    work = [(p, d) for p, d in work if d]
    if not work:
        raise SystemExit("no portfolio with snapshots in this warehouse: run `sigmasight demo` first")

    with tempfile.TemporaryDirectory(prefix="sigmasight-bench-reports-") as tmp:
        first = _Timer()
        t0 = time.perf_counter()
        run(R, engine, [(work[0][0], work[0][1][:1])], 1, first, Path(tmp))  # cold: imports, templates, fonts, schema
        cold = time.perf_counter() - t0

        timer = _Timer()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        n = run(R, engine, work, args.repeat, timer, Path(tmp))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

        print(f"package {args.package}; {n} reports ({', '.join(f'{p} x {len(d)}' for p, d in work)}, "
              f"repeat {args.repeat}); first report (cold) {cold:.3f} s")
        print(f"{'phase':<28}{'wall mean ms':>13}{'median ms':>11}{'CPU mean ms':>13}")
        for phase, values in timer.samples.items():
            print(f"{phase:<28}{1000 * statistics.fmean(values):>13.2f}{1000 * statistics.median(values):>11.2f}"
                  f"{1000 * statistics.fmean(timer.cpu[phase]):>13.2f}")
        whole = ("load inputs (per report)", "build", "validate", "charts", "write")
        wall_s = sum(statistics.fmean(timer.samples[k]) for k in whole)
        cpu_s = sum(statistics.fmean(timer.cpu[k]) for k in whole)
        print(f"per report (load + build + validate + charts + write): wall {wall_s:.4f} s, CPU {cpu_s:.4f} s")
        print(f"benchmark loop: wall {wall:.2f} s, CPU {cpu:.2f} s (timed parts run {args.repeat}x; build parts "
              f"and charts are timed twice)")
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        if load:
            print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")

        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run(R, engine, work, 1, _Timer(), Path(tmp))
            prof.disable()
            stats = pstats.Stats(prof)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
