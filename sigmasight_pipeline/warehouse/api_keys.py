"""API keys in the warehouse (api.md, "Who may see what"): create, list, revoke, verify, and record their use.

A token is ``ssk_<key_id>_<secret>``: ``key_id`` (8 hex characters) is public and names the key in listings and
logs; ``secret`` is 256 random bits. Only the SHA-256 of the whole token is stored. A slow password hash (bcrypt,
argon2) protects guessable secrets; a 256-bit random secret cannot be guessed, so one SHA-256 is as safe and keeps
every request's check under a millisecond. The comparison is constant-time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import read_frame

TOKEN_PREFIX = "ssk_"
_TOKEN = re.compile(r"^ssk_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_OWNER = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


class ApiKeyError(ValueError):
    """A key command that cannot be done (bad owner, unknown key id)."""


@dataclass(frozen=True)
class ApiKey:
    """A verified, unrevoked key: who it belongs to and whether it is an operator's."""

    key_id: str
    owner: str
    is_operator: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_key(engine: Engine, owner: str, *, operator: bool = False, label: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key for ``owner`` (an e-mail address, as ``portfolios.owner``); returns it and its token.

    The token is shown once: only its hash is stored."""
    owner = (owner or "").strip()
    if not _OWNER.match(owner) or len(owner) > 200:
        raise ApiKeyError(f"owner must be an e-mail address (at most 200 characters), got {owner!r}")
    if label is not None and len(label) > 200:
        raise ApiKeyError("label: at most 200 characters")
    with engine.begin() as conn:
        for _ in range(10):  # a clash of 8 hex characters is rare; draw again
            key_id = secrets.token_hex(4)
            if conn.execute(sa.select(schema.api_keys.c.key_id).where(schema.api_keys.c.key_id == key_id)).first() is None:
                break
        else:  # pragma: no cover - 10 clashes in a row
            raise ApiKeyError("could not draw a free key id")
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        conn.execute(schema.api_keys.insert().values(
            key_id=key_id, key_hash=_hash(token), owner=owner, is_operator=bool(operator), label=label,
            created_at=_now(), request_count=0, rate_limited_count=0,
        ))
    return ApiKey(key_id, owner, bool(operator)), token


def list_keys(engine: Engine, *, include_revoked: bool = False) -> pd.DataFrame:
    """Every key (never its hash): id, owner, operator, label, created, revoked, requests, rate-limited, last use."""
    t = schema.api_keys
    query = sa.select(t.c.key_id, t.c.owner, t.c.is_operator, t.c.label, t.c.created_at, t.c.revoked_at,
                      t.c.request_count, t.c.rate_limited_count, t.c.last_used_at).order_by(t.c.created_at, t.c.key_id)
    if not include_revoked:
        query = query.where(t.c.revoked_at.is_(None))
    return read_frame(engine, query)


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Revoke a key by its id (or its whole token); False when it was already revoked. Unknown: ApiKeyError."""
    match = _TOKEN.match(key_id)
    key_id = match.group(1) if match else key_id
    t = schema.api_keys
    with engine.begin() as conn:
        row = conn.execute(sa.select(t.c.revoked_at).where(t.c.key_id == key_id)).first()
        if row is None:
            raise ApiKeyError(f"no API key {key_id!r} (sigmasight api-key list shows them)")
        if row.revoked_at is not None:
            return False
        conn.execute(t.update().where(t.c.key_id == key_id).values(revoked_at=_now()))
    return True


_KEY_BY_ID = sa.select(schema.api_keys.c.key_id, schema.api_keys.c.key_hash, schema.api_keys.c.owner,
                       schema.api_keys.c.is_operator, schema.api_keys.c.revoked_at).where(
    schema.api_keys.c.key_id == sa.bindparam("key_id"))  # built once: every request verifies its key


def verify_token(engine: Engine, token: str) -> ApiKey | None:
    """The key of ``token`` when it is well formed, known, matches its hash and is not revoked; else None."""
    match = _TOKEN.match(token or "")
    if not match:
        return None
    with engine.connect() as conn:
        row = conn.execute(_KEY_BY_ID, {"key_id": match.group(1)}).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _hash(token)):
        return None
    return ApiKey(row.key_id, row.owner, bool(row.is_operator))


def record_use(engine: Engine, use: dict[str, tuple[int, int, dt.datetime]]) -> None:
    """Add ``key_id -> (answered, rate_limited, last request time)`` to the keys' counters in one transaction."""
    if not use:
        return
    t = schema.api_keys
    with engine.begin() as conn:
        for key_id, (answered, limited, last) in sorted(use.items()):
            conn.execute(t.update().where(t.c.key_id == key_id).values(
                request_count=t.c.request_count + answered,
                rate_limited_count=t.c.rate_limited_count + limited,
                last_used_at=sa.case((t.c.last_used_at.is_(None), last), (t.c.last_used_at < last, last),
                                     else_=t.c.last_used_at),
            ))
