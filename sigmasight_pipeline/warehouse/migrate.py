"""Schema migrations of the warehouse (Alembic): an existing warehouse upgrades in place, never by dropping it.

DESIGN.md, "Storage": schema changes reach an existing warehouse through migrations. The revisions live in
``warehouse/migrations/versions/``; the Alembic environment is configured here, in code (no ``alembic.ini``):

* :func:`migrate` brings a database to the head revision. :func:`sigmasight_pipeline.warehouse.io.get_engine`
  calls it once per engine, and ``sigmasight migrate`` calls it on demand.

  - at head already: ONE query (``SELECT version_num FROM alembic_version``) and nothing else, since engines are
    created often (every run, every worker);
  - an empty database: upgrade from nothing to head;
  - a warehouse written before migrations existed (the warehouse tables, no ``alembic_version``, as the old
    ``metadata.create_all`` left it): it adopts the baseline (``0001_baseline`` creates only the tables that
    are missing, so a complete old warehouse is simply stamped), then upgrades to head;
  - otherwise: upgrade to head. No revision drops a table that holds data.

  Several processes may start at once (parallel workers, the daemon, the webserver): the slow path runs in
  ONE transaction under a lock and re-reads the revision after taking it, so exactly one of them migrates and
  the others find the head. PostgreSQL: ``pg_advisory_xact_lock`` (its DDL is transactional, so a failed
  migration leaves the previous schema). SQLite: ``BEGIN IMMEDIATE`` on a connection of its own, with foreign
  keys OFF, as a batch ("move and copy") migration needs: dropping a table with them ON would cascade.

* A new revision: change ``schema.py``, then ``.venv/bin/python -c "from sigmasight_pipeline.warehouse.migrate
  import revision; revision('what changed')"`` autogenerates it against a scratch SQLite database at head;
  read it, and add a test that upgrades a warehouse of the previous revision.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse import schema

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
BASELINE = "0001_baseline"
VERSION_TABLE = "alembic_version"
#: ``pg_advisory_xact_lock`` key: a fixed 63-bit number that names "the warehouse's migration" on a server.
PG_LOCK_KEY = 0x5167_6D61_5369_6768 & 0x7FFF_FFFF_FFFF_FFFF
#: Set on the Alembic config when a pre-migration warehouse adopts the baseline (read by ``0001_baseline``).
ADOPT_EXISTING = "adopt_existing_tables"


class Migration(NamedTuple):
    """Revisions of the database before and after :func:`migrate` (empty tuple: none)."""

    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(url: str | None = None, connection: sa.Connection | None = None) -> Config:
    """An Alembic ``Config`` built in code: the package's script location, and either an open ``connection``
    (what :func:`migrate` passes) or a database ``url`` (for Alembic's own commands)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head_revisions() -> tuple[str, ...]:
    """The head revision(s) of the package's migrations (read once per process)."""
    return tuple(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Only the warehouse schema is Alembic's business: relations it does not define (the SQL models' views
    and tables, anything an operator adds) are neither compared nor dropped."""
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def configure_context(context, connection: sa.Connection) -> None:
    """``context.configure`` for the warehouse: the schema's metadata, batch mode on SQLite (its ALTER TABLE
    is limited, so later revisions rewrite tables through ``op.batch_alter_table``)."""
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
        version_table=VERSION_TABLE,
    )


def run_environment(context) -> None:
    """Body of ``migrations/env.py``: migrate on the caller's connection, or on the configured URL."""
    if context.is_offline_mode():
        raise RuntimeError("the warehouse migrations run online only (no --sql)")
    connection = context.config.attributes.get("connection")
    if connection is not None:  # migrate(): inside its locked transaction
        configure_context(context, connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection or set sqlalchemy.url (alembic_config(url=...))")
    if url.startswith(("postgresql://", "postgres://")):  # psycopg 3, as io.get_engine does
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            configure_context(context, conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def current_revisions(connection: sa.Connection) -> tuple[str, ...]:
    """The revision(s) recorded in ``connection``'s database (empty without a version table)."""
    return tuple(sorted(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads()))


def _recorded_revisions(engine: Engine) -> tuple[str, ...] | None:
    """The fast path's one query; None when it cannot answer (no version table yet, a busy database)."""
    try:
        with engine.connect() as conn:
            return tuple(sorted(r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))))
    except sa.exc.DBAPIError:
        return None


def _is_memory_sqlite(url: sa.URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


@contextlib.contextmanager
def _locked_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """One transaction that no other migrating process shares (see the module docstring)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield conn
        return
    if engine.dialect.name != "sqlite" or _is_memory_sqlite(engine.url):
        # Another dialect, or a private in-memory database nobody else can open: a plain transaction.
        with engine.begin() as conn:
            yield conn
        return
    lock_engine = sa.create_engine(engine.url, poolclass=sa.pool.NullPool, connect_args={"timeout": 60})

    @sa.event.listens_for(lock_engine, "connect")
    def _connect(dbapi_conn, _record):  # pragma: no cover - trivial
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own: we BEGIN IMMEDIATE below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.close()

    @sa.event.listens_for(lock_engine, "begin")
    def _begin(conn):  # pragma: no cover - trivial
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, held to COMMIT: migrations run one at a time

    try:
        with lock_engine.begin() as conn:
            yield conn
    finally:
        lock_engine.dispose()


def migrate(engine: Engine) -> Migration:
    """Bring ``engine``'s database to the head revision (see the module docstring); never drops data."""
    heads = head_revisions()
    recorded = _recorded_revisions(engine)
    if recorded == heads:
        return Migration(recorded, recorded)
    with _locked_transaction(engine) as conn:
        before = current_revisions(conn)  # again, under the lock: another process may have migrated meanwhile
        if before != heads:
            cfg = alembic_config(connection=conn)
            if not before and set(sa.inspect(conn).get_table_names()) & set(schema.metadata.tables):
                cfg.attributes[ADOPT_EXISTING] = True  # written by create_all before migrations: adopt the baseline
                command.upgrade(cfg, BASELINE)
                cfg.attributes[ADOPT_EXISTING] = False
            command.upgrade(cfg, "heads")
        after = current_revisions(conn)
    return Migration(before, after)


def revision(message: str, rev_id: str | None = None) -> str:
    """Autogenerate a new revision file from the difference between ``schema.metadata`` and a scratch SQLite
    database migrated to the current head; returns its path. A developer's tool: read and edit the result."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}", poolclass=sa.pool.NullPool)
        try:
            migrate(engine)
            with engine.begin() as conn:
                script = command.revision(
                    alembic_config(connection=conn), message=message, autogenerate=True, rev_id=rev_id
                )
        finally:
            engine.dispose()
    head_revisions.cache_clear()
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(s.path for s in scripts if s is not None)
