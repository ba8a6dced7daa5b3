"""Scratch PostgreSQL databases for the tests and the benchmarks: created on demand, always dropped."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

from .io import dispose_engines


@contextlib.contextmanager
def throwaway_postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Create a database named ``<prefix>_<random>`` on the server of ``admin_url`` (a login that may create
    databases), yield its URL (password included, for SQLAlchemy and Dagster), and drop it at the end, also
    when the block fails: the warehouse's cached engines are disposed and lingering sessions are closed
    (``DROP DATABASE ... WITH (FORCE)``, PostgreSQL 13+). An unreachable server raises
    ``sqlalchemy.exc.OperationalError`` before anything is created."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            dispose_engines()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
