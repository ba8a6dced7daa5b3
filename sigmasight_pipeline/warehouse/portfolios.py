"""Portfolios in the warehouse: the stored upload, the positions derived from it, and typed reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame, upsert, write_partition


class UnknownPortfolioError(LookupError):
    """No portfolio with that id or name."""


class PortfolioExistsError(ValueError):
    """A new portfolio's id or name is already another portfolio's; ``field`` is ``portfolio_id`` or ``name``."""

    def __init__(self, field: str, value: str):
        self.field, self.value = field, value
        super().__init__(f"portfolio {'id' if field == 'portfolio_id' else 'name'} {value!r} is already used")


def save_portfolio_source(
    engine: Engine, *, portfolio_id: str, name: str, owner: str | None, csv_text: str, filename: str | None = None,
    also: Callable[[sa.Connection], object] | None = None, replace: bool = True,
) -> None:
    """Store (or replace) a portfolio's validated upload; ``portfolio_positions`` derives positions from it.

    ``also(connection)``, when given, runs in the same transaction once the upload row is written (the
    onboarding path stores the upload's entry sanity warnings so: both or neither). ``replace=False`` stores
    a *new* portfolio only: the row is inserted, so the database's own keys (the id, the unique name) refuse an
    id or a name that exists, also one stored a moment ago by a concurrent upload, with
    :class:`PortfolioExistsError`; nothing is replaced and nothing of this upload is stored."""
    if replace:  # (a new portfolio's insert is refused by the unique name itself)
        clash = read_frame(
            engine,
            sa.select(schema.portfolios.c.portfolio_id).where(
                (schema.portfolios.c.name == name) & (schema.portfolios.c.portfolio_id != portfolio_id)
            ),
        )
        if len(clash):
            raise ValueError(f"portfolio name {name!r} is already used by portfolio {clash.portfolio_id[0]!r}")
    row = {
        "portfolio_id": portfolio_id, "name": name, "owner": owner, "source_csv": csv_text,
        "source_filename": filename, "uploaded_at": dt.datetime.now(dt.timezone.utc),
    }
    try:
        with engine.begin() as conn:
            if replace:
                upsert(conn, schema.portfolios, [row])
            else:
                conn.execute(sa.insert(schema.portfolios), [row])
            if also is not None:
                also(conn)
    except sa.exc.IntegrityError:
        if replace:
            raise
        t = schema.portfolios
        with engine.connect() as conn:
            taken_id = conn.execute(sa.select(t.c.portfolio_id).where(t.c.portfolio_id == portfolio_id)).first()
        raise PortfolioExistsError(*(("portfolio_id", portfolio_id) if taken_id else ("name", name))) from None


def list_portfolios(engine: Engine) -> pd.DataFrame:
    """``portfolio_id, name, owner, uploaded_at`` of every stored portfolio."""
    t = schema.portfolios
    return read_frame(engine, sa.select(t.c.portfolio_id, t.c.name, t.c.owner, t.c.uploaded_at).order_by(t.c.portfolio_id))


def get_portfolio(engine: Engine, id_or_name: str) -> dict:
    """The portfolio row for an id or an exact name; :class:`UnknownPortfolioError` names the known ones."""
    t = schema.portfolios
    rows = read_frame(engine, sa.select(t).where((t.c.portfolio_id == id_or_name) | (t.c.name == id_or_name)))
    if rows.empty:
        known = ", ".join(list_portfolios(engine).portfolio_id) or "none"
        raise UnknownPortfolioError(f"unknown portfolio {id_or_name!r} (known: {known})")
    return rows.iloc[0].to_dict()


def replace_positions(engine: Engine, portfolio_id: str, positions: pd.DataFrame, tags: pd.DataFrame) -> int:
    """Replace a portfolio's positions and tags in one transaction; returns the position count."""
    with engine.begin() as conn:
        write_partition(engine, schema.position_tags, tags.iloc[0:0], portfolio_ids=[portfolio_id], connection=conn)
        write_partition(engine, schema.positions, positions, portfolio_ids=[portfolio_id], connection=conn)
        write_partition(engine, schema.position_tags, tags, portfolio_ids=[portfolio_id], connection=conn)
    return len(positions)


def read_positions(engine: Engine, portfolio_id: str) -> pd.DataFrame:
    """Positions of a portfolio in the engines' convention.

    Columns: ``position_id, symbol, position_type, quantity, entry_price, entry_date, underlying_symbol,
    option_type, strike, expiration, multiplier, cost_basis, is_option, implied_vol (NaN: none is
    uploaded), tags (tuple), sector, industry, asset_type``.
    """
    p, t, m = schema.positions, schema.position_tags, schema.security_master
    frame = read_frame(engine, sa.select(p).where(p.c.portfolio_id == portfolio_id).order_by(p.c.position_id))
    tags = read_frame(engine, sa.select(t.c.position_id, t.c.tag).where(t.c.portfolio_id == portfolio_id).order_by(t.c.position_id, t.c.tag))
    master = read_frame(engine, sa.select(m.c.symbol, m.c.sector, m.c.industry, m.c.asset_type))
    if frame.empty:
        return frame.assign(is_option=pd.Series(dtype=bool), implied_vol=pd.Series(dtype=float), tags=pd.Series(dtype=object))
    frame = frame.drop(columns=["portfolio_id"])
    frame["is_option"] = frame["option_type"].notna()
    frame["multiplier"] = frame["multiplier"].astype(float)
    frame["implied_vol"] = float("nan")
    grouped = tags.groupby("position_id")["tag"].apply(tuple) if len(tags) else pd.Series(dtype=object)
    frame["tags"] = frame["position_id"].map(grouped).apply(lambda v: v if isinstance(v, tuple) else ())
    # Sector/industry of the underlying (an option is classified by what it is written on).
    frame = frame.merge(master, how="left", left_on="underlying_symbol", right_on="symbol", suffixes=("", "_m"))
    frame = frame.drop(columns=["symbol_m"])
    frame["asset_type"] = frame["asset_type"].where(~frame["is_option"], "option")
    return frame


def held_symbols(engine: Engine) -> list[str]:
    """Every market-data symbol held by any portfolio (an option contributes its underlying)."""
    p = schema.positions
    rows = read_frame(engine, sa.select(p.c.underlying_symbol).distinct())
    return sorted(rows.underlying_symbol)
