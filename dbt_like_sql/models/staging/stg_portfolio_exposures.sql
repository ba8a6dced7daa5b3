{#
description: >-
  Long, short, gross, net and delta-adjusted exposures and position counts of each portfolio per date;
  the delta-adjusted exposure of VIX options is volatility_delta_exposure, not part of delta_adjusted_*.
unique_key: [as_of_date, portfolio_id]
not_null: [as_of_date, portfolio_id, long_count, short_count, option_count, stock_count, position_count, missing_price_count]
#}
select
    "date" as as_of_date,
    portfolio_id,
    cast(long_exposure as double precision) as long_exposure,
    cast(short_exposure as double precision) as short_exposure,
    cast(gross_exposure as double precision) as gross_exposure,
    cast(net_exposure as double precision) as net_exposure,
    cast(notional as double precision) as notional,
    cast(delta_adjusted_exposure as double precision) as delta_adjusted_exposure,
    cast(delta_adjusted_long as double precision) as delta_adjusted_long,
    cast(delta_adjusted_short as double precision) as delta_adjusted_short,
    cast(volatility_delta_exposure as double precision) as volatility_delta_exposure,
    cast(options_exposure as double precision) as options_exposure,
    cast(stock_exposure as double precision) as stock_exposure,
    cast(total_cost_basis as double precision) as total_cost_basis,
    cast(total_unrealized_pnl as double precision) as total_unrealized_pnl,
    long_count,
    short_count,
    option_count,
    stock_count,
    position_count,
    missing_price_count
from {{ source('warehouse', 'portfolio_exposures') }}
