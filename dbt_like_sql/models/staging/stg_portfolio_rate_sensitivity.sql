{#
description: >-
  Dollars per bp of each portfolio per date and its P&L under rate and market moves.
unique_key: [as_of_date, portfolio_id]
not_null: [as_of_date, portfolio_id]
#}
select
    "date" as as_of_date,
    portfolio_id,
    cast(dollar_per_bp as double precision) as dollar_per_bp,
    cast(pnl_rates_up_100bp as double precision) as pnl_rates_up_100bp,
    cast(pnl_rates_down_100bp as double precision) as pnl_rates_down_100bp,
    cast(pnl_rates_up_200bp as double precision) as pnl_rates_up_200bp,
    cast(pnl_rates_down_200bp as double precision) as pnl_rates_down_200bp,
    cast(pnl_market_up_5 as double precision) as pnl_market_up_5,
    cast(pnl_market_down_5 as double precision) as pnl_market_down_5,
    cast(pnl_market_up_10 as double precision) as pnl_market_up_10,
    cast(pnl_market_down_10 as double precision) as pnl_market_down_10,
    cast(pnl_market_up_20 as double precision) as pnl_market_up_20,
    cast(pnl_market_down_20 as double precision) as pnl_market_down_20
from {{ source('warehouse', 'portfolio_rate_sensitivity') }}
