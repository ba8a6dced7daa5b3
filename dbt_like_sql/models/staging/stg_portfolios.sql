{#
description: >-
  Onboarded portfolios: id, display name, owner and upload provenance (the uploaded CSV text itself is left out).
unique_key: [portfolio_id]
not_null: [portfolio_id, portfolio_name, uploaded_at]
#}
select
    portfolio_id,
    name as portfolio_name,
    owner,
    source_filename,
    uploaded_at
from {{ source('warehouse', 'portfolios') }}
