{#
description: >-
  Reference: the factor shocks of each stress scenario.
unique_key: [scenario_id, factor_name]
not_null: [scenario_id, factor_name, shock]
#}
select
    scenario_id,
    factor_name,
    shock
from {{ source('warehouse', 'stress_scenario_shocks') }}
