"""Building models in the warehouse: views and tables, each model in ONE transaction.

* ``view``: ``DROP VIEW IF EXISTS`` + ``CREATE VIEW``.
* ``table``: ``CREATE TABLE <name>__build AS <select>``, drop the old relation, rename the new one into place.

Both dialects have transactional DDL, so a failed build rolls back and leaves the previous relation as it
was. SQLite needs help for that: Python's sqlite3 module opens transactions only before DML, so the build
issues ``BEGIN IMMEDIATE`` itself (and ``COMMIT``/``ROLLBACK`` through the DBAPI connection).

PostgreSQL refuses to drop a relation that a view depends on. Before a model is replaced, the views of the
project that read it (directly or through other views) are dropped in reverse build order and recreated afterwards, in
the same transaction; so building one upstream model never loses the views downstream of it. A view
created outside the project on a model still blocks its rebuild on PostgreSQL (no ``CASCADE``: that would
drop it silently).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.sqlmodels.compiler import quote
from sigmasight_pipeline.sqlmodels.graph import Manifest, load_manifest

BUILD_SUFFIX = "__build"


class ModelBuildError(RuntimeError):
    """A model's SQL failed in the warehouse; the message names the model and the dialect."""

    def __init__(self, model: str, dialect: str, cause: BaseException, context: str = ""):
        self.model = model
        self.dialect = dialect
        detail = getattr(cause, "orig", None) or cause
        where = f" ({context})" if context else ""
        super().__init__(f"model {model!r} failed to build on {dialect}{where}: {str(detail).strip()}")


@dataclass(frozen=True)
class BuildResult:
    model: str
    materialized: str
    dialect: str
    rows: int
    compiled_sql: str
    seconds: float
    views_recreated: tuple[str, ...] = ()


@contextmanager
def transaction(engine: Engine) -> Iterator[sa.Connection]:
    """One transaction that covers DDL on both dialects (see the module docstring for SQLite)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()


def relation_kinds(conn: sa.Connection) -> dict[str, str]:
    """``{name: "view" | "table"}`` of the relations in the connection's default schema."""
    insp = sa.inspect(conn)
    kinds = {n: "table" for n in insp.get_table_names()}
    kinds.update({n: "view" for n in insp.get_view_names()})
    return kinds


def _drop(conn: sa.Connection, name: str, kind: str | None) -> None:
    q = quote(conn.dialect, name)
    if kind == "view":
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {q}")
    elif kind == "table":
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q}")


def _create(conn: sa.Connection, manifest: Manifest, name: str, kinds: dict[str, str]) -> None:
    """(Re)create one model inside the caller's transaction; ``kinds`` is updated."""
    dialect = conn.dialect
    sql = manifest.compile(name, dialect)
    q = quote(dialect, name)
    if manifest.model(name).materialized == "view":
        _drop(conn, name, kinds.get(name))
        conn.exec_driver_sql(f"CREATE VIEW {q} AS\n{sql}")
        # SQLite binds a view's columns only when it is read: read it now so a bad view fails its build.
        conn.exec_driver_sql(f"SELECT * FROM {q} LIMIT 0").fetchall()
        kinds[name] = "view"
        return
    tmp = quote(dialect, name + BUILD_SUFFIX)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {tmp}")
    conn.exec_driver_sql(f"CREATE TABLE {tmp} AS\n{sql}")
    _drop(conn, name, kinds.get(name))
    if dialect.name == "sqlite":
        # Modern ALTER TABLE ... RENAME re-parses every view of the schema and fails on any that is
        # broken at that instant (e.g. a view outside the project on the table just dropped).
        conn.exec_driver_sql("PRAGMA legacy_alter_table = ON")
        conn.exec_driver_sql(f"ALTER TABLE {tmp} RENAME TO {q}")
        conn.exec_driver_sql("PRAGMA legacy_alter_table = OFF")
    else:
        conn.exec_driver_sql(f"ALTER TABLE {tmp} RENAME TO {q}")
    kinds[name] = "table"


def build_model(engine: Engine, manifest: Manifest, name: str) -> BuildResult:
    """Build (or rebuild) model ``name`` in one transaction and count its rows.

    Views of the project that read ``name`` (directly or through views) are dropped first (reverse build order) and
    recreated after, inside the same transaction.
    """
    start = time.perf_counter()
    dialect = engine.dialect.name
    model = manifest.model(name)
    sql = manifest.compile(name, engine.dialect)
    recreated: list[str] = []
    try:
        with transaction(engine) as conn:
            kinds = relation_kinds(conn)
            views = manifest.dependent_views([name])
            dependents = [d for d in manifest.order if d in views and kinds.get(d) == "view"]
            for d in reversed(dependents):
                _drop(conn, d, "view")
                kinds.pop(d)
            _create(conn, manifest, name, kinds)
            for d in dependents:
                try:
                    _create(conn, manifest, d, kinds)
                except sa.exc.SQLAlchemyError as exc:
                    raise ModelBuildError(name, dialect, exc, f"recreating dependent view {d!r}") from exc
                recreated.append(d)
            rows = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quote(engine.dialect, name)}").scalar_one())
    except sa.exc.SQLAlchemyError as exc:
        raise ModelBuildError(name, dialect, exc) from exc
    return BuildResult(
        model=name,
        materialized=model.materialized,
        dialect=dialect,
        rows=rows,
        compiled_sql=sql,
        seconds=time.perf_counter() - start,
        views_recreated=tuple(recreated),
    )


def build_models(engine: Engine, manifest: Manifest, select: Iterable[str] | None = None) -> dict[str, BuildResult]:
    """Build the selected models (default all) in build order; the first failure raises ``ModelBuildError``."""
    names = manifest.ordered(select) if select is not None else list(manifest.order)
    return {name: build_model(engine, manifest, name) for name in names}


def build_all(engine: Engine, project_dir: str | Path | None = None) -> dict[str, int]:
    """Build every model of the project (default ``dbt_like_sql/``); returns ``{model: row count}``."""
    manifest = load_manifest(project_dir)
    return {name: result.rows for name, result in build_models(engine, manifest).items()}


def drop_models(engine: Engine, manifest: Manifest, select: Iterable[str] | None = None) -> list[str]:
    """Drop the selected models' relations (default all) downstream-first; returns the names dropped.

    Dropping a model also drops the project's views that read it (PostgreSQL would refuse otherwise).
    """
    names = set(manifest.ordered(select)) if select is not None else set(manifest.order)
    names |= manifest.dependent_views(names)
    dropped = []
    with transaction(engine) as conn:
        kinds = relation_kinds(conn)
        for name in reversed(manifest.order):
            if name in names and name in kinds:
                _drop(conn, name, kinds[name])
                dropped.append(name)
    return dropped


def read_relation(engine: Engine, name: str, *, limit: int | None = None, order_by: Iterable[str] | None = None) -> pd.DataFrame:
    """Rows of a model's relation as a DataFrame (values as the driver returns them)."""
    q = quote(engine.dialect, name)
    sql = f"SELECT * FROM {q}"
    if order_by:
        sql += " ORDER BY " + ", ".join(quote(engine.dialect, c) for c in order_by)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with engine.connect() as conn:
        result = conn.exec_driver_sql(sql)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
