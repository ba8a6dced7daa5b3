"""``SampleSource``: offline, deterministic, realistic prices from a seeded multi-factor model.

Everything is generated once on a fixed grid (the XNYS sessions 2015-01-02 .. 2027-12-31), so a
symbol's path never depends on the range asked for; paths are cached per symbol.

Model (daily, simple returns; all numpy-vectorised, AR(1) processes by convolution):

* Volatility state ``u`` (AR(1), phi 0.97) driven by the market shock with correlation -0.7.
  ^VIX = 9.5 + 9 exp(u) (median 18.5). The market's daily sd on day t is 1.1 % x VIX(t-1) / 19.
* Market ``m`` = 0.0004 + sd_t x z, z Student-t (5 dof) scaled to unit variance. SPY = market.
* Six style spreads (Value, Growth, Momentum, Quality, Size, Low Volatility; style ETF return minus
  SPY return): ``c_k m + sd_k x (correlated normal)``, sd_k 0.3-0.6 % scaled with the vol state. A
  style ETF returns market + spread, so it correlates ~0.88-0.96 with SPY.
* ^TNX = 4.2 % + AR(1) (phi 0.993, 6 bp/day shocks, +0.2 correlated with the market); ``dy_bp`` is
  its daily change in basis points. ^IRX = 5.0 % + AR(1) (phi 0.98, 3 bp/day: half-life ~7 weeks,
  stationary sd ~0.15 pp, so it stays near 5 %). Both floored > 0.
* Any other symbol: r = alpha/252 + b_mkt m + sum_k b_k spread_k + b_rate dy_bp + e, e Student-t
  (4 dof) with the symbol's idiosyncratic sd x sqrt(vol state). Loadings of the demo universe come
  from ``data/sample_market.csv``; other symbols get loadings and a level (20-400) from a SHA-256
  hash of the name (alpha clipped to +-10 %/yr). OCC option symbols are not priced (missing: options
  are marked to model).

Levels: a path is scaled so its close on the anchor session (the last session on or before the
anchor date of ``sample_market.csv``, e.g. the demo books' entry dates) equals the anchor price.
Where the books disagree one anchor is chosen: META 530 on 2024-01-19 (HNW book; the HF book's 265
is not used, and its META 450 put stays out of the money), SPY 470 on 2024-01-02 (near the real
level and the HF book's SPY 460 call; the HNW book's SPY 530 entry is not used).

Second anchor: each demo-universe symbol also has a plausible close on 2025-01-02 (``anchor2_date``,
``anchor2_price``: its entry price x a realistic 2024 return, e.g. SPY 470 -> 585, AMD -15 %, BND
~0 %), so the paths do not wander off by the demo window. A symbol may have a third (``anchor3_date``,
``anchor3_price``; only NVDA has one). The log path is pinned to every anchor by a Brownian bridge:
between two anchor sessions a linear-in-time correction is added to the model's log path (a constant
extra log return per day, so daily volatility and factor loadings are unchanged); before the first and
after the last anchor the model's returns are kept as they are (a constant offset). Hashed symbols have
a single anchor.

Splits: closes are split-adjusted, as every source's are (books.md, "Corporate actions"), and the
source's own split list is ``SAMPLE_SPLITS``: NVDA's 10-for-1 split of 2024-06-10. NVDA is therefore
anchored on the post-split scale throughout its history: 70.00 on 2024-01-05 (the demo books' pre-split
entry price 700 / 10, so a demo book entered that day starts at its cost), 138.31 on 2025-01-02 and
157.99 on 2025-06-30 (NVDA's real closes on those days). ``fetch_splits`` returns the list, so the
books' pre-split quantities and prices are put on the same scale as the closes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from . import calendar as xcal
from .base import (
    FACTOR_PROXIES,
    SYMBOLS,
    SourceBase,
    dedupe_symbols,
    empty_splits,
    has_splits,
    is_option_symbol,
    splits_frame,
)

GRID_START = "2015-01-02"
GRID_END = "2027-12-31"
#: The model's draws are free; this is the first seed from 20_240_102 up whose draw looks like a
#: real 2024 and H1 2025: SPY within 440..630 in 2024 and 500..680 in H1 2025, -8 %..+9 % by
#: 2025-06-30; each demo symbol within 0.6x..1.6x of its 2025-01-02 close on 2025-06-30, within
#: 0.45x..2.5x of its entry price, and within 0.55x..1.75x of its anchors during 2024; ^TNX within
#: 3.4..5.2 % and ^IRX within 3.8..5.4 % over 2024-2025. (20_240_102 drew SPY +24 % and TSLA +190 %
#: in H1 2025, where the returns are the model's own after the last anchor.) NVDA was re-anchored after
#: that choice (post-split scale, its real 2025 closes): its 2024 now rises 70 -> 138.31 (+98 %), beyond
#: the 1.75x band, as real NVDA's did (+182 %).
DEFAULT_SEED = 20_240_128
DATA_FILE = "sample_market.csv"

STYLES: tuple[str, ...] = tuple(FACTOR_PROXIES)[1:]  # Value .. Low Volatility
_LOADING_COLUMNS = ("value", "growth", "momentum", "quality", "size", "low_vol")
#: Per style: residual daily sd and market component c_k (style ETF beta = 1 + c_k).
_STYLE_SD = np.array([0.0045, 0.0045, 0.0060, 0.0030, 0.0040, 0.0035])
_STYLE_MKT = np.array([-0.08, 0.10, 0.00, 0.00, 0.02, -0.25])
_STYLE_CORR = np.array(
    [  # Value Growth Momentum Quality Size LowVol (spread residuals)
        [1.00, -0.50, -0.20, 0.00, 0.30, 0.20],
        [-0.50, 1.00, 0.30, 0.20, -0.20, -0.10],
        [-0.20, 0.30, 1.00, 0.20, -0.10, 0.10],
        [0.00, 0.20, 0.20, 1.00, -0.20, 0.30],
        [0.30, -0.20, -0.10, -0.20, 1.00, 0.00],
        [0.20, -0.10, 0.10, 0.30, 0.00, 1.00],
    ]
)
MARKET_MEAN, MARKET_SD = 0.0004, 0.011
VIX_FLOOR, VIX_SCALE = 9.5, 9.0  # ^VIX = floor + scale * exp(u); median 18.5
TNX_MEAN, TNX_PHI, TNX_SHOCK_BP = 4.2, 0.993, 6.0
IRX_MEAN, IRX_PHI, IRX_SHOCK_BP = 5.0, 0.98, 3.0
ALPHA_LIMIT = 0.10  # |annual alpha| of any symbol
DEFAULT_ANCHOR_DATE = "2024-01-02"
#: Anchor columns of ``sample_market.csv``, (date, price) pairs in order.
ANCHOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("anchor_date", "anchor_price"), ("anchor2_date", "anchor2_price"), ("anchor3_date", "anchor3_price"),
)
#: The sample source's split list: (symbol, ex-date, ratio N / M). NVDA split 10-for-1 with ex-date
#: 2024-06-10 (its real split); the sample's closes are adjusted for it (NVDA's anchors are post-split).
SAMPLE_SPLITS: tuple[tuple[str, str, float], ...] = (("NVDA", "2024-06-10", 10.0),)


def _stable_seed(*parts: object) -> int:
    """A 64-bit seed from SHA-256 of the parts (stable across processes, unlike ``hash()``)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """x_t = phi x_{t-1} + shocks_t with x_{-1} = 0, exactly, by convolution (no Python loop)."""
    n = len(shocks)
    return np.convolve(shocks, phi ** np.arange(n))[:n]


def _student_t(rng: np.random.Generator, df: float, size, clip: float) -> np.ndarray:
    """Student-t draws scaled to unit variance, clipped at +-clip."""
    z = rng.standard_t(df, size=size) / np.sqrt(df / (df - 2.0))
    return np.clip(z, -clip, clip)


@lru_cache(maxsize=1)
def grid() -> pd.DatetimeIndex:
    """The fixed session grid the sample source generates on."""
    return xcal.sessions_in_range(GRID_START, GRID_END)


@lru_cache(maxsize=4)
def factor_paths(seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The common drivers on the grid: market, the six spreads, dy_bp, ^TNX, ^IRX, ^VIX, vol_mult."""
    n = len(grid())
    rng = np.random.default_rng(_stable_seed("factors", seed))
    z_mkt = _student_t(rng, 5.0, n, 6.0)
    z_vol, z_rate, z_short = rng.standard_normal((3, n))
    z_style = rng.standard_normal((n, len(STYLES))) @ np.linalg.cholesky(_STYLE_CORR).T

    u = _ar1(0.08 * (-0.7 * z_mkt + np.sqrt(1 - 0.49) * z_vol), 0.97)
    vix = VIX_FLOOR + VIX_SCALE * np.exp(u)
    mult = np.concatenate([[1.0], vix[:-1] / 19.0])  # yesterday's VIX sets today's volatility
    market = MARKET_MEAN + MARKET_SD * mult * z_mkt
    spreads = market[:, None] * _STYLE_MKT + (mult[:, None] * _STYLE_SD) * z_style

    tnx = TNX_MEAN + _ar1(TNX_SHOCK_BP / 100 * (0.2 * z_mkt + np.sqrt(1 - 0.04) * z_rate), TNX_PHI)
    tnx = np.maximum(tnx, 0.05)
    irx = IRX_MEAN + _ar1(IRX_SHOCK_BP / 100 * (0.5 * z_rate + np.sqrt(0.75) * z_short), IRX_PHI)
    irx = np.maximum(irx, 0.01)
    dy_bp = np.concatenate([[0.0], np.diff(tnx) * 100.0])
    market[0] = 0.0
    spreads[0] = 0.0

    frame = pd.DataFrame(spreads, index=grid(), columns=list(STYLES))
    frame.insert(0, "Market", market)
    frame["dy_bp"] = dy_bp
    frame["vol_mult"] = mult
    frame[SYMBOLS.TREASURY_10Y] = tnx.round(3)
    frame[SYMBOLS.TREASURY_13W] = irx.round(3)
    frame[SYMBOLS.VIX] = vix.round(2)
    return frame


@lru_cache(maxsize=1)
def load_parameters() -> pd.DataFrame:
    """``data/sample_market.csv``: anchors and loadings of the demo universe, indexed by symbol."""
    path = resources.files("sigmasight_pipeline") / "data" / DATA_FILE
    with path.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype={"symbol": str, "asset_type": str, **{d: str for d, _ in ANCHOR_COLUMNS}})
    table["symbol"] = table["symbol"].str.strip().str.upper()
    return table.set_index("symbol")


def hashed_parameters(symbol: str) -> dict:
    """Deterministic pseudo-random loadings, idiosyncratic sd and level for an unknown symbol."""
    rng = np.random.default_rng(_stable_seed("loadings", symbol))
    params = {
        "asset_type": "stock",
        "anchor_date": DEFAULT_ANCHOR_DATE,
        "anchor_price": float(np.exp(rng.uniform(np.log(20.0), np.log(400.0)))),
        "alpha": float(np.clip(rng.normal(0.03, 0.05), -ALPHA_LIMIT, ALPHA_LIMIT)),
        "beta_market": float(rng.uniform(0.6, 1.6)),
        "rate_bp": float(rng.normal(0.0, 0.0002)),
        "idio_vol": float(rng.uniform(0.012, 0.028)),
    }
    params.update({c: float(rng.normal(0.0, 0.25)) for c in _LOADING_COLUMNS})
    params["anchor_price"] = round(params["anchor_price"], 2)
    return params


def bridge(log_path: np.ndarray, anchors) -> np.ndarray:
    """``log_path`` on the grid moved to pass through every (session, price) anchor.

    The offset ``log(price) - log_path[session]`` is computed at each anchor and interpolated
    linearly in session count between anchors (a Brownian bridge on the log path: a constant extra
    log return per day), and held constant before the first and after the last anchor, so daily
    returns outside the anchored span are untouched. Vectorised (``np.interp``), no loop per day.
    """
    idx = grid().get_indexer([session for session, _ in anchors])
    if (idx < 0).any():
        raise ValueError(f"anchor sessions outside the sample grid: {anchors}")
    offsets = np.log([price for _, price in anchors]) - log_path[idx]
    return log_path + np.interp(np.arange(len(log_path)), idx, offsets)


class SampleSource(SourceBase):
    """The default, offline source (see the module docstring for the model).

    ``fetch`` returns every grid session in [start, end] for each symbol (``skip`` is ignored).
    Two instances with the same seed return identical numbers.
    """

    name = "sample"

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        super().__init__()
        self.seed = int(seed)
        self._cache: dict[str, pd.Series | None] = {}

    # -- model -----------------------------------------------------------------------------
    def parameters(self, symbol: str) -> dict:
        """Anchors, asset type and true loadings of ``symbol`` (file row, else hashed).

        ``anchors`` lists (session, price) pairs in session order: the entry anchor and, for the
        demo universe, the 2025-01-02 anchor (and a third where the file has one).
        """
        sym = symbol.strip().upper()
        table = load_parameters()
        if sym in table.index:
            row = table.loc[sym]
            params = {k: (None if pd.isna(v) else v) for k, v in row.items()}
            for c in ("alpha", "beta_market", "rate_bp", "idio_vol", *_LOADING_COLUMNS):
                params[c] = float(params[c] or 0.0)
        else:
            params = hashed_parameters(sym)
        params["anchor_session"] = xcal.session_on_or_before(params["anchor_date"])
        params["anchor_price"] = float(params["anchor_price"])
        anchors = {params["anchor_session"]: params["anchor_price"]}
        for date_col, price_col in ANCHOR_COLUMNS[1:]:
            if params.get(date_col) and params.get(price_col) is not None:
                anchors.setdefault(xcal.session_on_or_before(params[date_col]), float(params[price_col]))
        params["anchors"] = sorted(anchors.items())
        return params

    def anchor(self, symbol: str) -> tuple[pd.Timestamp, float] | None:
        """(anchor session, anchor price) of a priced symbol; None for rates, ^VIX and options."""
        sym = symbol.strip().upper()
        if is_option_symbol(sym) or sym in (SYMBOLS.TREASURY_10Y, SYMBOLS.TREASURY_13W, SYMBOLS.VIX):
            return None
        p = self.parameters(sym)
        return p["anchor_session"], p["anchor_price"]

    def anchors(self, symbol: str) -> list[tuple[pd.Timestamp, float]]:
        """All (session, price) anchors of a priced symbol in session order; [] if not priced."""
        sym = symbol.strip().upper()
        if self.anchor(sym) is None:
            return []
        return list(self.parameters(sym)["anchors"])

    def _returns(self, sym: str, params: dict) -> np.ndarray:
        f = factor_paths(self.seed)
        proxies = {v: k for k, v in FACTOR_PROXIES.items()}
        if sym in proxies:  # SPY = market; a style ETF = market + its spread
            name = proxies[sym]
            return f["Market"].to_numpy() + (0.0 if name == "Market" else f[name].to_numpy())
        rng = np.random.default_rng(_stable_seed("idio", self.seed, sym))
        noise = _student_t(rng, 4.0, len(f), 8.0) * params["idio_vol"] * np.sqrt(f["vol_mult"])
        styles = np.array([params[c] for c in _LOADING_COLUMNS])
        r = (
            params["alpha"] / 252.0
            + params["beta_market"] * f["Market"].to_numpy()
            + f[list(STYLES)].to_numpy() @ styles
            + params["rate_bp"] * f["dy_bp"].to_numpy()
            + noise.to_numpy()
        )
        r[0] = 0.0
        return np.clip(r, -0.6, 1.0)

    #: Equity indexes an index option may be written on: the level follows the tracking ETF's sample path at
    #: about the real ratio of the two (index / ETF share, early 2025), so SPX options are priced on a level
    #: consistent with SPY's. A real source has the indexes themselves.
    INDEX_LEVELS: dict[str, tuple[str, float]] = {"^GSPC": ("SPY", 10.05), "^NDX": ("QQQ", 41.0), "^RUT": ("IWM", 10.05)}

    def series(self, symbol: str) -> pd.Series | None:
        """The whole-grid close series of ``symbol`` (cached), or None if not priced (options)."""
        sym = symbol.strip().upper()
        if sym in self._cache:
            return self._cache[sym]
        f = factor_paths(self.seed)
        if is_option_symbol(sym):
            out = None
        elif sym in (SYMBOLS.TREASURY_10Y, SYMBOLS.TREASURY_13W, SYMBOLS.VIX):
            out = f[sym].rename(sym)
        elif sym in self.INDEX_LEVELS:
            etf, ratio = self.INDEX_LEVELS[sym]
            out = (self.series(etf) * ratio).round(2).rename(sym)
        else:
            params = self.parameters(sym)
            log_path = np.cumsum(np.log1p(self._returns(sym, params)))
            prices = np.exp(bridge(log_path, params["anchors"]))
            out = pd.Series(np.round(prices, 4), index=grid(), name=sym)
        self._cache[sym] = out
        return out

    # -- interface ---------------------------------------------------------------------------
    def fetch(self, symbols, start: dt.date, end: dt.date, *, skip=None):
        """Closes of ``symbols`` on the grid sessions in [start, end] and a ``FetchReport``."""
        syms = dedupe_symbols(symbols)
        lo, hi = xcal.to_timestamp(start), xcal.to_timestamp(end)
        columns = {}
        for sym in syms:
            s = self.series(sym)
            if s is not None:
                columns[sym] = s.loc[lo:hi]
        frame = pd.DataFrame(columns, index=grid()[(grid() >= lo) & (grid() <= hi)])
        notes = [f"{s}: option symbols are not priced (marked to model)" for s in syms if is_option_symbol(s)]
        return self.finish(frame, syms, start, end, attempts=1, notes=notes)

    def fetch_splits(self, symbols) -> pd.DataFrame:
        """The splits of ``SAMPLE_SPLITS`` for the requested symbols (``base`` module docstring)."""
        self.last_split_errors = []
        wanted = {s for s in dedupe_symbols(symbols) if has_splits(s)}
        rows = [r for r in SAMPLE_SPLITS if r[0] in wanted]
        return splits_frame(*zip(*rows)) if rows else empty_splits()
