{#
description: >-
  Options Greeks per position and date: unit Greeks, position Greeks, dollar delta and gamma, the volatility
  used and its source (implied | realized | none), the dividend yield, and how the option was priced
  (pricing_note, e.g. a VIX option priced off spot).
unique_key: [as_of_date, portfolio_id, position_id]
not_null: [as_of_date, portfolio_id, position_id, vol_source, flag]
#}
select
    "date" as as_of_date,
    portfolio_id,
    position_id,
    cast(underlying_price as double precision) as underlying_price,
    implied_vol,
    vol_source,
    dividend_yield,
    days_to_expiry,
    cast(model_price as double precision) as model_price,
    delta,
    gamma,
    theta,
    vega,
    rho,
    position_delta,
    position_gamma,
    position_theta,
    position_vega,
    position_rho,
    cast(dollar_delta as double precision) as dollar_delta,
    cast(dollar_gamma as double precision) as dollar_gamma,
    flag,
    pricing_note
from {{ source('warehouse', 'position_greeks') }}
