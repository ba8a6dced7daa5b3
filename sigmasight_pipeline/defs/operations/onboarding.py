"""The one onboarding path, used by ``sigmasight onboard`` / ``demo`` and by ``portfolio_inbox_sensor``.

1. **validate** the upload (every row and field error at once; nothing is stored on error), then judge its
   entries against the market-data source (entry sanity, ``quality.entries``: warnings, never refusals);
2. **store** it with its entry sanity warnings in one transaction (and the reference data: security master,
   factors, scenarios);
3. **add the partition**: the portfolio's key in the dynamic ``portfolio`` dimension;
4. **request** ``portfolio_positions`` for it.

Steps 3 and 4 are returned as Dagster's own request objects: a sensor returns them in its
``SensorResult``; the CLI adds the partition to the instance and runs the request in-process (or through the
webserver with ``--submit``). Once the positions are materialized, the automation conditions
(``defs/automation.py``) request the portfolio's history in one backfill: the market history first (its
book changed), then every session of the new portfolio, then the SQL models. On a laptop without a daemon
the CLI runs that same window in-process (``runner.run_window``).
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.partitions import first_computed_date, last_computed_date, portfolios
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.marketdata import sources
from sigmasight_pipeline.onboarding import parse_portfolio_csv, slugify
from sigmasight_pipeline.onboarding.entry_sanity import UPLOAD_SOURCE, file_entry_warnings
from sigmasight_pipeline.warehouse.entry_warnings import replace_entry_warnings
from sigmasight_pipeline.warehouse.portfolios import save_portfolio_source
from sigmasight_pipeline.warehouse.reference import load_reference_data

POSITIONS_KEY = dg.AssetKey("portfolio_positions")
#: Tags of an onboarding run, so the UI's Runs page finds it.
ONBOARDING_TAG = "sigmasight/onboarding"


@dataclass(frozen=True)
class Onboarding:
    """A stored portfolio and the Dagster requests that bring it into the graph."""

    portfolio_id: str
    name: str
    positions: int
    earliest_entry: pd.Timestamp
    add_partition: dg.AddDynamicPartitionsRequest
    run_request: dg.RunRequest
    #: the upload's entry sanity warnings (their messages, by row), as stored in ``entry_warnings``
    entry_warnings: tuple[str, ...] = ()


def onboard(
    engine: Engine,
    csv: str | bytes,
    *,
    name: str,
    owner: str | None = None,
    portfolio_id: str | None = None,
    filename: str | None = None,
    run_key: str | None = None,
    tags: dict[str, str] | None = None,
    source=None,
    replace: bool = True,
) -> Onboarding:
    """Validate and store an upload; return the partition to add and the positions run to request.

    ``replace=False`` (the API's uploads) only ever creates a portfolio: an id or name already stored, even by a
    concurrent upload, raises :class:`~sigmasight_pipeline.warehouse.portfolios.PortfolioExistsError`.

    ``source`` is the market-data source the entries are judged against (default: the configured one,
    ``$SIGMASIGHT_MARKET_DATA``, as the market assets use); its warnings replace the portfolio's stored upload
    warnings in the transaction that stores the upload.

    Raises :class:`~sigmasight_pipeline.onboarding.PortfolioValidationError` (every error, nothing stored) or
    ``ValueError`` (the id is not a valid slug, or the name belongs to another portfolio).
    """
    parsed = parse_portfolio_csv(csv)  # raises with every error (size, encoding, rows) before anything is written
    csv_text = csv.decode("utf-8-sig") if isinstance(csv, bytes) else csv
    pid = slugify(portfolio_id or name)
    warnings = file_entry_warnings(parsed, source if source is not None else sources.get_source())
    load_reference_data(engine)
    save_portfolio_source(
        engine, portfolio_id=pid, name=name, owner=owner, csv_text=csv_text, filename=filename,
        also=lambda conn: replace_entry_warnings(conn, pid, UPLOAD_SOURCE, warnings), replace=replace,
    )
    request = dg.RunRequest(
        run_key=run_key,
        asset_selection=[POSITIONS_KEY],
        partition_key=pid,
        tags={**(tags or {}), ONBOARDING_TAG: pid},
    )
    return Onboarding(
        portfolio_id=pid,
        name=name,
        positions=len(parsed),
        earliest_entry=pd.Timestamp(min(p.entry_date for p in parsed)),
        add_partition=portfolios.build_add_request([pid]),
        run_request=request,
        entry_warnings=tuple(warnings["message"]),
    )


def history_window(earliest_entry, *, now=None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The sessions a new portfolio is computed over, or None when there is none yet.

    From the later of the first computed date (``$SIGMASIGHT_PARTITION_START``) and the first session after
    the earliest entry date, to the last session closed by ``now`` (default: now) or
    ``$SIGMASIGHT_PARTITION_END``, whichever is earlier. The automation conditions request the same window
    (every session of a new portfolio's partitions).
    """
    start = max(xcal.next_session(earliest_entry), xcal.next_session(first_computed_date() - pd.Timedelta(days=1)))
    end = xcal.latest_completed_session(now)
    partition_end = last_computed_date()
    if partition_end is not None:
        end = min(end, xcal.session_on_or_before(partition_end))
    return None if start > end else (start, end)



@dataclass(frozen=True)
class TradesOnboarding:
    """Stored trades and the positions run that brings them into the graph."""

    portfolio_id: str
    trades: int
    first_trade_date: pd.Timestamp
    last_trade_date: pd.Timestamp
    run_request: dg.RunRequest
    #: the file's entry sanity warnings (their messages, by row), stored with the trades
    entry_warnings: tuple[str, ...] = ()


def onboard_trades(
    engine: Engine,
    portfolio_id: str,
    csv: str | bytes,
    *,
    filename: str | None = None,
    run_key: str | None = None,
    tags: dict[str, str] | None = None,
    source=None,
) -> TradesOnboarding:
    """Validate a trades file (the file's own rules, then against the stored book), store every trade in one
    transaction with the file's entry sanity warnings (judged against ``source``, default the configured
    one), and return the ``portfolio_positions`` run to request.

    Raises :class:`~sigmasight_pipeline.onboarding.trades_csv.TradesValidationError` (every error, nothing
    stored) or :class:`~sigmasight_pipeline.warehouse.portfolios.UnknownPortfolioError`.
    """
    from sigmasight_pipeline.onboarding.trades_csv import read_trades_csv
    from sigmasight_pipeline.warehouse.book import import_trades
    from sigmasight_pipeline.warehouse.portfolios import get_portfolio

    pid = get_portfolio(engine, portfolio_id)["portfolio_id"]
    parsed, file_errors = read_trades_csv(csv)
    warnings = file_entry_warnings(parsed, source if source is not None else sources.get_source())
    done = import_trades(engine, pid, parsed, filename=filename, warnings=warnings, file_errors=file_errors)
    request = dg.RunRequest(
        run_key=run_key, asset_selection=[POSITIONS_KEY], partition_key=pid,
        tags={**(tags or {}), ONBOARDING_TAG: pid},
    )
    return TradesOnboarding(pid, done.count, pd.Timestamp(done.first_trade_date), pd.Timestamp(done.last_trade_date),
                            request, tuple(warnings["message"]))
