{#
description: >-
  Reference: the named stress scenarios with category, severity and historical period.
unique_key: [scenario_id]
not_null: [scenario_id, scenario_name, scenario_category, scenario_severity, display_order]
#}
select
    scenario_id,
    name as scenario_name,
    category as scenario_category,
    severity as scenario_severity,
    period_start,
    period_end,
    display_order
from {{ source('warehouse', 'stress_scenarios') }}
