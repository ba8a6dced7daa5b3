"""A check's failure is its portfolio's: the latest evaluation of each check in a run that covered the book
(``defs/check_history.py``). Before, the latest evaluation anywhere in the instance decided: one book's failure
showed in every other book's report, and a book passing later hid another's failure."""

from __future__ import annotations

import dagster as dg
import pytest

from sigmasight_pipeline.defs.check_history import PAGE, check_name, failed_checks_by_portfolio
from sigmasight_pipeline.run_tags import RANGE_END_TAG, RANGE_START_TAG

DATES = dg.DailyPartitionsDefinition(start_date="2025-06-02", end_date="2025-06-05")
BOOKS = dg.MultiPartitionsDefinition({"date": DATES, "portfolio": dg.StaticPartitionsDefinition(["bad", "good"])})
CHECK = dg.AssetCheckKey(dg.AssetKey("engine"), "loss_cap")
MARKET_CHECK = dg.AssetCheckKey(dg.AssetKey("prices"), "complete")
FAILING: set[str] = set()  # the books (or "market") whose check fails in the next run


@dg.asset(partitions_def=BOOKS, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("loss_cap", asset="engine")])
def engine(context):
    books = {k.keys_by_dimension["portfolio"] for k in context.partition_keys}
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="loss_cap", passed=not (books & FAILING))


@dg.asset(check_specs=[dg.AssetCheckSpec("complete", asset="prices")])
def prices():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="complete", passed="market" not in FAILING)


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def _run(instance, book: str, *, failing: set[str] = frozenset()) -> None:
    FAILING.clear()
    FAILING.update(failing)
    keys = DATES.get_partition_keys()
    tags = {RANGE_START_TAG: f"{keys[0]}|{book}", RANGE_END_TAG: f"{keys[-1]}|{book}"}
    assert dg.materialize([engine], instance=instance, tags=tags).success


def test_a_failure_stays_with_its_book_and_is_not_hidden_by_another_passing_later(instance):
    _run(instance, "bad", failing={"bad"})
    _run(instance, "good")  # the latest evaluation in the instance passed
    assert failed_checks_by_portfolio(instance, [CHECK], ["bad", "good"]) == {"bad": [CHECK], "good": []}
    _run(instance, "bad")  # the book's own rerun passes: its failure is gone
    assert failed_checks_by_portfolio(instance, [CHECK], ["bad", "good"]) == {"bad": [], "good": []}


def test_a_book_never_evaluated_has_no_failure_and_every_asked_book_is_answered(instance):
    _run(instance, "bad", failing={"bad"})
    assert failed_checks_by_portfolio(instance, [CHECK], ["good", "new"]) == {"good": [], "new": []}
    assert failed_checks_by_portfolio(instance, [], ["bad"]) == {"bad": []}


def test_a_run_naming_no_portfolio_counts_for_every_book(instance):
    FAILING.clear()
    FAILING.add("market")
    assert dg.materialize([prices], instance=instance).success
    assert failed_checks_by_portfolio(instance, [MARKET_CHECK, CHECK], ["bad", "good"]) == {
        "bad": [MARKET_CHECK], "good": [MARKET_CHECK],
    }


def test_the_look_back_pages_past_other_books_runs(instance, monkeypatch):
    monkeypatch.setattr("sigmasight_pipeline.defs.check_history.PAGE", 2)
    _run(instance, "bad", failing={"bad"})
    for _ in range(5):
        _run(instance, "good")
    assert failed_checks_by_portfolio(instance, [CHECK], ["bad", "good"]) == {"bad": [CHECK], "good": []}
    assert PAGE == 200 and check_name(CHECK) == "engine.loss_cap"
