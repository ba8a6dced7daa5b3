"""Benchmark: vectorised factor engine vs a per-position statsmodels loop on the same data.

    python benchmarks/bench_factors.py            # 1,000 positions x 250 sessions, 150-session window

Times ``rolling_factor_betas`` for the last date and for every date that has a full window, and a loop of
``statsmodels.OLS(y, add_constant(X)).fit()`` over positions for the last date (numpy inputs, after a
warm-up); each timing is the best of ``repeat`` runs. Checks that both give the same betas, t-stats and
R^2 (to 1e-10); prints the figures and returns them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

try:
    from sigmasight_pipeline.engines.factors import DEFAULT_FACTOR_PROXIES, factor_returns, rolling_factor_betas
except ModuleNotFoundError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sigmasight_pipeline.engines.factors import DEFAULT_FACTOR_PROXIES, factor_returns, rolling_factor_betas


def _synthetic(n_positions: int, n_sessions: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2024-01-02", periods=n_sessions)
    spy = rng.normal(0.0004, 0.011, n_sessions)
    etfs = {"SPY": spy}
    for i, etf in enumerate(list(DEFAULT_FACTOR_PROXIES.values())[1:]):
        etfs[etf] = (0.85 + 0.05 * i) * spy + rng.normal(0, 0.003 + 0.0005 * i, n_sessions)
    design = factor_returns(pd.DataFrame(etfs, index=idx), DEFAULT_FACTOR_PROXIES)
    k = design.shape[1]
    betas = rng.normal(0, 0.5, (k, n_positions))
    betas[0] += 1.0
    y = 0.0002 + design.to_numpy() @ betas + rng.normal(0, 0.01, (n_sessions, n_positions))
    assets = pd.DataFrame(y, index=idx, columns=[f"S{i:04d}" for i in range(n_positions)])
    # realistic gaps: 5% of symbols listed recently (100 returns), 5% with scattered missing days
    recent = rng.choice(n_positions, n_positions // 20, replace=False)
    assets.iloc[: n_sessions - 100, recent] = np.nan
    holes = rng.choice(n_positions, n_positions // 20, replace=False)
    for j in holes:
        assets.iloc[rng.choice(n_sessions, 10, replace=False), j] = np.nan
    return assets, design


def _best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _statsmodels_loop(assets: pd.DataFrame, design: pd.DataFrame, date, window: int, min_obs: int) -> dict:
    """The reference: one ``OLS(y, add_constant(X)).fit()`` per position on numpy arrays (no pandas per fit)."""
    import statsmodels.api as sm

    p = design.index.get_loc(date)
    sl = slice(max(0, p - window + 1), p + 1)
    x = sm.add_constant(design.to_numpy()[sl], has_constant="add")
    y_all = assets.to_numpy()[sl]
    x_ok = np.isfinite(x).all(axis=1)
    out = {}
    for j, sym in enumerate(assets.columns):
        y = y_all[:, j]
        ok = np.isfinite(y) & x_ok
        if ok.sum() < min_obs:
            continue
        fit = sm.OLS(y[ok], x[ok]).fit()
        out[sym] = (fit.params[1:], fit.tvalues[1:], fit.rsquared)
    return out


def run(n_positions: int = 1000, n_sessions: int = 250, window: int = 150, min_obs: int = 60, repeat: int = 3) -> dict:
    assets, design = _synthetic(n_positions, n_sessions)
    last = design.index[-1]
    range_dates = design.index[window - 1 :]

    t_single, single = _best_of(lambda: rolling_factor_betas(assets, design, [last], window, min_obs), repeat)
    t_range, ranged = _best_of(lambda: rolling_factor_betas(assets, design, range_dates, window, min_obs), repeat)
    _statsmodels_loop(assets.iloc[:, :5], design, last, window, min_obs)  # warm-up: statsmodels' lazy imports
    t_loop, loop = _best_of(lambda: _statsmodels_loop(assets, design, last, window, min_obs), repeat)

    # same results
    factors = list(design.columns)
    k = len(factors)
    fitted = [s for s in assets.columns if s in loop]
    beta = single["beta"].to_numpy().reshape(n_positions, k)
    tstat = single["t_stat"].to_numpy().reshape(n_positions, k)
    r2 = single["r_squared"].to_numpy().reshape(n_positions, k)[:, 0]
    col = {s: i for i, s in enumerate(assets.columns)}
    ix = np.array([col[s] for s in fitted])
    ref_b = np.array([loop[s][0] for s in fitted])
    ref_t = np.array([loop[s][1] for s in fitted])
    ref_r2 = np.array([loop[s][2] for s in fitted])
    max_beta_diff = float(np.abs(beta[ix] - ref_b).max())
    max_t_rel_diff = float((np.abs(tstat[ix] - ref_t) / np.maximum(1.0, np.abs(ref_t))).max())
    max_r2_diff = float(np.abs(r2[ix] - ref_r2).max())
    unfitted = np.isnan(np.delete(beta, ix, axis=0)).all() if len(ix) < n_positions else True
    same_last = np.allclose(
        ranged[ranged["date"] == last]["beta"].to_numpy(), single["beta"].to_numpy(), rtol=0, atol=1e-12, equal_nan=True
    )

    figures = {
        "n_positions": n_positions,
        "n_sessions": n_sessions,
        "window": window,
        "n_factors": k,
        "range_dates": len(range_dates),
        "engine_single_date_s": t_single,
        "engine_range_s": t_range,
        "engine_range_per_date_s": t_range / len(range_dates),
        "statsmodels_loop_single_date_s": t_loop,
        "statsmodels_per_regression_us": t_loop / max(1, len(fitted)) * 1e6,
        "speedup_single_date": t_loop / t_single,
        "speedup_per_date_in_range": t_loop / (t_range / len(range_dates)),
        "max_abs_beta_diff": max_beta_diff,
        "max_rel_t_stat_diff": max_t_rel_diff,
        "max_abs_r2_diff": max_r2_diff,
        "positions_fitted": len(fitted),
        "results_match": bool(max_beta_diff < 1e-10 and max_t_rel_diff < 1e-10 and max_r2_diff < 1e-10 and unfitted and same_last),
    }
    print(
        f"factor betas: {n_positions} positions x {n_sessions} sessions, window {window}, {k} factors\n"
        f"  engine, last date:             {t_single * 1e3:9.1f} ms\n"
        f"  engine, {len(range_dates):3d} dates (range run):  {t_range * 1e3:9.1f} ms "
        f"({t_range / len(range_dates) * 1e3:.2f} ms per date)\n"
        f"  statsmodels loop, last date:   {t_loop * 1e3:9.1f} ms "
        f"({figures['statsmodels_per_regression_us']:.0f} us per regression, {len(fitted)} fits)\n"
        f"  speed-up: {figures['speedup_single_date']:.1f}x single date, "
        f"{figures['speedup_per_date_in_range']:.0f}x per date in a range run\n"
        f"  max |beta diff| {max_beta_diff:.2e}, max rel t diff {max_t_rel_diff:.2e}, "
        f"max |R2 diff| {max_r2_diff:.2e}; results match: {figures['results_match']}"
    )
    return figures


if __name__ == "__main__":
    run()
