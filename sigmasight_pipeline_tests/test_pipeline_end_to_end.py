"""The whole graph on the demo books, for a 20-session range, on SQLite and on PostgreSQL.

One module-scoped build per dialect (the expensive part) feeds the assertions below: every check passes,
the numbers are the same on both dialects (to 1e-9), a single-date run gives the same rows as that date of
the range run, and reruns replace rather than duplicate.
"""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.reporting import load_report_schema
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine, read_table
from sigmasight_pipeline_tests.conftest import throwaway_postgres_database

START, END = "2025-06-02", "2025-06-30"  # 21 weekdays, 20 sessions (2025-06-19, Juneteenth, is closed)
ONE_DATE = "2025-06-13"
PORTFOLIOS = [b.portfolio_id for b in DEMO_BOOKS]
COMPARED = [
    schema.position_valuations, schema.portfolio_exposures, schema.group_exposures, schema.position_greeks,
    schema.position_factor_exposures, schema.portfolio_factor_exposures, schema.factor_regression_windows,
    schema.factor_correlations, schema.position_rate_sensitivity, schema.portfolio_rate_sensitivity,
    schema.position_correlations, schema.correlation_summaries, schema.correlation_clusters,
    schema.stress_results, schema.stress_factor_breakdown, schema.portfolio_snapshots, schema.position_daily_pnl,
]


def _build(url: str, reports_dir) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGMASIGHT_DATABASE_URL", url)
        mp.setenv("SIGMASIGHT_REPORTS_DIR", str(reports_dir))
        mp.setenv("SIGMASIGHT_MARKET_DATA", "sample")
        instance = dg.DagsterInstance.ephemeral()
        defs = orch.load_definitions()
        for book in DEMO_BOOKS:
            orch.import_portfolio(instance, demo_csv_text(book), name=book.name, owner=book.owner,
                                  portfolio_id=book.portfolio_id, defs=defs)
        summary = orch.run_window(instance, PORTFOLIOS, START, END, defs=defs, progress=lambda _: None)
        engine = get_engine(url)
        tables = {t.name: read_table(engine, t) for t in COMPARED}
        # Rerun one date of one portfolio on its own: it must reproduce the range run's rows exactly.
        orch.materialize_portfolio(instance, "demo-hedge-fund", ONE_DATE, ONE_DATE, defs=defs)
        rerun = {t.name: read_table(engine, t) for t in COMPARED}
        return {"engine": engine, "summary": summary, "tables": tables, "rerun": rerun, "reports": reports_dir}


@pytest.fixture(scope="module")
def sqlite_build(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'warehouse.db'}"
    yield _build(url, tmp_path_factory.mktemp("reports_sqlite"))
    dispose_engines()


@pytest.fixture(scope="module")
def postgres_build(tmp_path_factory):
    with throwaway_postgres_database() as url:
        yield _build(url, tmp_path_factory.mktemp("reports_pg"))


def test_every_check_passes(sqlite_build, postgres_build):
    for build in (sqlite_build, postgres_build):
        failed = [name for name, ok in build["summary"]["checks"].items() if not ok]
        assert failed == []
        # warnings: the hedge fund's scenario losses beyond its equity (books.md); performance windows longer
        # than the book's history (risk_measures.md: limited history is a warning, never a block)
        warned = sorted(name for name, ok in build["summary"]["warnings"].items() if not ok)
        assert warned == ["portfolio_performance.performance_history", "stress_results.stress_losses_within_equity"]
        names = set(build["summary"]["checks"])
        assert {"factor_exposures.history_window", "factor_exposures.no_duplicate_factors",
                "position_valuations.exposures_consistent", "position_greeks.greeks_sane",
                "stress_results.loss_cap", "stress_results.scenario_count",
                "portfolio_snapshots.snapshot_sums", "portfolio_reports.prepublish_validation"} <= names
        assert {"risk_measures.es_at_least_var", "risk_measures.contributions_add_up",
                "pnl_attribution.attribution_sums_to_pnl"} <= names


def test_one_run_for_the_market_one_per_portfolio_and_one_for_the_sql_models(sqlite_build):
    assert len(sqlite_build["summary"]["runs"]) == 1 + len(PORTFOLIOS) + 1


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if frame[c].dtype == object or "date" in c or c.endswith("_id") or c in ("position_a", "position_b")]
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("table", [t.name for t in COMPARED])
def test_same_numbers_on_sqlite_and_postgresql(sqlite_build, postgres_build, table):
    a, b = _sorted(sqlite_build["tables"][table]), _sorted(postgres_build["tables"][table])
    assert len(a) == len(b) > 0
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if pd.api.types.is_numeric_dtype(a[col]) and not pd.api.types.is_bool_dtype(a[col]):
            np.testing.assert_allclose(a[col].astype(float), b[col].astype(float), rtol=1e-9, atol=1e-9, err_msg=f"{table}.{col}")
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), f"{table}.{col}"


@pytest.mark.parametrize("table", [t.name for t in COMPARED if t.name != "portfolio_snapshots" and t.name != "position_daily_pnl"])
def test_single_date_rerun_equals_the_range_run(sqlite_build, table):
    before, after = sqlite_build["tables"][table], sqlite_build["rerun"][table]
    assert len(before) == len(after)  # no duplicates, nothing lost
    pd.testing.assert_frame_equal(_sorted(before), _sorted(after))


def test_snapshots_continue_after_a_single_date_rerun(sqlite_build):
    before = _sorted(sqlite_build["tables"]["portfolio_snapshots"])
    after = _sorted(sqlite_build["rerun"]["portfolio_snapshots"])
    assert len(before) == len(after)
    one = pd.Timestamp(ONE_DATE)
    row_b = before[(before.date == one) & (before.portfolio_id == "demo-hedge-fund")].iloc[0]
    row_a = after[(after.date == one) & (after.portfolio_id == "demo-hedge-fund")].iloc[0]
    # Rerun in the middle: P&L from the previous close, cumulative continued from the stored previous snapshot.
    assert row_a.daily_pnl == pytest.approx(row_b.daily_pnl, abs=0.01)
    assert row_a.cumulative_pnl == pytest.approx(row_b.cumulative_pnl, abs=0.01)
    assert not row_a.is_first_snapshot


def test_partition_coverage(sqlite_build):
    t = sqlite_build["tables"]
    dates = set(t["portfolio_snapshots"].date.dt.strftime("%Y-%m-%d"))
    assert len(dates) == 20 and "2025-06-19" not in dates
    counts = t["position_valuations"].groupby("portfolio_id").position_id.nunique().to_dict()
    assert counts == {"demo-individual": 16, "demo-hnw": 17, "demo-hedge-fund": 30}
    # Seven factors per position and date, never duplicated.
    f = t["position_factor_exposures"]
    assert not f.duplicated(["date", "portfolio_id", "position_id", "factor_name"]).any()
    assert f.groupby(["date", "portfolio_id", "position_id"]).factor_name.count().eq(7).all()
    assert (t["stress_results"].groupby(["date", "portfolio_id"]).scenario_id.count() == 18).all()


def test_first_snapshot_is_flagged_and_measured_from_entry(sqlite_build):
    s = sqlite_build["tables"]["portfolio_snapshots"]
    first = s[s.date == s.date.min()]
    assert first.is_first_snapshot.all()
    v = sqlite_build["tables"]["position_valuations"]
    v0 = v[v.date == s.date.min()].groupby("portfolio_id").unrealized_pnl.sum()
    for r in first.itertuples():
        assert r.daily_pnl == pytest.approx(v0[r.portfolio_id], abs=0.01 * 30)
    assert not s[s.date > s.date.min()].is_first_snapshot.any()


def test_individual_book_exposures(sqlite_build):
    e = sqlite_build["tables"]["portfolio_exposures"]
    ind = e[e.portfolio_id == "demo-individual"]
    assert (ind.short_exposure == 0).all() and (ind.long_count == 16).all()
    assert (ind.gross_exposure == ind.net_exposure).all()
    assert (ind.total_cost_basis == 485_000.00).all()


def test_reports_written_and_valid(sqlite_build):
    import jsonschema

    root = sqlite_build["reports"]
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert len(folders) == 3 * 20
    assert "demo-individual-investor-portfolio_2025-06-30" in folders
    validator = jsonschema.Draft202012Validator(load_report_schema())
    for folder in root.glob("*_2025-06-30"):
        report = json.loads((folder / "portfolio_report.json").read_text())
        validator.validate(report)
        assert report["metadata"]["anchor_date"] == "2025-06-30"
        csv = pd.read_csv(folder / "portfolio_report.csv")
        assert len(csv.columns) == 34
        assert (folder / "portfolio_report.md").read_text().startswith("#")


def test_ranged_report_reads_equal_one_date_reads(sqlite_build):
    """The reports asset reads a run's range once; every date's input equals the one-date read, including
    a date without rows (Juneteenth) and one before any data, which stay empty (never another date's rows)."""
    import dataclasses
    import datetime as dt

    from sigmasight_pipeline.reporting import build_report, load_report_input, load_report_inputs

    engine = sqlite_build["engine"]
    dates = [dt.date(2025, 6, 2), dt.date(2025, 6, 18), dt.date(2025, 6, 19), dt.date(2025, 6, 30), dt.date(2024, 1, 2)]
    ranged = list(load_report_inputs(engine, "demo-hedge-fund", dates))
    assert [r.anchor_date for r in ranged] == dates
    stamp = dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc)
    for got in ranged:
        want = load_report_input(engine, "demo-hedge-fund", got.anchor_date)
        for f in dataclasses.fields(want):
            a, b = getattr(got, f.name), getattr(want, f.name)
            if isinstance(b, pd.DataFrame):
                pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
            else:
                assert a == b, f.name
        assert build_report(got, generated_at=stamp).markdown == build_report(want, generated_at=stamp).markdown
    assert len(ranged[1].valuations) == 30 and ranged[2].valuations.empty and ranged[4].snapshot_history.empty
    assert pd.DatetimeIndex(ranged[1].snapshot_history["date"]).max() == pd.Timestamp("2025-06-18")


def test_numbers_that_must_not_mislead_on_the_demo_books(sqlite_build):
    """books.md: SPY (the Market proxy) regressed on a design containing SPY is an exact fit: flagged, t_stat
    NULL, betas kept (beta 1 on Market, 0 on the spreads); no other symbol is. The first snapshot has no daily
    return (NULL); the second's is its P&L over the first's gross exposure, as before."""
    t = sqlite_build["tables"]
    pos = read_table(sqlite_build["engine"], schema.positions)
    under = pos.assign(u=pos.underlying_symbol.fillna(pos.symbol))[["portfolio_id", "position_id", "u"]]
    f = t["position_factor_exposures"].merge(under, on=["portfolio_id", "position_id"])
    spy = f[f.u == "SPY"]
    assert set(spy.portfolio_id) == {"demo-hnw", "demo-hedge-fund"}  # the hedge fund's SPY call takes SPY's betas
    assert spy.exact_fit.astype(bool).all() and spy.t_stat.isna().all()
    assert spy[spy.factor_name == "Market"].beta.to_numpy() == pytest.approx(1.0, abs=1e-9)
    assert spy[spy.factor_name != "Market"].beta.abs().max() < 1e-9
    others = f[(f.u != "SPY") & f.beta.notna()]
    assert not others.exact_fit.astype(bool).any() and others.t_stat.notna().all()

    s = t["portfolio_snapshots"].sort_values(["portfolio_id", "date"])
    for _, g in s.groupby("portfolio_id"):
        first, second = g.iloc[0], g.iloc[1]
        assert bool(first.is_first_snapshot) and first.pnl_basis == "entry_price"
        assert pd.isna(first.daily_return)
        # (stored P&L and exposure are rounded to the cent; the return was computed before rounding)
        assert second.daily_return == pytest.approx(second.daily_pnl / first.gross_exposure, rel=1e-6)
