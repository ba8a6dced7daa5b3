"""How the API asks Dagster to compute (api.md, "Operations"): owned by the operations routes."""

from __future__ import annotations

from sigmasight_pipeline.api.settings import ApiSettings


class Launcher:
    def __init__(self, settings: ApiSettings):
        self.settings = settings

    def close(self) -> None:
        pass
