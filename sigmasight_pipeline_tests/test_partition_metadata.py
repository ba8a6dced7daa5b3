"""Metadata says what it describes. A ranged run's ``MaterializeResult`` metadata is shown on every partition
of the run, so:

* date x portfolio assets name the run's figures ``run_*``, give ``dagster/row_count`` only when the run is a
  single partition, and label previews with the date they show;
* the date-partitioned market assets and ``portfolio_positions`` attach each partition's own row count to
  that partition (``context.add_asset_metadata``; cheap there, see ``defs/metadata.py``).
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from sigmasight_pipeline import runner
from sigmasight_pipeline.defs.partitions import history_start, multi_key
from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import get_engine, read_table
from sigmasight_pipeline_tests.conftest import sample_world

START, END, HOLIDAY = "2025-06-17", "2025-06-20", "2025-06-19"
BOOKS = DEMO_BOOKS[:2]
TABLES = {
    "position_greeks": [schema.position_greeks],
    "position_valuations": [schema.position_valuations, schema.portfolio_exposures, schema.group_exposures],
    "factor_exposures": [schema.position_factor_exposures, schema.portfolio_factor_exposures,
                         schema.factor_regression_windows, schema.factor_correlations],
    "portfolio_snapshots": [schema.portfolio_snapshots, schema.position_daily_pnl],
    "stress_results": [schema.stress_results, schema.stress_factor_breakdown],
}
SELECTION = [dg.AssetKey(name) for name in TABLES]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sample_world(tmp_path_factory, "meta") as w:
        url, instance, defs = w.url, w.instance, w.defs
        for book in BOOKS:
            runner.import_portfolio(instance, demo_csv_text(book), name=book.name, owner=book.owner,
                                    portfolio_id=book.portfolio_id, defs=defs)
        positions = runner.run(instance, [dg.AssetKey("portfolio_positions")], defs=defs,
                               tags=runner.range_tags(BOOKS[0].portfolio_id, BOOKS[1].portfolio_id, "books"))
        market = runner.materialize_market(instance, history_start(START), END, defs=defs)
        ranged = runner.materialize_portfolio(instance, BOOKS[0].portfolio_id, START, END, defs=defs, selection=SELECTION)
        one_date = runner.run(  # one date, two portfolios: the other shape of a single run
            instance, SELECTION, defs=defs,
            tags=runner.range_tags(multi_key(END, BOOKS[0].portfolio_id), multi_key(END, BOOKS[1].portfolio_id), "one date"),
        )
        single = runner.materialize_portfolio(instance, BOOKS[1].portfolio_id, END, END, defs=defs, selection=SELECTION)
        yield {"engine": get_engine(url), "positions": positions, "market": market, "ranged": ranged,
               "one_date": one_date, "single": single}


def _stored_rows(engine, asset: str, dates, portfolio_id: str) -> dict[str, int]:
    days = [pd.Timestamp(d) for d in dates]
    return {t.name: len(read_table(engine, t, dates=days, portfolio_id=portfolio_id)) for t in TABLES[asset]}


def _by_partition(result, asset: str) -> dict[str, dict]:
    return {str(m.partition): m.metadata for m in result.asset_materializations_for_node(asset)}


@pytest.mark.parametrize("asset", list(TABLES))
def test_a_ranged_run_names_its_figures_as_the_runs(world, asset):
    pid = BOOKS[0].portfolio_id
    mats = _by_partition(world["ranged"], asset)
    dates = [d.strftime("%Y-%m-%d") for d in pd.bdate_range(START, END)]
    assert set(mats) == {f"{d}|{pid}" for d in dates}
    stored = _stored_rows(world["engine"], asset, dates, pid)
    for md in mats.values():
        # The run's rows would read as each partition's row count: not given for a range.
        assert "dagster/row_count" not in md
        assert md["run_rows_by_table"].value == stored
        assert md["run_sessions"].value == 3 and md["run_date_range"].value == f"{START} .. {END}"
        assert md["run_portfolios"].value == pid
        assert "Juneteenth" in md["run_holidays_skipped"].value
        # No run figure under a name that reads as the partition's own.
        assert not {"sessions", "date_range", "portfolios", "rows_by_table", "holidays_skipped"} & set(md)


def test_a_single_partition_run_gives_its_row_count(world):
    pid = BOOKS[1].portfolio_id
    for asset in TABLES:
        (md,) = _by_partition(world["single"], asset).values()
        assert md["dagster/row_count"].value == sum(_stored_rows(world["engine"], asset, [END], pid).values())


def test_one_date_of_two_portfolios(world):
    mats = _by_partition(world["one_date"], "position_valuations")
    assert set(mats) == {f"{END}|{b.portfolio_id}" for b in BOOKS}
    for md in mats.values():
        assert "dagster/row_count" not in md
        assert md["run_portfolios"].value == ", ".join(b.portfolio_id for b in BOOKS)
        assert md["run_date_range"].value == f"{END} .. {END}"


def test_previews_are_labelled_with_their_date(world):
    labels = {
        "position_greeks": "option_greeks", "position_valuations": "exposures",
        "factor_exposures": "portfolio_factor_exposures", "portfolio_snapshots": "snapshot", "stress_results": "stress",
    }
    for asset, name in labels.items():
        md = _by_partition(world["ranged"], asset)[f"{START}|{BOOKS[0].portfolio_id}"]
        assert f"{name} ({END}, latest date of this run)" in md, sorted(md)


def test_market_partitions_show_their_own_rows(world):
    stored = read_table(world["engine"], schema.market_prices)
    per_date = stored.groupby(stored.date.dt.strftime("%Y-%m-%d")).size()
    mats = _by_partition(world["market"], "market_prices")
    assert {d: md["dagster/row_count"].value for d, md in mats.items() if d in per_date} == per_date.to_dict()
    assert mats[HOLIDAY]["dagster/row_count"].value == 0 and mats[HOLIDAY]["no_op"].value is True
    assert "Juneteenth" in mats[HOLIDAY]["reason"].value
    assert mats[END]["run_sessions"].value == len(per_date)
    assert f"closes ({END}, latest date of this run)" in mats[END]
    returns = read_table(world["engine"], schema.security_returns)
    rmats = _by_partition(world["market"], "security_returns")
    assert rmats[END]["dagster/row_count"].value == int((returns.date == pd.Timestamp(END)).sum()) > 0


def test_portfolio_partitions_show_their_own_book(world):
    mats = _by_partition(world["positions"], "portfolio_positions")
    assert set(mats) == {b.portfolio_id for b in BOOKS}
    for book in BOOKS:
        md = mats[book.portfolio_id]
        positions = read_table(world["engine"], schema.positions, portfolio_id=book.portfolio_id)
        assert md["dagster/row_count"].value == len(positions)
        assert book.portfolio_id in md["book"].value and book.portfolio_id in md["run_portfolios"].value
    assert mats[BOOKS[0].portfolio_id]["dagster/row_count"].value != mats[BOOKS[1].portfolio_id]["dagster/row_count"].value


def test_the_report_preview_is_dated_and_the_counts_are_the_runs(world, monkeypatch):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", world["engine"].url.render_as_string(hide_password=False))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("portfolio", [BOOKS[0].portfolio_id])
    result = runner.materialize_portfolio(instance, BOOKS[0].portfolio_id, START, END,
                                          selection=[dg.AssetKey("portfolio_reports")])
    md = _by_partition(result, "portfolio_reports")[f"{START}|{BOOKS[0].portfolio_id}"]
    assert md["run_reports_written"].value == 3  # the three sessions of the run, shown on each partition
    assert f"report ({END}, latest date of this run)" in md
    assert md["run_latest_report_dir"].value.endswith(END)
    assert not {"reports_written", "latest_report", "latest_report_dir"} & set(md)
