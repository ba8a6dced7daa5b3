"""The API's routes, one module per group, each with a ``router`` (``app.create_app`` mounts every module's)."""
