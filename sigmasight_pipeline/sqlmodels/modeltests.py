"""Model tests (dbt's generic tests): ``not_null`` and ``unique`` as SQL returning the offending rows.

A model declares ``not_null: [cols]`` (a row fails when any listed column is NULL) and ``unique_key: [cols]``
(a key fails when more than one row carries it). Each becomes one :class:`ModelTest`; running it counts the
offending rows and keeps a small sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy.engine import Engine

from sigmasight_pipeline.sqlmodels.compiler import quote, resolve_dialect
from sigmasight_pipeline.sqlmodels.graph import Manifest

UNIQUE = "unique_key"
NOT_NULL = "not_null"


@dataclass(frozen=True)
class ModelTest:
    model: str
    kind: str  # UNIQUE | NOT_NULL
    columns: tuple[str, ...]
    severity: str  # "error" | "warn"

    @property
    def name(self) -> str:
        """The test's name, unique within its model (a valid Dagster check name)."""
        return self.kind

    @property
    def description(self) -> str:
        cols = ", ".join(self.columns)
        if self.kind == UNIQUE:
            return f"No two rows of {self.model} share ({cols})."
        return f"No row of {self.model} has a NULL in {cols}."

    def sql(self, dialect) -> str:
        """A SELECT of the offending rows: the rows with a NULL, or each duplicated key with its row count."""
        d = resolve_dialect(dialect)
        rel = quote(d, self.model)
        cols = [quote(d, c) for c in self.columns]
        if self.kind == NOT_NULL:
            return f"SELECT * FROM {rel} WHERE " + " OR ".join(f"{c} IS NULL" for c in cols)
        keys = ", ".join(cols)
        return f"SELECT {keys}, COUNT(*) AS n_rows FROM {rel} GROUP BY {keys} HAVING COUNT(*) > 1"


@dataclass(frozen=True)
class TestOutcome:
    test: ModelTest
    failing_rows: int
    sample: pd.DataFrame
    sql: str

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0

    __test__ = False  # not a pytest class


def model_tests(manifest: Manifest, name: str) -> list[ModelTest]:
    """The tests model ``name`` declares (``not_null`` first, then ``unique_key``)."""
    conf = manifest.model(name).config
    tests = []
    if conf.not_null:
        tests.append(ModelTest(name, NOT_NULL, conf.not_null, conf.severity))
    if conf.unique_key:
        tests.append(ModelTest(name, UNIQUE, conf.unique_key, conf.severity))
    return tests


def run_model_test(engine: Engine, test: ModelTest, *, sample_size: int = 5) -> TestOutcome:
    """Count the offending rows of ``test`` and fetch the first ``sample_size`` of them."""
    sql = test.sql(engine.dialect)
    with engine.connect() as conn:
        failing = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM ({sql}) AS offending").scalar_one())
        sample = pd.DataFrame()
        if failing:
            result = conn.exec_driver_sql(f"{sql} LIMIT {int(sample_size)}")
            sample = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return TestOutcome(test=test, failing_rows=failing, sample=sample, sql=sql)


def run_model_tests(engine: Engine, manifest: Manifest, name: str, *, sample_size: int = 5) -> list[TestOutcome]:
    return [run_model_test(engine, t, sample_size=sample_size) for t in model_tests(manifest, name)]
