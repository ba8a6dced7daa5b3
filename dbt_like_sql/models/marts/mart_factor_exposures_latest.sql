{#
description: >-
  Each portfolio's factor exposures on its latest date that has them (a date whose factor rows all lack a
  dollar exposure, e.g. too short a regression window, does not count), with the factor's display order.
unique_key: [portfolio_id, factor_name]
not_null: [portfolio_id, portfolio_name, as_of_date, factor_name]
#}
with latest as (
    select
        portfolio_id,
        max(as_of_date) as as_of_date
    from {{ ref('stg_portfolio_factor_exposures') }}
    where dollar_exposure is not null
    group by portfolio_id
)

select
    f.portfolio_id,
    p.portfolio_name,
    f.as_of_date,
    f.factor_name,
    d.display_order as factor_display_order,
    f.dollar_exposure,
    f.beta_net,
    f.beta_gross,
    f.positions_with_beta,
    f.positions_without_beta
from {{ ref('stg_portfolio_factor_exposures') }} as f
inner join latest as l
    on l.portfolio_id = f.portfolio_id
    and l.as_of_date = f.as_of_date
left join {{ ref('stg_factor_definitions') }} as d
    on d.factor_name = f.factor_name
left join {{ ref('stg_portfolios') }} as p
    on p.portfolio_id = f.portfolio_id
