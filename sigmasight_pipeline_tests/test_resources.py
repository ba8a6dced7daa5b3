"""Resources are configured from the environment with ``dg.EnvVar``, and keep their defaults when it is unset."""

from __future__ import annotations

import dagster as dg
import pytest

from sigmasight_pipeline.defs.resources import MarketDataResource, ReportsResource, WarehouseResource, default_resources
from sigmasight_pipeline.marketdata import CsvSource, SampleSource, YFinanceSource

VARIABLES = ("SIGMASIGHT_DATABASE_URL", "SIGMASIGHT_MARKET_DATA", "SIGMASIGHT_MARKET_DATA_CSV", "SIGMASIGHT_REPORTS_DIR")


def _probe(result_holder: dict):
    @dg.asset
    def probe(warehouse: WarehouseResource, market_data: MarketDataResource, reports: ReportsResource):
        result_holder.update(url=str(warehouse.engine.url), source=market_data.get_source(), reports=reports.root)

    return probe


def test_set_variables_are_bound_as_env_vars_and_resolve_at_run_time(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGMASIGHT_DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "csv")
    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA_CSV", str(tmp_path))
    monkeypatch.setenv("SIGMASIGHT_REPORTS_DIR", str(tmp_path / "out"))
    resources = default_resources()
    assert isinstance(resources["warehouse"].database_url, dg.EnvVar)
    assert resources["warehouse"].database_url.env_var_name == "SIGMASIGHT_DATABASE_URL"
    assert resources["market_data"].source.env_var_name == "SIGMASIGHT_MARKET_DATA"
    assert resources["market_data"].csv_directory.env_var_name == "SIGMASIGHT_MARKET_DATA_CSV"
    assert resources["reports"].output_root.env_var_name == "SIGMASIGHT_REPORTS_DIR"
    seen: dict = {}
    assert dg.materialize([_probe(seen)], resources=resources).success
    assert seen["url"].endswith("w.db")
    assert isinstance(seen["source"], CsvSource) and seen["source"].directory == tmp_path
    assert seen["reports"] == (tmp_path / "out").resolve()


def test_unset_variables_keep_the_defaults(monkeypatch, tmp_path):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIGMASIGHT_HOME", str(tmp_path / "home"))
    resources = default_resources()
    assert resources["warehouse"].database_url == "" and resources["market_data"].source == ""
    seen: dict = {}
    assert dg.materialize([_probe(seen)], resources=resources).success
    assert seen["url"] == f"sqlite:///{tmp_path / 'home' / 'warehouse.db'}"
    assert isinstance(seen["source"], SampleSource)
    assert seen["reports"] == (tmp_path / "home" / "reports").resolve()
    # A variable set after the definitions loaded still counts (the resource reads it at run time).
    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "yfinance")
    assert dg.materialize([_probe(seen)], resources=resources).success
    assert isinstance(seen["source"], YFinanceSource)


def test_why_the_fallback_stays_custom_an_unset_env_var_fails_the_run(monkeypatch):
    """Dagster refuses a run whose resource config names an unset variable (``EnvVar`` has no default), so an
    unset variable is not bound as ``EnvVar``: the resource's own default applies instead."""
    monkeypatch.delenv("SIGMASIGHT_DATABASE_URL", raising=False)
    with pytest.raises(dg.DagsterInvalidConfigError, match="SIGMASIGHT_DATABASE_URL"):
        dg.materialize([_probe({})], resources={
            "warehouse": WarehouseResource(database_url=dg.EnvVar("SIGMASIGHT_DATABASE_URL")),
            "market_data": MarketDataResource(), "reports": ReportsResource(),
        })


def test_definitions_use_default_resources():
    from sigmasight_pipeline.definitions import defs

    assert set(defs().resources) >= {"warehouse", "market_data", "reports"}
