"""Questions asked of a book from the Dagster UI: ``whatif_job`` (launchpad run config: portfolio, as-of date,
trades inline). Its answer is Markdown metadata on the run; no asset is materialized, nothing is stored."""
