{#
description: >-
  The reports generated per portfolio and date: output folder, time, and engines available or missing.
unique_key: [as_of_date, portfolio_id]
not_null: [as_of_date, portfolio_id, report_dir, generated_at, engines_available, engines_missing]
#}
select
    "date" as as_of_date,
    portfolio_id,
    report_dir,
    generated_at,
    engines_available,
    engines_missing
from {{ source('warehouse', 'portfolio_reports') }}
