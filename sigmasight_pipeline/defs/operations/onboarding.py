"""The one onboarding path, used by ``sigmasight onboard`` / ``demo`` and by ``portfolio_inbox_sensor``.

1. **validate** the upload (every row and field error at once; nothing is stored on error);
2. **store** it (and the reference data: security master, factors, scenarios);
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
from sigmasight_pipeline.onboarding import parse_portfolio_csv, slugify
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
) -> Onboarding:
    """Validate and store an upload; return the partition to add and the positions run to request.

    Raises :class:`~sigmasight_pipeline.onboarding.PortfolioValidationError` (every error, nothing stored) or
    ``ValueError`` (the id is not a valid slug, or the name belongs to another portfolio).
    """
    parsed = parse_portfolio_csv(csv)  # raises with every error (size, encoding, rows) before anything is written
    csv_text = csv.decode("utf-8-sig") if isinstance(csv, bytes) else csv
    pid = slugify(portfolio_id or name)
    load_reference_data(engine)
    save_portfolio_source(engine, portfolio_id=pid, name=name, owner=owner, csv_text=csv_text, filename=filename)
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
