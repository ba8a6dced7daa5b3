{#
description: >-
  Performance of each portfolio per window ending on the date (mtd, ytd, 21d, 63d, 126d, 252d, inception): cumulative and annualised return, volatility, Sharpe, Sortino, drawdowns with peak and trough dates, Calmar, best and worst day, share of positive days, beta, alpha, correlation and tracking error against SPY; flag and reason when a window rests on limited history or has no figure.
unique_key: [as_of_date, portfolio_id, window_name]
not_null: [as_of_date, portfolio_id, window_name, window_sessions, n_returns, flag]
#}
select
    "date" as as_of_date,
    portfolio_id,
    window_name,
    window_start,
    first_return_date,
    window_sessions,
    n_returns,
    cumulative_return,
    annualized_return,
    annual_volatility,
    sharpe_ratio,
    sortino_ratio,
    max_drawdown,
    peak_date,
    trough_date,
    current_drawdown,
    calmar_ratio,
    best_day,
    best_day_date,
    worst_day,
    worst_day_date,
    positive_days_share,
    beta,
    alpha,
    correlation,
    tracking_error,
    market_return,
    flag,
    reason
from {{ source('warehouse', 'portfolio_performance') }}
