{#
description: >-
  Exposures of each portfolio per date grouped by tag and by underlying.
unique_key: [as_of_date, portfolio_id, group_type, group_name]
not_null: [as_of_date, portfolio_id, group_type, group_name, position_count]
#}
select
    "date" as as_of_date,
    portfolio_id,
    group_type,
    group_name,
    cast(market_value as double precision) as market_value,
    cast(gross_exposure as double precision) as gross_exposure,
    cast(delta_adjusted_exposure as double precision) as delta_adjusted_exposure,
    cast(volatility_delta_exposure as double precision) as volatility_delta_exposure,
    position_count
from {{ source('warehouse', 'group_exposures') }}
