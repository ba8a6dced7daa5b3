"""Loading a dbt-like SQL project: ``project.yml``, ``sources.yml``, ``models/**/*.sql`` and ``schema.yml`` sidecars.

Layout (``dbt_like_sql/`` at the repository root by default, ``$SIGMASIGHT_SQL_PROJECT_DIR`` to override)::

    project.yml                 folder defaults, e.g. ``models: {staging: {materialized: view}}``
    sources.yml                 warehouse tables and the Dagster asset that produces each one
    macros/*.sql                Jinja macros, global to every model (the few dialect differences)
    models/<folder>/<name>.sql  one model per file; the model name is the file stem
    models/<folder>/schema.yml  optional sidecar: per-model config and column descriptions

A model's config is merged, later winning: project default (``view``) < ``project.yml`` folder defaults
< ``schema.yml`` sidecar < the model's own YAML header, a Jinja comment opening the file::

    {#
    description: Snapshot history per portfolio and date.
    materialized: table
    unique_key: [portfolio_id, as_of_date]
    not_null: [portfolio_id, as_of_date]
    #}
    select ... from {{ ref('stg_portfolio_snapshots') }}

Nothing here knows Dagster; :mod:`sigmasight_pipeline.defs.sql_models` turns a project into assets.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROJECT_DIR_ENV = "SIGMASIGHT_SQL_PROJECT_DIR"

MATERIALIZATIONS = ("view", "table")
SEVERITIES = ("error", "warn")
# PostgreSQL truncates identifiers at 63 bytes; a table build also needs room for its temporary name.
MAX_NAME_LENGTH = 48
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_HEADER_RE = re.compile(r"\A\s*\{#-?(.*?)-?#\}", re.DOTALL)
_CONFIG_KEYS = {"description", "materialized", "unique_key", "not_null", "severity", "columns", "tags"}


class SqlProjectError(ValueError):
    """A malformed project: bad YAML, unknown config key, duplicate model, unknown ref or source, cycle."""


@dataclass(frozen=True)
class Source:
    """A warehouse table read by the models; ``asset`` is the Dagster asset that writes it (None: reference data)."""

    source_name: str
    table: str
    asset: str | None
    description: str = ""


@dataclass(frozen=True)
class ModelConfig:
    description: str = ""
    materialized: str = "view"
    unique_key: tuple[str, ...] = ()
    not_null: tuple[str, ...] = ()
    severity: str = "error"  # of the model's tests
    columns: dict[str, str] = field(default_factory=dict)  # column -> description
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    folder: str  # first folder under models/ ("staging", "marts")
    raw_sql: str  # the file text, header included (a Jinja comment renders to nothing)
    config: ModelConfig

    @property
    def description(self) -> str:
        return self.config.description

    @property
    def materialized(self) -> str:
        return self.config.materialized


@dataclass
class SqlProject:
    root: Path
    name: str
    models: dict[str, Model]
    sources: dict[tuple[str, str], Source]
    macro_paths: list[Path]

    def model(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            raise SqlProjectError(f"unknown model {name!r}") from None

    def source(self, source_name: str, table: str) -> Source:
        try:
            return self.sources[(source_name, table)]
        except KeyError:
            raise SqlProjectError(f"unknown source {source_name!r}.{table!r}") from None


def default_project_dir() -> Path:
    """``$SIGMASIGHT_SQL_PROJECT_DIR``, else ``dbt_like_sql/`` beside the ``sigmasight_pipeline`` package."""
    env = os.environ.get(PROJECT_DIR_ENV)
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2] / "dbt_like_sql"


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SqlProjectError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SqlProjectError(f"{path}: expected a mapping at the top level")
    return data


def _as_tuple(value, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SqlProjectError(f"{where}: {key!r} must be a column name or a list of them")


def _check_keys(conf: dict, where: str) -> None:
    unknown = set(conf) - _CONFIG_KEYS
    if unknown:
        raise SqlProjectError(f"{where}: unknown config keys {sorted(unknown)} (allowed: {sorted(_CONFIG_KEYS)})")


def _build_config(merged: dict, where: str) -> ModelConfig:
    materialized = merged.get("materialized", "view")
    if materialized not in MATERIALIZATIONS:
        raise SqlProjectError(f"{where}: materialized must be one of {MATERIALIZATIONS}, not {materialized!r}")
    severity = merged.get("severity", "error")
    if severity not in SEVERITIES:
        raise SqlProjectError(f"{where}: severity must be one of {SEVERITIES}, not {severity!r}")
    columns = merged.get("columns") or {}
    if not isinstance(columns, dict):
        raise SqlProjectError(f"{where}: 'columns' must map column names to descriptions")
    return ModelConfig(
        description=" ".join(str(merged.get("description") or "").split()),
        materialized=materialized,
        unique_key=_as_tuple(merged.get("unique_key"), where, "unique_key"),
        not_null=_as_tuple(merged.get("not_null"), where, "not_null"),
        severity=severity,
        columns={str(k): " ".join(str(v or "").split()) for k, v in columns.items()},
        tags=_as_tuple(merged.get("tags"), where, "tags"),
    )


def parse_header(sql: str, where: str = "model") -> dict:
    """The YAML mapping of a model's leading Jinja comment, or ``{}`` if the file has none."""
    match = _HEADER_RE.match(sql)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}  # an ordinary comment, not a header
    if not isinstance(data, dict):
        return {}
    _check_keys(data, f"{where} (header)")
    return data


def _load_sources(path: Path) -> dict[tuple[str, str], Source]:
    if not path.exists():
        return {}
    data = _read_yaml(path)
    out: dict[tuple[str, str], Source] = {}
    for src in data.get("sources") or []:
        name = src.get("name")
        if not name:
            raise SqlProjectError(f"{path}: a source needs a name")
        for tbl in src.get("tables") or []:
            if isinstance(tbl, str):
                tbl = {"name": tbl}
            table = tbl.get("name")
            if not table:
                raise SqlProjectError(f"{path}: source {name!r} has a table without a name")
            if (name, table) in out:
                raise SqlProjectError(f"{path}: source {name!r}.{table!r} declared twice")
            out[(name, table)] = Source(
                source_name=name,
                table=table,
                asset=tbl.get("asset") or None,
                description=" ".join(str(tbl.get("description") or "").split()),
            )
    return out


def _load_sidecars(models_dir: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in sorted(models_dir.rglob("schema.yml")):
        for entry in _read_yaml(path).get("models") or []:
            name = entry.get("name")
            if not name:
                raise SqlProjectError(f"{path}: a model entry needs a name")
            if name in out:
                raise SqlProjectError(f"{path}: model {name!r} configured in two schema.yml files")
            conf = {k: v for k, v in entry.items() if k != "name"}
            _check_keys(conf, f"{path} ({name})")
            out[name] = conf
    return out


def load_project(root: str | Path | None = None) -> SqlProject:
    """Read the project at ``root`` (default :func:`default_project_dir`). Refs are checked by the compiler."""
    root = Path(root).resolve() if root is not None else default_project_dir()
    models_dir = root / "models"
    if not models_dir.is_dir():
        raise SqlProjectError(f"{root}: no models/ folder (is {PROJECT_DIR_ENV} right?)")
    project_conf = _read_yaml(root / "project.yml") if (root / "project.yml").exists() else {}
    folder_defaults: dict = project_conf.get("models") or {}
    for folder, conf in folder_defaults.items():
        _check_keys(conf or {}, f"{root / 'project.yml'} (models.{folder})")
    sidecars = _load_sidecars(models_dir)

    models: dict[str, Model] = {}
    for path in sorted(models_dir.rglob("*.sql")):
        name = path.stem
        rel = path.relative_to(models_dir)
        if not _NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:
            raise SqlProjectError(
                f"{rel}: model names are lower-case identifiers ([a-z_][a-z0-9_]*) of at most {MAX_NAME_LENGTH} characters"
            )
        if name in models:
            raise SqlProjectError(f"model {name!r} defined twice: {models[name].path} and {path}")
        folder = rel.parts[0] if len(rel.parts) > 1 else ""
        raw = path.read_text()
        merged = {**(folder_defaults.get(folder) or {}), **sidecars.get(name, {}), **parse_header(raw, str(rel))}
        models[name] = Model(name=name, path=path, folder=folder, raw_sql=raw, config=_build_config(merged, str(rel)))
    unknown = sorted(set(sidecars) - set(models))
    if unknown:
        raise SqlProjectError(f"schema.yml configures models that have no .sql file: {unknown}")

    macros_dir = root / "macros"
    macro_paths = sorted(macros_dir.glob("*.sql")) if macros_dir.is_dir() else []
    return SqlProject(
        root=root,
        name=str(project_conf.get("name") or root.name),
        models=models,
        sources=_load_sources(root / "sources.yml"),
        macro_paths=macro_paths,
    )
