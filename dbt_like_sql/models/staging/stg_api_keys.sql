{#
description: >-
  The API's keys and their use: owner, operator flag, label, creation and revocation, answered and rate-limited requests, last use. The SHA-256 of each key is left out: it is for checking a key, not for analytics.
unique_key: [key_id]
not_null: [key_id, owner, is_operator, created_at, request_count, rate_limited_count]
#}
select
    key_id,
    owner,
    is_operator,
    label,
    created_at,
    revoked_at,
    request_count,
    rate_limited_count,
    last_used_at
from {{ source('warehouse', 'api_keys') }}
