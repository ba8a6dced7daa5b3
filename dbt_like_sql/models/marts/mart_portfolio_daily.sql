{#
description: >-
  Snapshot history of every portfolio, one row per portfolio and date: value, P&L and portfolio Greeks from
  the daily snapshot, exposures from the exposure engine, and the portfolio's name.
unique_key: [portfolio_id, as_of_date]
not_null: [portfolio_id, as_of_date, as_of_month, portfolio_name]
#}
select
    s.portfolio_id,
    p.portfolio_name,
    s.as_of_date,
    {{ month_of('s.as_of_date') }} as as_of_month,
    s.total_value,
    s.daily_pnl,
    s.cumulative_pnl,
    s.daily_return,
    e.long_exposure,
    e.short_exposure,
    e.gross_exposure,
    e.net_exposure,
    e.delta_adjusted_exposure,
    e.delta_adjusted_long,
    e.delta_adjusted_short,
    e.volatility_delta_exposure,
    e.options_exposure,
    e.stock_exposure,
    e.total_cost_basis,
    e.total_unrealized_pnl,
    s.dollar_delta,
    s.dollar_gamma,
    s.portfolio_delta,
    s.portfolio_gamma,
    s.portfolio_theta,
    s.portfolio_vega,
    s.portfolio_rho,
    s.position_count,
    s.long_count,
    s.short_count,
    s.option_count,
    s.stock_count,
    s.missing_price_count,
    s.is_first_snapshot,
    s.pnl_basis
from {{ ref('stg_portfolio_snapshots') }} as s
left join {{ ref('stg_portfolio_exposures') }} as e
    on e.portfolio_id = s.portfolio_id
    and e.as_of_date = s.as_of_date
left join {{ ref('stg_portfolios') }} as p
    on p.portfolio_id = s.portfolio_id
