"""Operations: the daily schedule, the run-chaining sensor and the portfolio inbox sensor.

- ``requests.py``: the RunRequests of the pipeline (market range, portfolio ranges, SQL models) and the
  ``sigmasight/then`` tag that chains them (a follow-up is launched when its parent run succeeded).
- ``schedules.py``: ``daily_risk_schedule`` (18:30 New York, XNYS sessions only).
- ``sensors.py``: ``run_chain_sensor`` (launches the follow-ups of every successful run exactly once) and
  ``portfolio_inbox_sensor`` (onboards the CSV files dropped in the inbox folder).

Nothing is defined here on purpose: ``load_from_defs_folder`` picks the definitions up from the modules.
"""
