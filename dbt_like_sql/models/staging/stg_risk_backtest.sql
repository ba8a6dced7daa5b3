{#
description: >-
  The 99% historical VaR backtest of each portfolio per date: the previous session's VaR, the day's realised P&L
  (the snapshot's), whether it was an exception, and over the last 250 backtested sessions the exception count,
  Kupiec's likelihood ratio and p-value and the Basel zone (green 0-4, yellow 5-9, red 10 or more).
unique_key: [as_of_date, portfolio_id]
not_null: [as_of_date, portfolio_id, var_date, var_99, realized_pnl, exception, window_sessions, exceptions, zone]
#}
select
    "date" as as_of_date,
    portfolio_id,
    var_date,
    var_99,
    realized_pnl,
    "exception",
    window_sessions,
    exceptions,
    kupiec_lr,
    kupiec_p_value,
    zone
from {{ source('warehouse', 'risk_backtest') }}
