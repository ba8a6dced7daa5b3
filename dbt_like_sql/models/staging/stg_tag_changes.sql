{#
description: >-
  The tag edits of each portfolio (sigmasight tags add|remove): a tag added to or removed from a position, applied from the session of its effective date on.
unique_key: [portfolio_id, change_seq]
not_null: [portfolio_id, change_seq, position_id, symbol, tag, action, effective_date, created_at]
#}
select
    portfolio_id,
    change_seq,
    position_id,
    symbol,
    tag,
    action,
    effective_date,
    created_at
from {{ source('warehouse', 'tag_changes') }}
