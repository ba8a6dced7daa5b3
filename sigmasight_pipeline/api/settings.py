"""What the API reads from the environment (the same variables as the pipeline, plus the API's own)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

RATE_LIMIT_ENV = "SIGMASIGHT_API_RATE_LIMIT"
MAX_UPLOAD_ENV = "SIGMASIGHT_API_MAX_UPLOAD_BYTES"
DAGSTER_URL_ENV = "SIGMASIGHT_DAGSTER_URL"


@dataclass(frozen=True)
class ApiSettings:
    """``database_url``: the warehouse (``SIGMASIGHT_DATABASE_URL``, default the embedded SQLite file);
    ``reports_root``: the reports folder (``SIGMASIGHT_REPORTS_DIR``); ``rate_limit``: requests a minute per key
    (``SIGMASIGHT_API_RATE_LIMIT``, default 100); ``max_upload_bytes``: largest upload or trades file
    (``SIGMASIGHT_API_MAX_UPLOAD_BYTES``, default 5 MB); ``dagster_url``: a Dagster webserver to launch work
    through, as the UI does (``SIGMASIGHT_DAGSTER_URL``; without one, work runs in the API's own worker thread
    against the Dagster instance of ``DAGSTER_HOME``)."""

    database_url: str
    reports_root: Path
    rate_limit: int = 100
    max_upload_bytes: int = 5 * 1024 * 1024
    dagster_url: str | None = None
    usage_flush_seconds: float = field(default=5.0)

    @classmethod
    def from_env(cls) -> "ApiSettings":
        from sigmasight_pipeline.warehouse.io import database_url, env_positive_int, reports_root

        return cls(
            database_url=database_url(),
            reports_root=reports_root(),
            rate_limit=env_positive_int(RATE_LIMIT_ENV, 100),
            max_upload_bytes=env_positive_int(MAX_UPLOAD_ENV, 5 * 1024 * 1024),
            dagster_url=os.environ.get(DAGSTER_URL_ENV, "").strip() or None,
        )
