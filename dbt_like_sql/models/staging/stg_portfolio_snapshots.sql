{#
description: >-
  Daily snapshot of each portfolio: value, exposures, portfolio Greeks, daily and cumulative P&L, daily return, realised P&L (that day and to date).
unique_key: [as_of_date, portfolio_id]
not_null: [as_of_date, portfolio_id, position_count, long_count, short_count, option_count, stock_count, missing_price_count, is_first_snapshot, pnl_basis]
#}
select
    "date" as as_of_date,
    portfolio_id,
    cast(total_value as double precision) as total_value,
    cast(long_exposure as double precision) as long_exposure,
    cast(short_exposure as double precision) as short_exposure,
    cast(gross_exposure as double precision) as gross_exposure,
    cast(net_exposure as double precision) as net_exposure,
    cast(delta_adjusted_exposure as double precision) as delta_adjusted_exposure,
    cast(notional as double precision) as notional,
    cast(dollar_delta as double precision) as dollar_delta,
    cast(dollar_gamma as double precision) as dollar_gamma,
    cast(daily_pnl as double precision) as daily_pnl,
    cast(cumulative_pnl as double precision) as cumulative_pnl,
    position_count,
    long_count,
    short_count,
    option_count,
    stock_count,
    missing_price_count,
    portfolio_delta,
    portfolio_gamma,
    portfolio_theta,
    portfolio_vega,
    portfolio_rho,
    daily_return,
    is_first_snapshot,
    pnl_basis,
    cast(realized_pnl as double precision) as realized_pnl,
    cast(cumulative_realized_pnl as double precision) as cumulative_realized_pnl
from {{ source('warehouse', 'portfolio_snapshots') }}
