{#
description: >-
  The three worst stress scenarios of each portfolio and date by correlated P&L (rank 1 = largest loss;
  ties broken by scenario id), with the scenario's name, category and severity.
unique_key: [portfolio_id, as_of_date, worst_rank]
not_null: [portfolio_id, as_of_date, worst_rank, scenario_id, scenario_name, scenario_category, correlated_pnl]
#}
with ranked as (
    select
        r.portfolio_id,
        r.as_of_date,
        r.scenario_id,
        r.direct_pnl,
        r.correlated_pnl,
        r.correlation_effect,
        r.pct_of_gross_exposure,
        r.gross_exposure,
        r.pct_of_equity,
        r.equity,
        r.exceeds_equity,
        r.loss_cap_applied,
        row_number() over (
            partition by r.portfolio_id, r.as_of_date
            order by r.correlated_pnl asc, {{ binary_order('r.scenario_id') }} asc
        ) as worst_rank
    from {{ ref('stg_stress_results') }} as r
)

select
    ranked.portfolio_id,
    ranked.as_of_date,
    ranked.worst_rank,
    ranked.scenario_id,
    s.scenario_name,
    s.scenario_category,
    s.scenario_severity,
    ranked.correlated_pnl,
    ranked.direct_pnl,
    ranked.correlation_effect,
    ranked.pct_of_gross_exposure,
    ranked.gross_exposure,
    ranked.pct_of_equity,
    ranked.equity,
    ranked.exceeds_equity,
    ranked.loss_cap_applied
from ranked
left join {{ ref('stg_stress_scenarios') }} as s
    on s.scenario_id = ranked.scenario_id
where ranked.worst_rank <= 3
