"""The SigmaSight HTTP API (``spec/api.md``): FastAPI routes over the warehouse the pipeline wrote.

``app.create_app`` builds the application; ``sigmasight serve`` runs it under uvicorn. Reads come from the
warehouse tables and marts; the what-if, ad-hoc stress, upload, trades and tags routes call the functions the CLI
calls; operations ask the Dagster instance and launch runs the way the UI does.
"""
