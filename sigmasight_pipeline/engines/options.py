"""Black-Scholes-Merton option mathematics: the single place option prices and Greeks are computed.

European options on an underlying paying a continuous dividend yield ``q`` (Merton 1973), continuous
compounding, numpy-broadcasting over any input shapes. ``q = 0`` (the default) is Black-Scholes, with the
same floating-point operations as before dividends entered: e^{-0 T} is exactly 1.0, so every number is
bitwise the one of the formula without q.

Units (the same as mibian 0.1.3, the reference implementation without dividends; QuantLib's
AnalyticEuropeanEngine with a BlackScholesMertonProcess is the reference with them):

- ``S``, ``K``: prices per share; ``T``: years on an ACT/365 basis (calendar days / 365);
  ``r``, ``q`` and ``sigma``: decimals (0.05 = 5%, 0.015 = a 1.5% continuous dividend yield, 0.25 = 25
  vol points). mibian takes r and vol in PERCENT; passing 0.05 to mibian means 0.05% (a defect of the
  earlier system).
- ``delta``, ``gamma``: per unit of S (delta = e^{-qT} N(d1) for a call, -e^{-qT} N(-d1) for a put).
- ``theta``: per CALENDAR day (annual theta / 365), the change of value as one calendar day passes with
  S, r, q and sigma unchanged (it includes the dividend term: + q S e^{-qT} N(d1) for a call).
- ``vega``: per 1 vol point (change of value for sigma + 0.01).
- ``rho``: per 1% rate (change of value for r + 0.01; q held fixed).

Degenerate inputs give defined values, never exceptions and never NaN from valid inputs. Each element
carries a flag (``FLAGS``), in this order of precedence:

- ``"expired"``: T < 0. Price 0, all Greeks 0, whatever the other inputs (an expired option needs no
  price or vol). Callers mark an expired option at 0.
- ``"missing_input"``: any input NaN (q included), or S < 0, K <= 0, sigma < 0. Price NaN (nothing to
  price), all Greeks 0 (so they never poison a sum); the flag tells the caller the row is unusable.
- ``"expiry_day"``: T == 0. Intrinsic value; delta is the step 1/0 for calls (-1/0 for puts), 0.5
  (-0.5) exactly at the money; all other Greeks 0.
- ``"zero_vol"``: sigma == 0 and T > 0. The payoff is deterministic: value = discounted forward intrinsic
  ``max(S e^{-qT} - K e^{-rT}, 0)`` (call) / ``max(K e^{-rT} - S e^{-qT}, 0)`` (put). Delta is e^{-qT}
  times the step at S e^{-qT} = K e^{-rT} (0.5 exactly there), gamma and vega 0, and theta and rho are
  those of the discounted intrinsic (e.g. call theta = (q S e^{-qT} - r K e^{-rT}) / 365, rho =
  K T e^{-rT} / 100 when in the money), which are the exact sigma -> 0 limits of the closed-form Greeks.
- ``"ok"``: the closed form.

S == 0 with T > 0 (a worthless underlying, reached by stress revaluation of a crash larger than 100%)
is priced by the same deterministic branch (call 0, put K e^{-rT}) and flagged "ok".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

__all__ = [
    "FLAGS",
    "bs_price",
    "bs_greeks",
    "realized_volatility",
    "position_greeks",
    "POSITION_GREEKS_COLUMNS",
    "VOLATILITY_INDEXES",
    "SPOT_PRICING_NOTE",
    "VOL_SOURCES",
    "is_volatility_index_option",
    "MAX_DIVIDEND_YIELD",
]

FLAGS = np.array(["ok", "expiry_day", "zero_vol", "expired", "missing_input"])
_OK, _EXPIRY_DAY, _ZERO_VOL, _EXPIRED, _MISSING = range(5)

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
DAYS_PER_YEAR = 365.0

#: Volatility indexes (market-data symbol -> name; ``marketdata.SYMBOLS.VIX`` is "^VIX"). An option on one
#: is priced off the index's SPOT level: options on VIX settle on VIX futures, whose curve is not modelled,
#: so the position carries ``pricing_note``; its delta-adjusted exposure is volatility, not equity, exposure
#: (``engines.valuation.portfolio_exposures`` reports it apart).
VOLATILITY_INDEXES: dict[str, str] = {"^VIX": "VIX"}
SPOT_PRICING_NOTE = "priced off {name} spot; futures curve not modelled"

#: ``vol_source`` values: the uploaded implied vol, the underlying's realised vol, or none (stocks, and
#: options with neither).
VOL_SOURCES = ("implied", "realized", "none")

#: A dividend yield at or above this (a decimal) is refused: 1.0 would be 100% a year, a percent passed
#: where a decimal is expected.
MAX_DIVIDEND_YIELD = 1.0

POSITION_GREEKS_COLUMNS = [
    "date",
    "position_id",
    "underlying_price",
    "implied_vol",
    "vol_source",
    "dividend_yield",
    "days_to_expiry",
    "model_price",
    "delta",
    "gamma",
    "theta",
    "vega",
    "rho",
    "position_delta",
    "position_gamma",
    "position_theta",
    "position_vega",
    "position_rho",
    "dollar_delta",
    "dollar_gamma",
    "flag",
    "pricing_note",
]


def _prepare(S, K, T, r, sigma, is_call, q):
    """Broadcast inputs to float arrays and classify every element into a flag code."""
    S, K, T, r, sigma, is_call, q = np.broadcast_arrays(
        np.asarray(S, dtype=float),
        np.asarray(K, dtype=float),
        np.asarray(T, dtype=float),
        np.asarray(r, dtype=float),
        np.asarray(sigma, dtype=float),
        np.asarray(is_call, dtype=bool),
        np.asarray(q, dtype=float),
    )
    with np.errstate(invalid="ignore"):
        missing = (
            np.isnan(S) | np.isnan(K) | np.isnan(T) | np.isnan(r) | np.isnan(sigma) | np.isnan(q)
            | (S < 0) | (K <= 0) | (sigma < 0)
        )
        code = np.full(S.shape, _OK, dtype=np.int8)
        code[(sigma == 0) & (T > 0)] = _ZERO_VOL
        code[T == 0] = _EXPIRY_DAY
        code[missing] = _MISSING
        code[T < 0] = _EXPIRED  # an expired option is worth 0 whatever its other inputs
    # deterministic branch: zero vol, or a worthless underlying
    deterministic = (code == _ZERO_VOL) | ((code == _OK) & (S == 0))
    closed = code == _OK
    closed &= ~deterministic
    return S, K, T, r, sigma, is_call, q, code, closed, deterministic


def _step(x):
    """1 where x > 0, 0.5 where x == 0, 0 where x < 0 (the limit of N(d) as sigma*sqrt(T) -> 0)."""
    return np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0))


def _closed_form(S, K, T, r, sigma, q, closed):
    """The closed-form pieces; elements outside ``closed`` get dummy inputs so nothing warns.

    ``div`` = e^{-qT} and ``disc_s`` = S e^{-qT}; with q == 0 they are exactly 1.0 and S, and ``r - q`` is
    exactly r, so the q = 0 arithmetic is bitwise the dividend-free formula's.
    """
    if not closed.all():
        S = np.where(closed, S, 1.0)
        K = np.where(closed, K, 1.0)
        T = np.where(closed, T, 1.0)
        r = np.where(closed, r, 0.0)
        sigma = np.where(closed, sigma, 1.0)
        q = np.where(closed, q, 0.0)
    sqrt_t = np.sqrt(T)
    vol_sqrt_t = sigma * sqrt_t
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    disc_k = K * np.exp(-r * T)
    div = np.exp(-q * T)
    disc_s = S * div
    # N(-d) directly, not 1 - N(d): deep in-the-money puts and out-of-the-money put deltas keep precision
    nd1, nd2, nm1, nm2 = ndtr(d1), ndtr(d2), ndtr(-d1), ndtr(-d2)
    return S, T, r, sigma, q, sqrt_t, vol_sqrt_t, d1, disc_k, div, disc_s, nd1, nd2, nm1, nm2


def _special_prices(price, S, K, T, r, q, is_call, code, deterministic):
    """Overwrite the degenerate elements of ``price``.

    Returns (price, discounted strike K e^{-rT}, dividend discount e^{-qT}) on the deterministic branch,
    the last two None when there is none.
    """
    fwd_k = div = None
    if deterministic.any():
        with np.errstate(invalid="ignore", over="ignore"):
            fwd_k = K * np.exp(-np.where(deterministic, r * T, 0.0))
            div = np.exp(-np.where(deterministic & (q != 0.0), q * T, 0.0))  # exactly 1.0 where q == 0
        fwd_s = S * div
        det = np.where(is_call, np.maximum(fwd_s - fwd_k, 0.0), np.maximum(fwd_k - fwd_s, 0.0))
        price = np.where(deterministic, det, price)
    if ((code == _EXPIRY_DAY) | (code >= _EXPIRED)).any():
        intrinsic = np.where(is_call, np.maximum(S - K, 0.0), np.maximum(K - S, 0.0))
        price = np.where(code == _EXPIRY_DAY, intrinsic, price)
        price = np.where(code == _EXPIRED, 0.0, price)
        price = np.where(code == _MISSING, np.nan, price)
    return price, fwd_k, div


def bs_price(S, K, T, r, sigma, is_call, q=0.0) -> np.ndarray:
    """Black-Scholes-Merton value per share (see the module docstring for units and degenerate cases).

    ``q`` is the continuous dividend yield (decimal, default 0: Black-Scholes). Broadcasts all arguments;
    returns a float array of the broadcast shape (NaN only where an input is missing or invalid, flag
    "missing_input").
    """
    S, K, T, r, sigma, is_call, q, code, closed, deterministic = _prepare(S, K, T, r, sigma, is_call, q)
    *_, disc_k, _, disc_s, nd1, nd2, nm1, nm2 = _closed_form(S, K, T, r, sigma, q, closed)
    price = np.where(is_call, disc_s * nd1 - disc_k * nd2, disc_k * nm2 - disc_s * nm1)
    price, _, _ = _special_prices(price, S, K, T, r, q, is_call, code, deterministic)
    return np.asarray(price, dtype=float)


def bs_greeks(S, K, T, r, sigma, is_call, q=0.0) -> dict[str, np.ndarray]:
    """Black-Scholes-Merton value and Greeks per share (continuous dividend yield ``q``, default 0).

    Returns a dict of arrays of the broadcast shape: ``price``, ``delta``, ``gamma``, ``theta`` (per
    calendar day), ``vega`` (per vol point), ``rho`` (per 1% rate) and ``flag`` (strings from ``FLAGS``).
    """
    S, K, T, r, sigma, is_call, q, code, closed, deterministic = _prepare(S, K, T, r, sigma, is_call, q)
    (Sc, Tc, rc, vc, qc, sqrt_t, vol_sqrt_t, d1, disc_k, div, disc_s, nd1, nd2, nm1, nm2) = _closed_form(
        S, K, T, r, sigma, q, closed
    )
    price = np.where(is_call, disc_s * nd1 - disc_k * nd2, disc_k * nm2 - disc_s * nm1)
    price, fwd_k, det_div = _special_prices(price, S, K, T, r, q, is_call, code, deterministic)

    pdf_d1 = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    time_decay = -disc_s * pdf_d1 * vc / (2.0 * sqrt_t)
    r_disc_k = rc * disc_k
    q_disc_s = qc * disc_s  # 0.0 when q == 0: "x - 0.0" below is exactly x
    t_disc_k = Tc * disc_k
    delta = np.where(is_call, div * nd1, -(div * nm1))
    gamma = div * pdf_d1 / (Sc * vol_sqrt_t)
    vega = disc_s * pdf_d1 * sqrt_t / 100.0
    theta = np.where(
        is_call,
        time_decay - (r_disc_k * nd2 - q_disc_s * nd1),
        time_decay + (r_disc_k * nm2 - q_disc_s * nm1),
    ) / DAYS_PER_YEAR
    rho = np.where(is_call, t_disc_k * nd2, -t_disc_k * nm2) / 100.0

    if fwd_k is not None:
        # deterministic branch (zero vol / worthless underlying): Greeks of the discounted intrinsic
        fwd_s = S * det_div
        itm = _step(np.where(is_call, fwd_s - fwd_k, fwd_k - fwd_s))  # 1 ITM, 0.5 at the discounted strike, 0 OTM
        with np.errstate(invalid="ignore"):
            sign = np.where(is_call, 1.0, -1.0)
            delta = np.where(deterministic, sign * itm * det_div, delta)
            theta = np.where(deterministic, -sign * (r * fwd_k - q * fwd_s) * itm / DAYS_PER_YEAR, theta)
            rho = np.where(deterministic, sign * T * fwd_k * itm / 100.0, rho)
        gamma = np.where(deterministic, 0.0, gamma)
        vega = np.where(deterministic, 0.0, vega)

    flat = (code == _EXPIRY_DAY) | (code >= _EXPIRED)
    if flat.any():
        # expiry day: step delta at the strike; expired or missing: delta 0; other Greeks 0
        step = _step(np.where(is_call, S - K, K - S))
        delta = np.where(code == _EXPIRY_DAY, np.where(is_call, step, -step), delta)
        delta = np.where(code >= _EXPIRED, 0.0, delta)
        gamma = np.where(flat, 0.0, gamma)
        theta = np.where(flat, 0.0, theta)
        vega = np.where(flat, 0.0, vega)
        rho = np.where(flat, 0.0, rho)

    return {
        "price": np.asarray(price, dtype=float),
        "delta": np.asarray(delta, dtype=float),
        "gamma": np.asarray(gamma, dtype=float),
        "theta": np.asarray(theta, dtype=float),
        "vega": np.asarray(vega, dtype=float),
        "rho": np.asarray(rho, dtype=float),
        "flag": FLAGS[code],
    }


def realized_volatility(
    log_returns: pd.DataFrame,
    as_of_dates,
    window: int = 60,
    min_periods: int | None = None,
) -> pd.DataFrame:
    """Annualised realised volatility (sample std x sqrt(252)) of daily log returns.

    ``log_returns`` is wide (session x symbol) or the long ``date, symbol, log_return`` frame of
    ``returns.daily_returns``.

    The window is the ``window`` returns ending ON each as-of date (inclusive), never after it: no
    look-ahead. Fewer than ``min_periods`` (default: the full window) non-missing returns give NaN.
    An as-of date absent from the returns index takes the last value at or before it.
    Returns a DataFrame indexed by ``as_of_dates`` with one column per symbol.
    """
    as_of = pd.DatetimeIndex(as_of_dates)
    if {"date", "symbol", "log_return"}.issubset(log_returns.columns):
        log_returns = log_returns.pivot(index="date", columns="symbol", values="log_return")
    lr = log_returns.sort_index()
    mp = window if min_periods is None else min_periods
    vol = lr.rolling(window, min_periods=mp).std(ddof=1) * np.sqrt(252.0)
    out = vol.reindex(as_of, method="ffill")
    out.index.name = log_returns.index.name
    return out


def _as_bool(series: pd.Series) -> np.ndarray:
    return series.fillna(False).astype(bool).to_numpy()


def _rate_decimal(short_rate: pd.Series | float, dates: pd.DatetimeIndex) -> np.ndarray:
    """^IRX-style percent rates -> decimals per date, carrying the last known value forward.

    Bond markets close on some stock-market sessions (Columbus Day, Veterans Day), so a missing rate takes
    the most recent earlier value (never a later one).
    """
    if np.isscalar(short_rate):
        return np.full(len(dates), float(short_rate) / 100.0)
    rate = pd.Series(short_rate, dtype=float).dropna().sort_index()
    rate.index = pd.DatetimeIndex(rate.index)
    return rate.reindex(dates, method="ffill").to_numpy(dtype=float) / 100.0


def is_volatility_index_option(positions: pd.DataFrame) -> np.ndarray:
    """Per position: True for an option written on a volatility index (``VOLATILITY_INDEXES``, e.g. ^VIX)."""
    underlying = positions["underlying_symbol"].astype(object)
    return _as_bool(positions["is_option"]) & underlying.isin(list(VOLATILITY_INDEXES)).to_numpy(dtype=bool)


def _dividend_yields(positions: pd.DataFrame) -> np.ndarray:
    """The positions' ``dividend_yield`` column as decimals (NaN or absent -> 0.0).

    Raises ``ValueError`` naming every position whose yield is negative, infinite or at least
    ``MAX_DIVIDEND_YIELD`` (a percent such as 1.5 where the decimal 0.015 is meant).
    """
    if "dividend_yield" not in positions:
        return np.zeros(len(positions))
    q = pd.to_numeric(positions["dividend_yield"], errors="coerce").to_numpy(dtype=float)
    raw = positions["dividend_yield"]
    unreadable = np.isnan(q) & raw.notna().to_numpy()
    with np.errstate(invalid="ignore"):
        bad = unreadable | ~np.isnan(q) & ((q < 0) | (q >= MAX_DIVIDEND_YIELD) | ~np.isfinite(q))
    if bad.any():
        symbols = positions["symbol"] if "symbol" in positions else positions["position_id"]
        named = ", ".join(
            f"position {pid} ({sym}): {val!r}"
            for pid, sym, val in zip(positions["position_id"][bad], symbols[bad], raw[bad])
        )
        raise ValueError(
            f"dividend_yield must be a decimal in [0, {MAX_DIVIDEND_YIELD:g}) (0.015 = 1.5% a year): {named}"
        )
    return np.where(np.isnan(q), 0.0, q)


def _grid(frame: pd.DataFrame | None, dates: pd.DatetimeIndex, columns) -> np.ndarray:
    """(dates x columns) float array from a wide frame; absent dates/columns are NaN."""
    if frame is None or len(columns) == 0:
        return np.full((len(dates), len(columns)), np.nan)
    return frame.reindex(index=dates, columns=list(columns)).to_numpy(dtype=float)


def position_greeks(
    positions: pd.DataFrame,
    prices: pd.DataFrame,
    dates,
    short_rate: pd.Series | float,
    realized_vol: pd.DataFrame | None,
) -> pd.DataFrame:
    """Greeks per (date, position) for every position held on each date, in one vectorised pass.

    - Positions with ``entry_date > date`` are excluded from that date.
    - Options: Black-Scholes-Merton on the underlying's close (``prices[underlying_symbol]``), T = calendar
      days to expiration / 365, r = ``short_rate`` (percent, e.g. ^IRX 5.02 -> 0.0502; missing days carry
      the last earlier value), q = the position's ``dividend_yield`` column (a decimal continuous yield of
      the underlying; NaN or no column -> 0, stored in ``dividend_yield``), sigma = the position's
      ``implied_vol`` when known (``vol_source`` "implied"), else the underlying's realised vol on that date
      (``"realized"``), else NaN (``"none"``, flag "missing_input", model price NaN, Greeks 0). The sigma
      used is stored in ``implied_vol``. Expired options: model price 0, Greeks 0, flag "expired".
    - Options on a volatility index (``VOLATILITY_INDEXES``: ^VIX) are priced off the index's spot close;
      their ``pricing_note`` says so ("priced off VIX spot; futures curve not modelled"). Every other row's
      ``pricing_note`` is None.
    - Stocks: delta 1, other per-share Greeks 0, ``model_price`` = the close, ``implied_vol`` and
      ``dividend_yield`` NaN, ``vol_source`` "none", ``days_to_expiry`` NaN. A stock without a close gets
      flag "missing_input".
    - ``position_X = X x quantity x multiplier`` (signed; contracts x 100 for options, shares for stocks).
    - ``dollar_delta = position_delta x underlying_price`` (the dollar exposure equivalent to the delta:
      its P&L for a 1% move is dollar_delta / 100). ONE convention for dollar gamma:
      ``dollar_gamma = position_gamma x underlying_price**2 / 100``, the change in dollar delta for a 1%
      move of the underlying (the P&L of a 1% move is then dollar_delta/100 + dollar_gamma/200).
    - Rows flagged "missing_input" carry 0 for every Greek and dollar Greek, so sums stay defined; count
      the flags to report them.

    Returns a long DataFrame with exactly ``POSITION_GREEKS_COLUMNS``, sorted by date then position order.
    """
    dates = pd.DatetimeIndex(dates)
    n, m = len(positions), len(dates)
    if n == 0 or m == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in POSITION_GREEKS_COLUMNS})

    pos_id = positions["position_id"].to_numpy()
    qty = positions["quantity"].to_numpy(dtype=float)
    mult = positions["multiplier"].to_numpy(dtype=float)
    is_option = _as_bool(positions["is_option"])
    is_call = (positions["option_type"].astype(object) == "C").to_numpy(dtype=bool)
    strike = positions["strike"].to_numpy(dtype=float)
    entry = pd.to_datetime(positions["entry_date"]).dt.normalize().to_numpy(dtype="datetime64[ns]")
    expiry = pd.to_datetime(positions["expiration"]).dt.normalize().to_numpy(dtype="datetime64[ns]")
    underlyings = positions["underlying_symbol"].astype(object).to_numpy()
    pos_iv = (
        positions["implied_vol"].to_numpy(dtype=float)
        if "implied_vol" in positions
        else np.full(n, np.nan)
    )
    q = _dividend_yields(positions)
    vol_index = is_volatility_index_option(positions)
    index_names = positions["underlying_symbol"].astype(object).map(VOLATILITY_INDEXES).to_numpy()
    pricing_note = np.where(
        vol_index, [SPOT_PRICING_NOTE.format(name=name) for name in index_names], None
    ).astype(object)

    d64 = dates.to_numpy(dtype="datetime64[ns]")
    held = entry[None, :] <= d64[:, None]  # (m, n)

    S = _grid(prices, dates, underlyings)  # (m, n)
    rv = _grid(realized_vol, dates, underlyings)
    r = _rate_decimal(short_rate, dates)[:, None] * np.ones((1, n))

    # calendar days to expiry (whole days, ACT/365)
    days = ((expiry[None, :] - d64[:, None]) / np.timedelta64(1, "D")).astype(float)  # NaN for NaT
    T = days / DAYS_PER_YEAR

    has_iv = ~np.isnan(pos_iv)
    sigma = np.where(has_iv[None, :], pos_iv[None, :], rv)
    vol_source = np.where(has_iv[None, :], "implied", np.where(np.isnan(rv), "none", "realized"))

    g = bs_greeks(S, strike[None, :], T, r, sigma, is_call[None, :], q[None, :])

    opt = is_option[None, :] & np.ones((m, 1), dtype=bool)
    stock_missing = np.isnan(S)
    stock_flag = np.where(stock_missing, "missing_input", "ok")
    flag = np.where(opt, g["flag"], stock_flag)

    def pick(option_values, stock_value):
        return np.where(opt, option_values, stock_value)

    delta = pick(g["delta"], np.where(stock_missing, 0.0, 1.0))
    gamma = pick(g["gamma"], 0.0)
    theta = pick(g["theta"], 0.0)
    vega = pick(g["vega"], 0.0)
    rho = pick(g["rho"], 0.0)
    model_price = pick(g["price"], S)
    implied_vol = pick(sigma, np.nan)
    vol_source = pick(vol_source, "none")
    dividend_yield = np.where(is_option, q, np.nan)
    days_to_expiry = pick(days, np.nan)

    scale = (qty * mult)[None, :]
    p_delta, p_gamma = delta * scale, gamma * scale
    S_safe = np.where(np.isnan(S), 0.0, S)  # Greeks are 0 wherever S is missing
    dollar_delta = p_delta * S_safe
    dollar_gamma = p_gamma * S_safe * S_safe / 100.0

    di, pj = np.nonzero(held)  # row-major: date-major ordering
    out = pd.DataFrame(
        {
            "date": dates[di],
            "position_id": pos_id[pj],
            "underlying_price": S[di, pj],
            "implied_vol": implied_vol[di, pj],
            "vol_source": vol_source[di, pj],
            "dividend_yield": dividend_yield[pj],
            "days_to_expiry": days_to_expiry[di, pj],
            "model_price": model_price[di, pj],
            "delta": delta[di, pj],
            "gamma": gamma[di, pj],
            "theta": theta[di, pj],
            "vega": vega[di, pj],
            "rho": rho[di, pj],
            "position_delta": p_delta[di, pj],
            "position_gamma": p_gamma[di, pj],
            "position_theta": (theta * scale)[di, pj],
            "position_vega": (vega * scale)[di, pj],
            "position_rho": (rho * scale)[di, pj],
            "dollar_delta": dollar_delta[di, pj],
            "dollar_gamma": dollar_gamma[di, pj],
            "flag": flag[di, pj],
            "pricing_note": pricing_note[pj],
        },
        columns=POSITION_GREEKS_COLUMNS,
    )
    return out.reset_index(drop=True)
