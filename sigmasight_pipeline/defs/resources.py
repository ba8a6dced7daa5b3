"""Resources, configured from the environment (see README, "Configuration")."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse.io import get_engine, project_home


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse. ``database_url`` empty means ``$SIGMASIGHT_DATABASE_URL`` or the embedded SQLite file."""

    database_url: str = ""

    @property
    def engine(self) -> Engine:
        return get_engine(self.database_url or None)


class MarketDataResource(dg.ConfigurableResource):
    """Where prices come from: ``sample`` (offline, default), ``yfinance`` or ``csv``.

    Empty fields fall back to ``$SIGMASIGHT_MARKET_DATA`` and ``$SIGMASIGHT_MARKET_DATA_CSV``.
    """

    source: str = ""
    csv_directory: str = ""

    def get_source(self):
        from sigmasight_pipeline.marketdata.base import get_source

        options = {}
        csv_dir = self.csv_directory or os.environ.get("SIGMASIGHT_MARKET_DATA_CSV", "")
        if csv_dir:
            options["directory"] = csv_dir
        return get_source(self.source or None, **options)


class ReportsResource(dg.ConfigurableResource):
    """Output root of the reports: ``$SIGMASIGHT_REPORTS_DIR`` or ``$SIGMASIGHT_HOME/reports``."""

    output_root: str = ""

    @property
    def root(self) -> Path:
        root = self.output_root or os.environ.get("SIGMASIGHT_REPORTS_DIR") or str(project_home() / "reports")
        path = Path(root).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path


def default_resources() -> dict[str, dg.ConfigurableResource]:
    return {"warehouse": WarehouseResource(), "market_data": MarketDataResource(), "reports": ReportsResource()}
