"""Factor exposures: rolling multivariate betas on ETF-proxy factors, diagnostics and dollar exposures.

Pipeline:

1. :func:`factor_returns` turns the proxy ETFs' daily returns into the regression design (market + style
   spreads).
2. :func:`rolling_factor_betas` regresses every symbol on all factors at once, over the ``window`` sessions
   ending on each as-of date (never a row after it), through the shared batched OLS in
   :mod:`.regression`.
3. :func:`factor_diagnostics` and :func:`factor_correlations` describe the design of each date's window
   (condition number, VIF, factor covariance; the stress engine rebuilds the covariance with
   :func:`covariance_matrix`).
4. :func:`position_factor_exposures` gives each position its symbol's betas (an option its underlying's)
   times its signed delta-adjusted exposure; :func:`portfolio_factor_exposures` sums those dollars.

Defects of the earlier system that this module rules out: one univariate regression per factor (here one
multivariate OLS), ``exposure = beta x total portfolio value`` (here a sum over positions), a silent cap of
+-3 on betas (no cap), options regressed on their own prices (they take their underlying's betas).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from sigmasight_pipeline.data import factor_proxies

from .regression import as_of_index, rolling_ols, trailing_window_view, window_positions

__all__ = [
    "MARKET",
    "DEFAULT_FACTOR_PROXIES",
    "FLAG_NO_RETURNS",
    "validate_factor_proxies",
    "factor_returns",
    "rolling_factor_betas",
    "variance_inflation_factors",
    "factor_diagnostics",
    "factor_correlations",
    "covariance_matrix",
    "covariance_stack",
    "attach_symbol_stats",
    "position_factor_exposures",
    "portfolio_factor_exposures",
]

MARKET = "Market"

#: The seven factors and their proxy ETFs, Market first (engines.md, "Factor exposures").
DEFAULT_FACTOR_PROXIES: Mapping[str, str] = MappingProxyType(factor_proxies())  # data/factors.yaml

#: Flag of a position whose market-data symbol was not regressed at all (no returns for it).
FLAG_NO_RETURNS = "no_return_history"

BETA_COLUMNS = [
    "date", "symbol", "factor_name", "beta", "t_stat", "r_squared", "n_obs",
    "window_start", "window_end", "flag", "exact_fit", "residual_std",
]
POSITION_COLUMNS = [
    "date", "position_id", "factor_name", "beta", "t_stat", "r_squared", "n_obs", "flag", "exact_fit",
    "dollar_exposure", "residual_std",
]
PORTFOLIO_COLUMNS = [
    "date", "factor_name", "dollar_exposure", "beta_net", "beta_gross",
    "positions_with_beta", "positions_without_beta",
]


def validate_factor_proxies(factor_proxies: Mapping[str, str]) -> dict[str, str]:
    """Check the factor -> proxy mapping and return it ordered with Market first.

    Exactly one factor named ``"Market"``, unique factor names, unique proxy symbols (the earlier system had
    SIZE in one list and SLY in another, and a "Short Interest" factor with no proxy), else ValueError.
    """
    items = list(factor_proxies.items())
    names = [str(n) for n, _ in items]
    proxies = [p for _, p in items]
    if not items:
        raise ValueError("factor_proxies is empty")
    if names.count(MARKET) != 1:
        raise ValueError(f'factor_proxies must contain exactly one "{MARKET}" factor, got {names}')
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate factor names in factor_proxies: {names}")
    if any(not isinstance(p, str) or not p.strip() for p in proxies):
        raise ValueError(f"every factor needs a proxy symbol: {dict(items)}")
    if len(set(proxies)) != len(proxies):
        raise ValueError(f"duplicate proxy symbols in factor_proxies: {proxies}")
    ordered = {MARKET: factor_proxies[MARKET]}
    ordered.update((n, p) for n, p in items if n != MARKET)
    return ordered


def factor_returns(etf_returns: pd.DataFrame, factor_proxies: Mapping[str, str] = DEFAULT_FACTOR_PROXIES) -> pd.DataFrame:
    """The regression design: one column per factor, Market first.

    ``Market`` is the market proxy's (SPY's) return; every style factor is its ETF's return MINUS the market
    proxy's return (a "spread").

    Why spreads: long-only style ETFs are mostly market (daily correlations with SPY of 0.88-0.98), so a
    regression on raw ETF returns is ill-conditioned, with VIFs above 30 and unstable market coefficients.
    Replacing each style return ``s_k`` by ``s_k - m`` is an invertible linear reparametrisation of the
    same regressors: fitted values, residuals, R^2 and every style beta (with its t-stat) are unchanged,
    the VIFs fall to about 1-2, and the Market coefficient becomes the TOTAL market sensitivity
    (``beta_mkt + sum of style betas`` of the raw design) -- the number a "market -10%" stress needs.

    A missing proxy column is an error (no factor is made up); NaN returns propagate.
    """
    proxies = validate_factor_proxies(factor_proxies)
    missing = [p for p in proxies.values() if p not in etf_returns.columns]
    if missing:
        raise ValueError(f"factor proxy returns missing for {missing}")
    market = etf_returns[proxies[MARKET]].astype(np.float64)
    out = {MARKET: market}
    for name, proxy in proxies.items():
        if name != MARKET:
            out[name] = etf_returns[proxy].astype(np.float64) - market
    frame = pd.DataFrame(out, index=etf_returns.index)
    frame.columns.name = "factor_name"
    return frame


def rolling_factor_betas(
    asset_returns: pd.DataFrame,
    factor_returns: pd.DataFrame,
    as_of_dates: Iterable | pd.DatetimeIndex,
    window: int = 150,
    min_obs: int = 60,
) -> pd.DataFrame:
    """Rolling multivariate factor betas of every symbol, long format.

    ``asset_returns``: sessions x symbols, simple daily returns (options are not in it: they have no return
    history of their own). ``factor_returns``: the design from :func:`factor_returns`. For each as-of date
    ``d`` every symbol is regressed on ALL factors in one OLS with intercept, over the ``window`` sessions
    ending on ``d`` (rows after ``d`` are never read), on the rows where the symbol and every factor have a
    return. Betas are not capped.

    Columns: ``date, symbol, factor_name, beta, t_stat, r_squared, n_obs, window_start, window_end, flag,
    exact_fit, residual_std``,
    one row per (date, symbol, factor), sorted by date, symbol order of ``asset_returns``, factor order.
    ``window_start``/``window_end`` are the first and last sessions of the window; ``r_squared``, ``n_obs``
    and ``residual_std`` belong to the symbol's regression (the same on its seven rows). ``residual_std`` is
    the daily standard deviation of its residuals, sqrt(SSR / (n_obs - K - 1)) (statsmodels'
    ``sqrt(fit.scale)``; NaN where there is no fit): the specific risk of the parametric VaR. ``flag``: ``ok`` (n_obs ==
    window), ``limited_history`` (min_obs <= n_obs < window), ``insufficient_history`` (n_obs < min_obs;
    beta, t_stat, r_squared NaN) or ``singular_design`` (collinear/constant regressors in the window; NaN).
    ``exact_fit`` (bool): the symbol's residuals are numerically zero (SPY on a design that contains SPY;
    see :data:`.regression.EXACT_FIT_RTOL`): betas and R^2 are kept, every t_stat is NaN (round-off divided
    by round-off, not a statistic).
    """
    res = rolling_ols(asset_returns, factor_returns, as_of_dates, window=window, min_obs=min_obs)
    d, n, k = len(res.dates), len(res.series), len(res.regressors)
    rep_dn = (d, n, k)

    def per_dn(a: np.ndarray) -> np.ndarray:  # (D, N) -> one value per (date, symbol, factor) row
        return np.broadcast_to(a[:, :, None], rep_dn).reshape(-1)

    def per_d(a) -> np.ndarray:
        return np.broadcast_to(np.asarray(a)[:, None, None], rep_dn).reshape(-1)

    return pd.DataFrame(
        {
            "date": per_d(res.dates.values),
            "symbol": np.broadcast_to(np.asarray(res.series, dtype=object)[None, :, None], rep_dn).reshape(-1),
            "factor_name": np.broadcast_to(np.asarray(res.regressors, dtype=object)[None, None, :], rep_dn).reshape(-1),
            "beta": res.params[:, :, 1:].reshape(-1),
            "t_stat": res.tvalues[:, :, 1:].reshape(-1),
            "r_squared": per_dn(res.rsquared),
            "n_obs": per_dn(res.n_obs),
            "window_start": per_d(res.window_start.values),
            "window_end": per_d(res.window_end.values),
            "flag": per_dn(res.flag),
            "exact_fit": per_dn(res.exact_fit),
            "residual_std": per_dn(res.resid_std),
        },
        columns=BETA_COLUMNS,
    )


def _design_windows(design: pd.DataFrame, as_of_dates, window: int):
    """Per as-of date: the window's complete design rows as a zero-padded stack, for diagnostics.

    Returns (as_of, x (D, w, K) with incomplete rows zeroed, ok (D, w) bool, window_start, window_end).
    """
    as_of = as_of_index(as_of_dates)
    sessions = design.index
    pos = window_positions(sessions, as_of)
    xv = design.to_numpy(dtype=np.float64)
    ok = np.isfinite(xv).all(axis=1)
    x = trailing_window_view(np.where(ok[:, None], xv, 0.0), window, 0.0)[pos].transpose(0, 2, 1)
    okw = trailing_window_view(ok, window, False)[pos]
    start = sessions[np.maximum(pos - window + 1, 0)]
    return as_of, np.ascontiguousarray(x), okw, pd.DatetimeIndex(start), pd.DatetimeIndex(sessions[pos])


def _window_covariance(x: np.ndarray, ok: np.ndarray):
    """Sample covariance (ddof=1) of the complete rows of each window: (D, K, K), plus row counts (D,)."""
    n = ok.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = x.sum(axis=1) / n[:, None]
        xc = (x - mean[:, None, :]) * ok[:, :, None]
        cov = np.einsum("dti,dtj->dij", xc, xc) / (n - 1.0)[:, None, None]
    cov[n < 2] = np.nan
    return cov, n.astype(np.int64)


def variance_inflation_factors(cov: np.ndarray) -> np.ndarray:
    """VIF of each regressor from the regressors' covariance matrix (..., K, K).

    With a constant in the design, VIF_j = 1 / (1 - R^2_j) where R^2_j is the centred R^2 of regressor j
    on all the others and the constant, which equals ``cov_jj * inv(cov)_jj``. This is statsmodels'
    ``variance_inflation_factor(add_constant(X), j)`` for the non-constant columns.
    """
    cov = np.asarray(cov, dtype=np.float64)
    diag = np.einsum("...ii->...i", cov)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(diag)
        corr = cov / (s[..., :, None] * s[..., None, :])
    out = np.full(diag.shape, np.nan)
    known = np.isfinite(cov).all(axis=(-2, -1))  # no data -> NaN
    out[known] = np.inf  # a constant or collinear regressor: VIF infinite
    good = known & np.isfinite(corr).all(axis=(-2, -1))
    if good.any():
        eig = np.linalg.eigvalsh(corr[good])
        inv_ok = eig[..., 0] > 1e-14 * eig[..., -1]
        vif = np.full(eig.shape, np.inf)
        if inv_ok.any():
            vif[inv_ok] = np.einsum("...ii->...i", np.linalg.inv(corr[good][inv_ok]))
        out[good] = vif
    return out


def factor_diagnostics(
    factor_returns: pd.DataFrame,
    as_of_dates: Iterable | pd.DatetimeIndex,
    window: int = 150,
) -> pd.DataFrame:
    """Conditioning of each date's design (the same window as the betas, complete factor rows only).

    Columns ``date, n_obs, window_start, window_end, condition_number, max_vif``.
    ``condition_number`` is the 2-norm condition number of the design WITH the constant column (ratio of
    its largest to smallest singular value; statsmodels' ``OLSResults.condition_number``). ``max_vif`` is
    the largest VIF among the factors, each computed on the design with the constant (statsmodels'
    ``variance_inflation_factor``); the constant's own VIF is not a diagnostic and is left out. The VIFs
    depend only on the factors, so they are the same for every symbol of the date.
    """
    as_of, x, ok, start, end = _design_windows(factor_returns, as_of_dates, window)
    d, w, k = x.shape
    xk = np.concatenate([ok[:, :, None].astype(np.float64), x], axis=2)  # constant column, 0 on bad rows
    sv = np.linalg.svd(xk, compute_uv=False)  # zero rows do not change the singular values
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = sv[:, 0] / sv[:, -1]
    cov, n = _window_covariance(x, ok)
    vif = variance_inflation_factors(cov)
    max_vif = np.full(d, np.nan)
    has = ~np.isnan(vif).all(axis=1) & (n >= k + 1)  # fewer rows than coefficients: not defined
    cond[n < k + 1] = np.nan
    max_vif[has] = np.nanmax(vif[has], axis=1)
    return pd.DataFrame(
        {
            "date": as_of,
            "n_obs": n,
            "window_start": start,
            "window_end": end,
            "condition_number": cond,
            "max_vif": max_vif,
        }
    ).reset_index(drop=True)


def factor_correlations(
    factor_returns: pd.DataFrame,
    as_of_dates: Iterable | pd.DatetimeIndex,
    window: int = 150,
    threshold: float = 0.8,
) -> pd.DataFrame:
    """Factor correlation and covariance per date over the beta window (complete factor rows, ddof=1).

    Columns ``date, factor_a, factor_b, correlation, covariance, high_correlation``: the upper triangle
    INCLUDING the diagonal (factor_a == factor_b carries the variance, correlation 1), in factor order, so
    that :func:`covariance_matrix` can rebuild the full symmetric matrix the stress engine conditions on.
    ``high_correlation`` is ``|correlation| > threshold`` off the diagonal, always False on it.
    """
    as_of, x, ok, _, _ = _design_windows(factor_returns, as_of_dates, window)
    cov, _ = _window_covariance(x, ok)
    k = x.shape[2]
    sd = np.sqrt(np.einsum("dii->di", cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / (sd[:, :, None] * sd[:, None, :])
    iu, ju = np.triu_indices(k)
    names = np.asarray(factor_returns.columns, dtype=object)
    d = len(as_of)
    c = corr[:, iu, ju].reshape(-1)
    off = np.tile(iu != ju, d)
    return pd.DataFrame(
        {
            "date": np.repeat(as_of.values, len(iu)),
            "factor_a": np.tile(names[iu], d),
            "factor_b": np.tile(names[ju], d),
            "correlation": c,
            "covariance": cov[:, iu, ju].reshape(-1),
            "high_correlation": off & (np.abs(c) > threshold),
        }
    )


def covariance_stack(factor_corr_rows: pd.DataFrame, dates, factors: list) -> np.ndarray:
    """(dates x factors x factors) symmetric covariance from :func:`factor_correlations` rows (the upper
    triangle with the diagonal). Entries no row covers (a date without rows, a factor outside ``factors``'
    rows) are NaN. Vectorised: one scatter of every row, no per-date loop."""
    dates = pd.DatetimeIndex(dates)
    out = np.full((len(dates), len(factors), len(factors)), np.nan)
    names = pd.Index(factors)
    t = dates.get_indexer(pd.DatetimeIndex(factor_corr_rows["date"]))
    ia = names.get_indexer(factor_corr_rows["factor_a"])
    ib = names.get_indexer(factor_corr_rows["factor_b"])
    keep = (t >= 0) & (ia >= 0) & (ib >= 0)
    v = factor_corr_rows["covariance"].to_numpy(dtype=np.float64)[keep]
    t, ia, ib = t[keep], ia[keep], ib[keep]
    out[t, ia, ib] = v
    out[t, ib, ia] = v
    return out


def covariance_matrix(factor_corr_rows: pd.DataFrame) -> pd.DataFrame:
    """Rebuild the symmetric factor covariance matrix from one date's :func:`factor_correlations` rows."""
    if factor_corr_rows.empty:
        raise ValueError("no factor correlation rows")
    if factor_corr_rows["date"].nunique() != 1:
        raise ValueError("covariance_matrix takes the rows of exactly one date")
    names = list(dict.fromkeys(list(factor_corr_rows["factor_a"]) + list(factor_corr_rows["factor_b"])))
    m = covariance_stack(factor_corr_rows, pd.DatetimeIndex(factor_corr_rows["date"].iloc[:1]), names)[0]
    if np.isnan(m).any() and not np.isnan(factor_corr_rows["covariance"].to_numpy(dtype=np.float64)).any():
        raise ValueError("factor correlation rows do not cover the full upper triangle")
    return pd.DataFrame(m, index=pd.Index(names, name="factor_name"), columns=pd.Index(names, name="factor_name"))


def _market_symbols(positions: pd.DataFrame) -> pd.DataFrame:
    """position_id -> the symbol whose returns carry the position (an option's underlying)."""
    need = {"position_id", "symbol", "underlying_symbol", "is_option"}
    missing = need - set(positions.columns)
    if missing:
        raise ValueError(f"positions lacks columns {sorted(missing)}")
    if positions["position_id"].duplicated().any():
        raise ValueError("duplicate position_id in positions")
    under = positions["underlying_symbol"].where(
        positions["underlying_symbol"].notna() & (positions["underlying_symbol"].astype(str).str.strip() != ""),
        None,
    )
    is_opt = positions["is_option"].fillna(False).astype(bool)
    if (is_opt & under.isna()).any():
        bad = positions.loc[is_opt & under.isna(), "position_id"].tolist()
        raise ValueError(f"option positions without an underlying symbol: {bad} (options have no returns of their own)")
    market_symbol = under.where(under.notna(), positions["symbol"])
    return pd.DataFrame({"position_id": positions["position_id"].to_numpy(), "market_symbol": market_symbol.to_numpy()})


def attach_symbol_stats(
    positions: pd.DataFrame,
    symbol_stats: pd.DataFrame,
    exposures: pd.DataFrame,
    stat_columns: list[str],
    factor_names: list[str] | None = None,
) -> pd.DataFrame:
    """Give each (date, position) the per-symbol regression results of its market-data symbol.

    Shared by the factor and rate engines. ``symbol_stats`` is keyed by ``date, symbol`` (plus
    ``factor_name`` when ``factor_names`` is given). A position whose symbol has no row at all gets NaN
    statistics and the flag ``no_return_history`` (nothing is made up).
    """
    ex = exposures[["date", "position_id", "delta_adjusted_exposure"]].merge(
        _market_symbols(positions), on="position_id", how="left", validate="many_to_one"
    )
    if ex["market_symbol"].isna().any():
        bad = ex.loc[ex["market_symbol"].isna(), "position_id"].unique().tolist()
        raise ValueError(f"exposures for positions not in positions: {bad}")
    keys = ["date", "market_symbol"]
    stats = symbol_stats.rename(columns={"symbol": "market_symbol"})
    if factor_names is not None:
        ex = ex.merge(pd.DataFrame({"factor_name": factor_names}), how="cross")
        keys = keys + ["factor_name"]
    ex["date"] = pd.to_datetime(ex["date"])
    stats = stats.assign(date=pd.to_datetime(stats["date"]))
    out = ex.merge(stats[keys + stat_columns], on=keys, how="left", validate="many_to_one")
    out["flag"] = out["flag"].where(out["flag"].notna(), FLAG_NO_RETURNS)
    return out


def position_factor_exposures(
    positions: pd.DataFrame,
    symbol_betas: pd.DataFrame,
    exposures: pd.DataFrame,
) -> pd.DataFrame:
    """Per (date, position, factor): the betas of the position's market-data symbol and its dollar exposure.

    ``positions``: ``position_id, symbol, underlying_symbol, is_option``. A stock is regressed on its own
    returns (``underlying_symbol`` is the stock itself, or empty); an option has no return history and takes
    its UNDERLYING's betas. ``symbol_betas``: rows of :func:`rolling_factor_betas`. ``exposures``:
    ``date, position_id, delta_adjusted_exposure`` in signed dollars (a stock's signed market value; an
    option's delta x contracts x multiplier x underlying price).

    ``dollar_exposure = delta_adjusted_exposure x beta``. Where there is no beta (short history, singular
    design, symbol not regressed) ``beta`` stays NaN, the flag says why and ``dollar_exposure`` is 0, so the
    portfolio sum never picks up a made-up number. Columns: ``date, position_id, factor_name, beta,
    t_stat, r_squared, n_obs, flag, exact_fit, dollar_exposure, residual_std`` (``exact_fit`` False where the
    symbol was not regressed, or ``symbol_betas`` has no such column; ``residual_std`` the symbol's daily
    residual standard deviation, NaN where it was not regressed or ``symbol_betas`` has no such column).
    """
    factor_names = list(dict.fromkeys(symbol_betas["factor_name"]))
    if "exact_fit" not in symbol_betas.columns:
        symbol_betas = symbol_betas.assign(exact_fit=False)
    if "residual_std" not in symbol_betas.columns:
        symbol_betas = symbol_betas.assign(residual_std=np.nan)
    out = attach_symbol_stats(
        positions, symbol_betas, exposures,
        ["beta", "t_stat", "r_squared", "n_obs", "flag", "exact_fit", "residual_std"], factor_names,
    )
    out["n_obs"] = out["n_obs"].fillna(0).astype(np.int64)
    out["exact_fit"] = out["exact_fit"].eq(True).to_numpy(dtype=bool)  # NaN (not regressed) -> False
    beta = out["beta"].to_numpy(dtype=np.float64)
    exp = out["delta_adjusted_exposure"].to_numpy(dtype=np.float64)
    out["dollar_exposure"] = np.where(np.isfinite(beta), exp * np.nan_to_num(beta), 0.0)
    out = out.sort_values(["date", "position_id"], kind="stable").reset_index(drop=True)
    return out[POSITION_COLUMNS]


def portfolio_factor_exposures(position_exposures: pd.DataFrame, equity: pd.DataFrame) -> pd.DataFrame:
    """Portfolio factor exposure per (date, factor): a SUM over positions, never beta x total value.

    ``dollar_exposure`` = sum over positions of ``delta_adjusted_exposure x beta`` (the rows of
    :func:`position_factor_exposures`). In a long/short book this differs from any "portfolio beta x
    portfolio value" shortcut, which scales by the wrong base.

    Portfolio betas, labelled by their base (``equity``: ``date, net_exposure, gross_exposure``, both
    delta-adjusted):

    * ``beta_net``   = dollar_exposure / net exposure   (long minus short; NaN when the net base is 0)
    * ``beta_gross`` = dollar_exposure / gross exposure (long plus |short|; NaN when the gross base is 0)

    ``positions_with_beta`` / ``positions_without_beta`` count the positions that did / did not have a beta
    for that factor (the latter contribute 0 dollars). Columns: ``date, factor_name, dollar_exposure,
    beta_net, beta_gross, positions_with_beta, positions_without_beta``.
    """
    pe = position_exposures.assign(
        date=pd.to_datetime(position_exposures["date"]),
        _has=position_exposures["beta"].notna(),
    )
    factor_order = {f: i for i, f in enumerate(dict.fromkeys(pe["factor_name"]))}
    g = pe.groupby(["date", "factor_name"], sort=False)
    agg = g.agg(
        dollar_exposure=("dollar_exposure", "sum"),
        positions_with_beta=("_has", "sum"),
        positions=("_has", "size"),
    ).reset_index()
    agg["positions_without_beta"] = agg["positions"] - agg["positions_with_beta"]
    eq = equity[["date", "net_exposure", "gross_exposure"]].assign(date=pd.to_datetime(equity["date"]))
    if eq["date"].duplicated().any():
        raise ValueError("equity has more than one row per date")
    agg = agg.merge(eq, on="date", how="left", validate="many_to_one")
    net = agg["net_exposure"].to_numpy(dtype=np.float64)
    gross = agg["gross_exposure"].to_numpy(dtype=np.float64)
    dollars = agg["dollar_exposure"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        agg["beta_net"] = np.where(net != 0, dollars / net, np.nan)
        agg["beta_gross"] = np.where(gross != 0, dollars / gross, np.nan)
    agg["positions_with_beta"] = agg["positions_with_beta"].astype(np.int64)
    agg["positions_without_beta"] = agg["positions_without_beta"].astype(np.int64)
    agg["_order"] = agg["factor_name"].map(factor_order)
    agg = agg.sort_values(["date", "_order"], kind="stable").reset_index(drop=True)
    return agg[PORTFOLIO_COLUMNS]
