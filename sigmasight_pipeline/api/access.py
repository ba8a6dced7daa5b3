"""Who may see what (api.md): the key of a request, its rate limit, its use, and the portfolios it may see.

* No ``Authorization: Bearer <token>``, a malformed, unknown or revoked token: 401.
* A normal key sees the portfolios whose owner is the key's owner; any other portfolio is a 404 that reads
  exactly like an unknown one, so its existence is not revealed. An operator key sees every portfolio and may
  call ``/operations``; a normal key there is a 403.
* Each key may make ``rate_limit`` requests a minute (a token bucket that refills continuously); beyond that
  the answer is 429 with ``Retry-After`` in whole seconds. The bucket lives in the API process.
* Use (answered and refused requests, last use) is counted in memory and added to the key's row every few
  seconds and at shutdown (``UsageRecorder``), so a request never waits on a write.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from sigmasight_pipeline.api.common import database, resolve_as_of
from sigmasight_pipeline.api.errors import ApiError
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.api_keys import ApiKey, record_use, verify_token


class RateLimiter:
    """Per-key token buckets: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """0 when the request may go; else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


class UsageRecorder:
    """Counts each key's answered and refused requests; :meth:`flush` adds them to the warehouse."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._use: dict[str, list] = {}
        self._lock = threading.Lock()

    def count(self, key_id: str, *, limited: bool) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            entry = self._use.setdefault(key_id, [0, 0, now])
            entry[1 if limited else 0] += 1
            entry[2] = now

    def flush(self) -> None:
        with self._lock:
            use, self._use = self._use, {}
        if use:
            record_use(self.engine, {k: (a, r, t) for k, (a, r, t) in use.items()})


@dataclass(frozen=True)
class Caller:
    """The verified key of a request."""

    key: ApiKey

    @property
    def is_operator(self) -> bool:
        return self.key.is_operator


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def caller(request: Request) -> Caller:
    """The request's key (401 without a valid one; 429 beyond its rate limit)."""
    state = request.app.state
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "authorization", "an API key is required: send 'Authorization: Bearer <key>' "
                                             "(sigmasight api-key create makes one)", headers={"WWW-Authenticate": "Bearer"})
    key = verify_token(database(request), token)
    if key is None:
        raise ApiError(401, "authorization", "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
    wait = state.rate_limiter.take(key.key_id)
    state.usage.count(key.key_id, limited=wait > 0)
    if wait > 0:
        raise ApiError(429, "authorization", f"rate limit of {state.settings.rate_limit} requests a minute reached "
                                             f"for key {key.key_id}", headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return Caller(key)


async def operator(who: Caller = Depends(caller)) -> Caller:
    """An operator's key (403 for any other)."""
    if not who.is_operator:
        raise ApiError(403, "authorization", "this endpoint needs an operator key (sigmasight api-key create --operator)")
    return who


def visible_portfolios(engine: Engine, who: Caller) -> sa.Select:
    """``SELECT`` of the portfolios rows ``who`` may see."""
    t = schema.portfolios
    query = sa.select(t.c.portfolio_id, t.c.name, t.c.owner, t.c.uploaded_at)
    return query if who.is_operator else query.where(t.c.owner == who.key.owner)


_PORTFOLIO = sa.select(schema.portfolios.c.portfolio_id, schema.portfolios.c.name, schema.portfolios.c.owner,
                       schema.portfolios.c.uploaded_at).where(schema.portfolios.c.portfolio_id == sa.bindparam("portfolio_id"))
#: (operator, owner) -> the portfolio row of ``:portfolio_id`` the key may see, built once
_VISIBLE_PORTFOLIO = {True: _PORTFOLIO, False: _PORTFOLIO.where(schema.portfolios.c.owner == sa.bindparam("owner"))}


def portfolio_of(request: Request, portfolio_id: str, who: Caller) -> dict:
    """The portfolio row when ``who`` may see it; else 404 (the same answer as for an unknown id)."""
    with database(request).connect() as conn:
        row = conn.execute(_VISIBLE_PORTFOLIO[who.is_operator],
                           {"portfolio_id": portfolio_id, "owner": who.key.owner}).first()
    if row is None:
        raise ApiError(404, "portfolio_id", f"no portfolio {portfolio_id!r}")
    return dict(row._mapping)


def visible_day(request: Request, portfolio_id: str, who: Caller, table, as_of: dt.date | None, *,
                what: str) -> tuple[Engine, dt.date]:
    """The prologue of a dated read: 404 unless ``who`` may see the portfolio (:func:`portfolio_of`), then the
    date to answer for from ``table`` (``common.resolve_as_of``: 404 naming its latest date). Returns the engine
    and the date."""
    portfolio_of(request, portfolio_id, who)
    engine = request.app.state.engine
    return engine, resolve_as_of(engine, table, portfolio_id, as_of, what=what)
