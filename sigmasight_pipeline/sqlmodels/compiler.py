"""Jinja compilation of models for one SQL dialect.

In a model, ``{{ ref('stg_x') }}`` renders to the relation of model ``stg_x`` and
``{{ source('warehouse', 'positions') }}`` to the warehouse table, both quoted for the dialect where they
need it. The variable ``dialect`` (``"sqlite"`` or ``"postgresql"``) and the macros of ``macros/*.sql``
are global, so the few places where the dialects differ live in one macro each.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from sigmasight_pipeline.sqlmodels.project import SqlProject, SqlProjectError

SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def resolve_dialect(dialect: str | Dialect | sa.Engine | sa.Connection) -> Dialect:
    """A SQLAlchemy ``Dialect`` from a name, a dialect, an engine or a connection."""
    if isinstance(dialect, (sa.Engine, sa.Connection)):
        dialect = dialect.dialect
    if isinstance(dialect, str):
        name = dialect.split("+", 1)[0]
        if name == "postgres":
            name = "postgresql"
        if name not in SUPPORTED_DIALECTS:
            raise SqlProjectError(f"unsupported dialect {dialect!r} (supported: {SUPPORTED_DIALECTS})")
        if name == "sqlite":
            from sqlalchemy.dialects import sqlite

            return sqlite.dialect()
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect()
    if dialect.name not in SUPPORTED_DIALECTS:
        raise SqlProjectError(f"unsupported dialect {dialect.name!r} (supported: {SUPPORTED_DIALECTS})")
    return dialect


def quote(dialect: Dialect, name: str) -> str:
    """``name`` as an identifier of ``dialect``: bare when legal, double-quoted (escaped) otherwise."""
    return dialect.identifier_preparer.quote(name)


@dataclass(frozen=True)
class Dependencies:
    refs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]


class Compiler:
    """Renders the models of ``project`` for one dialect (macros loaded once)."""

    def __init__(self, project: SqlProject, dialect: str | Dialect | sa.Engine | sa.Connection):
        self.project = project
        self.dialect = resolve_dialect(dialect)
        self.env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self.env.globals["dialect"] = self.dialect.name
        for path in project.macro_paths:
            try:
                module = self.env.from_string(path.read_text()).module
            except jinja2.TemplateError as exc:
                raise SqlProjectError(f"macros/{path.name}: {exc}") from exc
            for attr in dir(module):
                if not attr.startswith("_") and isinstance(getattr(module, attr), jinja2.runtime.Macro):
                    self.env.globals[attr] = getattr(module, attr)
        self._templates: dict[str, jinja2.Template] = {}

    def _template(self, name: str) -> jinja2.Template:
        if name not in self._templates:
            model = self.project.model(name)
            try:
                self._templates[name] = self.env.from_string(model.raw_sql)
            except jinja2.TemplateSyntaxError as exc:
                raise SqlProjectError(f"model {name!r} ({model.path.name}, line {exc.lineno}): {exc.message}") from exc
        return self._templates[name]

    def _render(self, name: str, refs: list[str], sources: list[tuple[str, str]]) -> str:
        def ref(target: str) -> str:
            if target not in self.project.models:
                raise SqlProjectError(f"model {name!r}: ref({target!r}) names no model of the project")
            if target == name:
                raise SqlProjectError(f"model {name!r}: refers to itself (cycle: {name} -> {name})")
            refs.append(target)
            return quote(self.dialect, target)

        def source(source_name: str, table: str) -> str:
            if (source_name, table) not in self.project.sources:
                raise SqlProjectError(
                    f"model {name!r}: source({source_name!r}, {table!r}) is not declared in sources.yml"
                )
            sources.append((source_name, table))
            return quote(self.dialect, table)

        try:
            sql = self._template(name).render(ref=ref, source=source, this=quote(self.dialect, name))
        except jinja2.TemplateError as exc:
            raise SqlProjectError(f"model {name!r} ({self.project.model(name).path.name}): {exc}") from exc
        return sql.strip().rstrip(";").strip() + "\n"

    def compile(self, name: str) -> str:
        """The model's SELECT for this dialect."""
        return self._render(name, [], [])

    def dependencies(self, name: str) -> Dependencies:
        refs: list[str] = []
        sources: list[tuple[str, str]] = []
        self._render(name, refs, sources)
        return Dependencies(refs=tuple(dict.fromkeys(refs)), sources=tuple(dict.fromkeys(sources)))
