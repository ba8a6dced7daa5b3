{#
description: >-
  Cumulative P&L attribution: every portfolio, date and line (factors, specific, residual) with the day's P&L
  and its running sums since the first attributed date, within the month and within the year. The attribution
  over any range [a, b] is cumulative_pnl on b minus cumulative_pnl on the last date before a; a NULL line
  (not computed that day; the residual carries it) counts 0.
unique_key: [portfolio_id, as_of_date, line]
not_null: [portfolio_id, as_of_date, as_of_month, line, line_type, line_order, cumulative_pnl, cumulative_pnl_mtd, cumulative_pnl_ytd]
#}
with lines as (
    select
        a.portfolio_id,
        a.as_of_date,
        {{ month_of('a.as_of_date') }} as as_of_month,
        a.line,
        a.line_type,
        a.line_order,
        a.exposure,
        a.factor_return,
        a.pnl,
        coalesce(a.pnl, 0) as pnl_or_zero,
        a.flag
    from {{ ref('stg_pnl_attribution') }} as a
)

select
    l.portfolio_id,
    p.portfolio_name,
    l.as_of_date,
    l.as_of_month,
    l.line,
    l.line_type,
    l.line_order,
    l.exposure,
    l.factor_return,
    l.pnl,
    s.daily_pnl as snapshot_daily_pnl,
    sum(l.pnl_or_zero) over (
        partition by l.portfolio_id, l.line order by l.as_of_date rows between unbounded preceding and current row
    ) as cumulative_pnl,
    sum(l.pnl_or_zero) over (
        partition by l.portfolio_id, l.line, l.as_of_month order by l.as_of_date
        rows between unbounded preceding and current row
    ) as cumulative_pnl_mtd,
    sum(l.pnl_or_zero) over (
        partition by l.portfolio_id, l.line, substr(l.as_of_month, 1, 4) order by l.as_of_date
        rows between unbounded preceding and current row
    ) as cumulative_pnl_ytd,
    l.flag
from lines as l
left join {{ ref('stg_portfolio_snapshots') }} as s
    on s.portfolio_id = l.portfolio_id
    and s.as_of_date = l.as_of_date
left join {{ ref('stg_portfolios') }} as p
    on p.portfolio_id = l.portfolio_id
