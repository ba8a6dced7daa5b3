"""The invariants the asset checks evaluate, as small pure functions on pandas frames.

Nothing here knows Dagster or the database: a check in ``defs/`` reads what was stored, calls one of these
functions and turns its answer into an ``AssetCheckResult``. Inputs a function cannot derive itself (the
exchange calendar's expected windows, the scenario file's size) are arguments. Most functions return a list
of human-readable problems, empty when the invariant holds; a few return the offending rows.

* ``market``: every symbol priced on every session, plausible daily returns, stale prices.
* ``greeks``: Greeks bounds (|delta| <= 1, gamma and vega >= 0) and put-call parity.
* ``valuation``: exposures that add up (gross, net, counts, sums of position values).
* ``factors``: the regression's history window, no duplicate factors.
* ``snapshots``: snapshot value and P&L equal the sums of their positions.
* ``stress``: the loss cap, one result per scenario, zero shock gives zero P&L.

May import: ``engines`` (and numpy, pandas).
"""
