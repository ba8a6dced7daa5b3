"""The dependency graph of a project: refs between models, sources below them, a topological build order.

:func:`load_manifest` is the one entry point: it loads the project, resolves every ``ref`` and ``source``
(an unknown one is an error naming the model) and orders the models (a cycle is an error naming its models).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sigmasight_pipeline.sqlmodels.compiler import SUPPORTED_DIALECTS, Compiler, resolve_dialect
from sigmasight_pipeline.sqlmodels.project import Model, Source, SqlProject, SqlProjectError, load_project


def topological_order(upstream: dict[str, Iterable[str]]) -> list[str]:
    """Nodes ordered so each comes after its upstreams (ties alphabetical); a cycle raises naming its nodes."""
    ups = {n: set(u) for n, u in upstream.items()}
    downs: dict[str, set[str]] = {n: set() for n in ups}
    for n, us in ups.items():
        for u in us:
            if u not in downs:
                raise SqlProjectError(f"model {n!r}: ref({u!r}) names no model of the project")
            downs[u].add(n)
    indegree = {n: len(us) for n, us in ups.items()}
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for d in sorted(downs[n]):
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, d)
    if len(order) < len(ups):
        raise SqlProjectError(f"cycle in model refs: {' -> '.join(_find_cycle(ups, set(ups) - set(order)))}")
    return order


def _find_cycle(ups: dict[str, set[str]], remaining: set[str]) -> list[str]:
    """One cycle among ``remaining`` (every node there lies on or upstream of a cycle), as a closed path."""
    start = min(remaining)
    path, seen = [start], {start: 0}
    node = start
    while True:
        node = min(u for u in ups[node] if u in remaining)
        if node in seen:
            cycle = path[seen[node] :] + [node]
            cycle.reverse()  # upstream -> downstream, the direction data flows
            return cycle
        seen[node] = len(path)
        path.append(node)


@dataclass
class Manifest:
    """A resolved project: each model's refs and sources and the build order; compiles per dialect."""

    project: SqlProject
    refs: dict[str, tuple[str, ...]]
    sources: dict[str, tuple[Source, ...]]
    order: list[str]
    _compilers: dict[str, Compiler] = field(default_factory=dict, repr=False)

    @property
    def models(self) -> dict[str, Model]:
        return self.project.models

    def model(self, name: str) -> Model:
        return self.project.model(name)

    def compiler(self, dialect) -> Compiler:
        d = resolve_dialect(dialect)
        if d.name not in self._compilers:
            self._compilers[d.name] = Compiler(self.project, d)
        return self._compilers[d.name]

    def compile(self, name: str, dialect) -> str:
        """The SELECT of model ``name`` rendered for ``dialect`` (a name, a Dialect, an engine, a connection)."""
        return self.compiler(dialect).compile(name)

    def source_assets(self, name: str) -> list[str]:
        """Names of the Dagster assets producing the sources read by model ``name`` (reference data has none)."""
        return sorted({s.asset for s in self.sources[name] if s.asset})

    def downstream(self, names: Iterable[str]) -> set[str]:
        """Every model that (transitively) refs one of ``names``, excluding ``names`` themselves."""
        start = set(names)
        downs: dict[str, set[str]] = {n: set() for n in self.order}
        for n, rs in self.refs.items():
            for r in rs:
                downs[r].add(n)
        out: set[str] = set()
        stack = list(start)
        while stack:
            for d in downs[stack.pop()]:
                if d not in out:
                    out.add(d)
                    stack.append(d)
        return out - start

    def dependent_views(self, names: Iterable[str]) -> set[str]:
        """The view models that read ``names`` directly or through other views: the relations a database
        binds to them (PostgreSQL will not drop a relation while such a view exists). Tables end a chain."""
        start = set(names)
        out: set[str] = set()
        stack = list(start)
        while stack:
            n = stack.pop()
            for d, rs in self.refs.items():
                if n in rs and d not in out and self.models[d].materialized == "view":
                    out.add(d)
                    stack.append(d)
        return out - start

    def upstream(self, names: Iterable[str]) -> set[str]:
        """Every model that ``names`` (transitively) ref, excluding ``names`` themselves."""
        start = set(names)
        out: set[str] = set()
        stack = list(start)
        while stack:
            for u in self.refs[stack.pop()]:
                if u not in out:
                    out.add(u)
                    stack.append(u)
        return out - start

    def ordered(self, names: Iterable[str]) -> list[str]:
        """``names`` in build order; an unknown name raises."""
        wanted = set(names)
        for n in wanted:
            self.model(n)
        return [n for n in self.order if n in wanted]


def load_manifest(root: str | Path | None = None, project: SqlProject | None = None) -> Manifest:
    """Load and resolve a project (default ``dbt_like_sql/``): refs, sources, build order.

    Dependencies are collected by rendering each model for every supported dialect, so a ref inside a
    ``{% if dialect == ... %}`` branch still counts.
    """
    project = project or load_project(root)
    refs: dict[str, tuple[str, ...]] = {}
    sources: dict[str, tuple[Source, ...]] = {}
    compilers = {d: Compiler(project, d) for d in SUPPORTED_DIALECTS}
    for name in sorted(project.models):
        r: dict[str, None] = {}
        s: dict[tuple[str, str], None] = {}
        for compiler in compilers.values():
            deps = compiler.dependencies(name)
            r.update(dict.fromkeys(deps.refs))
            s.update(dict.fromkeys(deps.sources))
        refs[name] = tuple(r)
        sources[name] = tuple(project.sources[k] for k in s)
    order = topological_order(refs)
    return Manifest(project=project, refs=refs, sources=sources, order=order, _compilers=compilers)
