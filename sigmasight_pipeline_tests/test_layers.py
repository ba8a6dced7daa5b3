"""The layers of DESIGN.md ("Layers"): every module imports on its own, and imports run down the table.

1. Every module of the package is imported ALONE in a fresh process, so an import circle (which only shows
   when the circle is entered from a particular module) or a missing name fails here. To keep this fast, one
   helper interpreter imports the third-party libraries once (dagster, pandas, ...) and forks one child per
   module: each child starts with none of ``sigmasight_pipeline`` imported, imports its one module and exits.
   Without ``os.fork`` (Windows) every module gets a new interpreter instead (slower, same verdict).
2. A static (ast) reading of every import, lazy ones inside functions included: no import circle (the
   market-data registry once imported the sources that import it); a plain package never imports
   ``sigmasight_pipeline.defs``; ``engines``, ``quality`` and ``marketdata`` never import Dagster and only
   what is below them; nothing imports a private ``dagster._*`` module; a ``defs/`` domain takes only asset
   definitions (for ``deps``) from another domain, never a helper; test-only libraries stay in the tests.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sigmasight_pipeline"
TESTS = ROOT / "sigmasight_pipeline_tests"
BENCHMARKS = ROOT / "benchmarks"

#: Packages that know nothing of Dagster's definitions: they never import ``sigmasight_pipeline.defs``.
PLAIN = ("engines", "marketdata", "warehouse", "reporting", "onboarding", "quality", "sqlmodels")
#: What the lowest layers may import of the package (besides themselves); and no Dagster at all.
ALLOWED_BELOW = {
    "engines": {"data"},
    "quality": {"engines", "data"},
    "marketdata": {"data"},
}
#: Third-party libraries the helper interpreter imports before forking (speed only: a missing one is skipped).
PRELOAD = (
    "numpy", "pandas", "scipy", "scipy.stats", "scipy.linalg", "sqlalchemy", "exchange_calendars", "yaml", "jinja2",
    "jsonschema", "fastjsonschema", "tabulate", "PIL", "matplotlib", "matplotlib.pyplot", "requests", "psycopg",
    "dagster", "dagster_graphql", "dagster_postgres",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_files() -> list[Path]:
    """The package's modules as they are now (read at test time: the tree may change while the suite runs)."""
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


_FORK_HELPER = r"""
import importlib, json, os, sys, traceback
modules = json.loads(sys.argv[1])
for lib in json.loads(sys.argv[2]):
    try:
        importlib.import_module(lib)
    except Exception:
        pass
assert not [m for m in sys.modules if m.split(".")[0] == "sigmasight_pipeline"], "the package was preloaded"
results, running = {}, {}
limit = max(1, min(4, os.cpu_count() or 1))

def reap():
    pid, status = os.wait()
    mod, fd = running.pop(pid)
    with os.fdopen(fd) as f:
        results[mod] = [os.waitstatus_to_exitcode(status), f.read()]

for mod in modules:
    if len(running) >= limit:
        reap()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(mod)
            code, msg = 0, ""
        except BaseException:
            code, msg = 1, traceback.format_exc()
        os.write(w, msg[-4000:].encode())
        os._exit(code)
    os.close(w)
    running[pid] = (mod, r)
while running:
    reap()
print(json.dumps(results))
"""


def _env() -> dict[str, str]:
    # One BLAS thread: the helper forks, and a child must not inherit a pool of busy threads.
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore"}


def _import_alone(modules: list[str]) -> dict[str, tuple[int, str]]:
    if hasattr(os, "fork"):
        proc = subprocess.run(
            [sys.executable, "-c", _FORK_HELPER, json.dumps(modules), json.dumps(PRELOAD)],
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        return {m: (code, msg) for m, (code, msg) in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    from concurrent.futures import ThreadPoolExecutor  # pragma: no cover - platforms without fork

    def one(mod: str) -> tuple[int, str]:
        p = subprocess.run([sys.executable, "-c", f"import {mod}"], cwd=ROOT, env=_env(), capture_output=True, text=True)
        return p.returncode, p.stderr[-4000:]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(modules, pool.map(one, modules)))


def test_every_module_imports_alone_in_a_fresh_process():
    modules = [module_name(p) for p in module_files()]
    results = _import_alone(modules)
    assert set(results) == set(modules)
    failed = {m: msg for m, (code, msg) in results.items() if code != 0}
    assert not failed, "\n\n".join(f"{m}:\n{msg}" for m, msg in sorted(failed.items()))


# --------------------------------------------------------------------------------------------------
# Static reading of the imports
# --------------------------------------------------------------------------------------------------
def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` for every import in ``path`` (relative imports resolved; ``names`` of a
    ``from`` import), plus string arguments of ``importlib.import_module`` / ``__import__``."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except FileNotFoundError:  # moved away since it was listed (the tree is being edited)
        return []
    here = module_name(path) if path.is_relative_to(ROOT) else path.stem
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [a.name for a in node.names]
            if node.level and not node.module:  # ``from . import calendar``: the names are modules
                out += [(f"{mod}.{n}", [], node.lineno) for n in names]
            else:
                out.append((mod, names, node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                out.append((node.args[0].value, [], node.lineno))
    return out


def import_graph(files: list[Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module level or inside functions (a lazy import closes a
    circle as surely as an eager one; it only fails later). ``from pkg import mod`` is an edge to ``pkg.mod``."""
    modules = {module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    for p in files:
        edges = set()
        for mod, names, _ in imports_of(p):
            if mod.split(".")[0] != "sigmasight_pipeline":
                continue
            subs = {f"{mod}.{n}" for n in names if f"{mod}.{n}" in modules}
            edges |= subs
            if mod in modules and (not names or len(subs) < len(names)):
                edges.add(mod)
        graph[module_name(p)] = edges - {module_name(p)}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circles():
    assert import_circles(import_graph(module_files())) == []


def test_import_circles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "sigmasight_pipeline" else None


def test_plain_packages_never_import_defs():
    bad = [
        f"{module_name(p)}:{line} imports {mod}"
        for p in module_files() if _layer(module_name(p)) in PLAIN
        for mod, _, line in imports_of(p)
        if mod == "sigmasight_pipeline.defs" or mod.startswith("sigmasight_pipeline.defs.")
    ]
    assert not bad, "\n".join(bad)


def test_lowest_layers_import_no_dagster_and_nothing_above_them():
    bad = []
    for p in module_files():
        layer = _layer(module_name(p))
        if layer not in ALLOWED_BELOW:
            continue
        for mod, _, line in imports_of(p):
            top = mod.split(".")[0]
            if top.startswith("dagster"):
                bad.append(f"{module_name(p)}:{line} imports {mod} (no Dagster in {layer}/)")
            elif top == "sigmasight_pipeline" and _layer(mod) not in {layer, *ALLOWED_BELOW[layer]}:
                bad.append(f"{module_name(p)}:{line} imports {mod} ({layer}/ may import {sorted(ALLOWED_BELOW[layer])})")
    assert not bad, "\n".join(bad)


def test_nothing_imports_private_dagster_modules():
    files = [*module_files(), *TESTS.rglob("*.py"), *BENCHMARKS.rglob("*.py")]
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p in files if "__pycache__" not in p.parts
        for mod, _, line in imports_of(p)
        if mod.startswith("dagster") and any(part.startswith("_") for part in mod.split(".")[1:])
    ]
    assert not bad, "\n".join(bad)


#: In ``pyproject.toml``'s ``test`` extra: references the tests and benchmarks compare against.
TEST_ONLY = ("statsmodels", "mibian", "QuantLib", "skfolio", "empyrical")


def test_test_only_libraries_stay_out_of_the_package():
    bad = [
        f"{module_name(p)}:{line} imports {mod}"
        for p in module_files()
        for mod, _, line in imports_of(p)
        if mod.split(".")[0] in TEST_ONLY
    ]
    assert not bad, "\n".join(bad)


DEFS = PACKAGE / "defs"
DOMAINS = sorted(p.name for p in DEFS.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_a_defs_domain_takes_only_assets_from_another():
    """``defs/<domain>/`` may name another domain's assets as ``deps``; shared helpers live at ``defs/`` level
    (``date_portfolio``, ``metadata``, ``partitions``, ``resources``), never in another domain's modules."""
    bad = []
    for p in module_files():
        here = module_name(p).split(".")
        if len(here) < 3 or here[1] != "defs" or here[2] not in DOMAINS:
            continue
        for mod, names, line in imports_of(p):
            there = mod.split(".")
            if len(there) < 3 or there[:2] != ["sigmasight_pipeline", "defs"] or there[2] not in DOMAINS or there[2] == here[2]:
                continue
            target = importlib.import_module(mod)
            for name in names or ["<module>"]:
                value = getattr(target, name, None)
                if not isinstance(value, (dg.AssetsDefinition, dg.AssetChecksDefinition)):
                    bad.append(f"{module_name(p)}:{line} takes {name!r} from {mod}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_modules_are_named_for_what_they_hold(domain):
    """No catch-all ``assets.py`` beside named asset modules: one module per engine (``reports`` aside while
    its rewrite is in progress)."""
    files = {p.stem for p in (DEFS / domain).glob("*.py")}
    if domain not in ("reports", "operations"):
        assert "assets" not in files, f"defs/{domain}/assets.py"
