"""Package data: demo books, factor definitions, stress scenarios, security master, report schema.

``factors.yaml`` is the one definition of the factor model; everything that needs the factor set
(market-data universe, engines, reference tables) reads it through :func:`factor_proxies`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml


def read_text(name: str) -> str:
    """The text of a data file shipped in this package."""
    return (resources.files(__name__) / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def factor_rows() -> tuple[dict, ...]:
    """The rows of ``factors.yaml`` (name, proxy, description), in model order (Market first)."""
    return tuple(yaml.safe_load(read_text("factors.yaml"))["factors"])


def factor_proxies() -> dict[str, str]:
    """``{factor name: proxy ETF}`` in model order: Market SPY, Value VTV, ..., Low Volatility USMV."""
    return {row["name"]: row["proxy"] for row in factor_rows()}
