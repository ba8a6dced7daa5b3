"""Operations: how books enter the graph.

- ``onboarding.py``: the one onboarding path (validate, store, add the partition, request its positions),
  used by the CLI and by the inbox sensor.
- ``sensors.py``: ``portfolio_inbox_sensor`` (onboards the CSV files dropped in the inbox folder).

Daily materialization and follow-ups are declarative automation (``defs/automation.py``), not schedules or
run chaining. Nothing is defined here on purpose: ``load_from_defs_folder`` picks the definitions up.
"""
