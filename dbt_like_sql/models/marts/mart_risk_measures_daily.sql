{#
description: >-
  Risk measures over time, one row per portfolio and date: 1-day VaR (95%, 99%) and expected shortfall (95%,
  97.5%, 99%) by historical simulation and by the parametric factor model, the scenarios behind the historical
  figures, ex-ante volatility and tracking error (annual, dollars and as a fraction of equity), the factor and
  specific shares of the parametric variance, and the day's 99% VaR backtest (previous session's VaR, realised
  P&L, exception, exceptions in the last 250 sessions, Kupiec p-value, Basel zone; NULL where none).
unique_key: [portfolio_id, as_of_date]
not_null: [portfolio_id, as_of_date, historical_flag, parametric_flag]
#}
{%- set levels = {'95': 0.95, '975': 0.975, '99': 0.99} -%}
with m as (
    select * from {{ ref('stg_portfolio_risk_measures') }}
),

pivoted as (
    select
        portfolio_id,
        as_of_date,
        {%- for method in ['historical', 'parametric'] %}
        {%- for measure, names in [('var', ['95', '99']), ('es', ['95', '975', '99'])] %}
        {%- for name in names %}
        max(case when method = '{{ method }}' and measure = '{{ measure }}' and horizon_days = 1
            and abs("level" - {{ levels[name] }}) < 1e-9 then "value" end) as {{ method }}_{{ measure }}_{{ name }},
        {%- endfor %}
        {%- endfor %}
        {%- endfor %}
        max(case when method = 'historical' and measure = 'scenarios' then "value" end) as scenarios,
        max(case when method = 'historical' and measure = 'filled_returns' then "value" end) as filled_returns,
        max(case when method = 'parametric' and measure = 'volatility' and horizon_days = 1 then "value" end)
            as parametric_sigma_1d,
        max(case when method = 'parametric' and measure = 'volatility' and horizon_days = 252 then "value" end)
            as ex_ante_volatility,
        max(case when method = 'parametric' and measure = 'volatility_of_equity' then "value" end)
            as ex_ante_volatility_of_equity,
        max(case when method = 'parametric' and measure = 'tracking_error' and horizon_days = 252 then "value" end)
            as tracking_error,
        max(case when method = 'parametric' and measure = 'tracking_error_of_equity' then "value" end)
            as tracking_error_of_equity,
        max(case when method = 'parametric' and measure = 'factor_share' then "value" end) as factor_share,
        max(case when method = 'parametric' and measure = 'specific_share' then "value" end) as specific_share,
        max(case when method = 'historical' and measure = 'scenarios' then flag end) as historical_flag,
        max(case when method = 'parametric' and measure = 'volatility' and horizon_days = 1 then flag end)
            as parametric_flag
    from m
    group by portfolio_id, as_of_date
)

select
    p.portfolio_id,
    n.portfolio_name,
    p.as_of_date,
    {%- for method in ['historical', 'parametric'] %}
    {%- for col in ['var_95', 'var_99', 'es_95', 'es_975', 'es_99'] %}
    p.{{ method }}_{{ col }},
    {%- endfor %}
    {%- endfor %}
    p.scenarios,
    p.filled_returns,
    p.parametric_sigma_1d,
    p.ex_ante_volatility,
    p.ex_ante_volatility_of_equity,
    p.tracking_error,
    p.tracking_error_of_equity,
    p.factor_share,
    p.specific_share,
    b.var_date as backtest_var_date,
    b.var_99 as backtest_var_99,
    b.realized_pnl as backtest_realized_pnl,
    b."exception" as backtest_exception,
    b.window_sessions as backtest_window_sessions,
    b.exceptions as backtest_exceptions,
    b.kupiec_p_value as backtest_kupiec_p_value,
    b.zone as backtest_zone,
    p.historical_flag,
    p.parametric_flag
from pivoted as p
left join {{ ref('stg_risk_backtest') }} as b
    on b.portfolio_id = p.portfolio_id
    and b.as_of_date = p.as_of_date
left join {{ ref('stg_portfolios') }} as n
    on n.portfolio_id = p.portfolio_id
