"""Resources, configured from the environment with ``dg.EnvVar`` (see README, "Configuration").

| resource | field | variable | when unset |
|---|---|---|---|
| ``warehouse`` | ``database_url`` | ``SIGMASIGHT_DATABASE_URL`` | SQLite file ``$SIGMASIGHT_HOME/warehouse.db`` |
| ``market_data`` | ``source`` | ``SIGMASIGHT_MARKET_DATA`` | ``sample`` (offline) |
| ``market_data`` | ``csv_directory`` | ``SIGMASIGHT_MARKET_DATA_CSV`` | none (the csv source then refuses to start) |
| ``reports`` | ``output_root`` | ``SIGMASIGHT_REPORTS_DIR`` | ``$SIGMASIGHT_HOME/reports`` |

Why the fallback stays in the resources: Dagster resolves an ``EnvVar`` when a run starts and refuses an unset
one (``dagster/_config/source.py``: "You have attempted to fetch the environment variable ... which is not
set", a ``DagsterInvalidConfigError`` for the whole run; ``EnvVar`` has no default). So ``default_resources``
binds a field to ``dg.EnvVar`` only when its variable is set as the definitions load (the UI then shows the
variable, not its value); otherwise the field stays empty and the resource applies today's default, reading
the variable at run time (so one set later still counts).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.instance_storage import event_log_held_open
from sigmasight_pipeline.marketdata import sources
from sigmasight_pipeline.warehouse.io import DATABASE_URL_ENV, REPORTS_DIR_ENV, get_engine, reports_root


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse. ``database_url`` empty means ``$SIGMASIGHT_DATABASE_URL`` or the embedded SQLite file.

    Every run that writes the warehouse uses this resource, so it is also where a run keeps a SQLite Dagster
    instance's event-log files open while it stores its events (``defs/instance_storage.py`` says why).
    """

    database_url: str = ""
    _run_scope: contextlib.ExitStack = PrivateAttr(default_factory=contextlib.ExitStack)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.instance is not None:
            self._run_scope.enter_context(event_log_held_open(context.instance, context.run_id))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._run_scope.close()

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
        options = {}
        csv_dir = self.csv_directory or os.environ.get(sources.CSV_DIR_ENV, "")
        if csv_dir:
            options["directory"] = csv_dir
        return sources.get_source(self.source or None, **options)


class ReportsResource(dg.ConfigurableResource):
    """Output root of the reports: ``$SIGMASIGHT_REPORTS_DIR`` or ``$SIGMASIGHT_HOME/reports``."""

    output_root: str = ""

    @property
    def root(self) -> Path:
        return reports_root(self.output_root)


def env_or_default(name: str) -> str:
    """``dg.EnvVar(name)`` when the variable is set, else "" (the resource's own default applies)."""
    return dg.EnvVar(name) if name in os.environ else ""


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources of the ``Definitions``, configured from the environment (module docstring)."""
    return {
        "warehouse": WarehouseResource(database_url=env_or_default(DATABASE_URL_ENV)),
        "market_data": MarketDataResource(
            source=env_or_default(sources.SOURCE_ENV), csv_directory=env_or_default(sources.CSV_DIR_ENV)
        ),
        "reports": ReportsResource(output_root=env_or_default(REPORTS_DIR_ENV)),
    }
