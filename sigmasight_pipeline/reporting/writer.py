"""Where a report goes and how it is written.

``{output_root}/{slug}_{YYYY-MM-DD}/portfolio_report.md|.json|.csv`` plus the chart PNGs. A write may be
restricted to some of the formats (``formats``: "md", "json", "csv"); the charts belong to the Markdown
(it links them), so they are written, and their stale files removed, only with it. Files of the formats not
written are left as they are. The slug can never
leave the output root (checked after resolving symlinks). Each file is written to a temporary file in the
same directory, flushed and fsynced, then moved over the old one with ``os.replace`` (atomic on POSIX and
Windows): a reader sees the old file or the new one, never half of one. (The files of a report are fsynced
together, then moved one by one: charts first, the Markdown last.) Files of a previous run that are
not part of this report (a chart no longer produced, a temporary file left by a crash) are removed AFTER
the new files are in place. Only files a report can produce are touched; anything else in the directory
is left alone.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .inputs import as_date
from .json_report import report_json_text
from .report import RenderedReport

__all__ = ["REPORT_FILES", "REPORT_FORMATS", "WriteResult", "check_formats", "report_slug", "report_dir",
           "report_text", "write_report"]

REPORT_BASENAME = "portfolio_report"
#: The report's formats, in the order of ``REPORT_FILES``.
REPORT_FORMATS = ("md", "json", "csv")
REPORT_FILES = tuple(f"{REPORT_BASENAME}.{fmt}" for fmt in REPORT_FORMATS)
_CHART_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.png$")
_TMP_PREFIX = ".sigmasight-tmp-"


def report_slug(name: str) -> str:
    """Lower-cased ``name`` with every run of characters other than ``[a-z0-9]`` replaced by "-", stripped.

    ``"Demo Hedge Fund Style"`` -> ``"demo-hedge-fund-style"``; ``"../../etc"`` -> ``"etc"``. An empty
    result raises ``ValueError``.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")
    if not slug:
        raise ValueError(f"portfolio name {name!r} gives an empty report slug")
    return slug


def check_formats(formats) -> tuple[str, ...]:
    """``formats`` as a tuple in :data:`REPORT_FORMATS` order, duplicates dropped; ``ValueError`` naming the
    unknown ones, or when none is given."""
    chosen = [str(f).strip().lower() for f in formats]
    unknown = sorted(set(chosen) - set(REPORT_FORMATS))
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(REPORT_FORMATS)}")
    if not chosen:
        raise ValueError(f"no report format given; choose from {', '.join(REPORT_FORMATS)}")
    return tuple(f for f in REPORT_FORMATS if f in chosen)


def report_text(rendered: RenderedReport, fmt: str) -> str:
    """The text of one format of a rendered report, exactly as :func:`write_report` writes it."""
    (fmt,) = check_formats([fmt])
    if fmt == "md":
        return rendered.markdown
    return report_json_text(rendered) if fmt == "json" else rendered.csv


def report_dir(output_root, name: str, anchor_date) -> Path:
    """``output_root / f"{slug}_{YYYY-MM-DD}"``, resolved; ``ValueError`` if it is not inside the output root."""
    root = Path(output_root).resolve()
    day = as_date(anchor_date).isoformat()
    candidate = (root / f"{report_slug(name)}_{day}").resolve()
    if candidate == root or not candidate.is_relative_to(root):
        raise ValueError(f"report directory {candidate} is not inside the output root {root}")
    return candidate


@dataclass
class WriteResult:
    """What :func:`write_report` did. ``paths``: file name -> path of every file written (a format not written
    has none: its property is None). ``overwrote``: one of the files written already existed (the caller logs
    it)."""

    directory: Path
    paths: dict[str, Path]
    overwrote: bool
    removed: list[Path] = field(default_factory=list)

    @property
    def markdown(self) -> Path | None:
        return self.paths.get(REPORT_FILES[0])

    @property
    def json(self) -> Path | None:
        return self.paths.get(REPORT_FILES[1])

    @property
    def csv(self) -> Path | None:
        return self.paths.get(REPORT_FILES[2])


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_pool() -> ThreadPoolExecutor:
    """This process's threads for fsync (a pool is not inherited across a fork: one per process id)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=8, thread_name_prefix="report-fsync"))
        return _POOL[1]


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _atomic_write_all(directory: Path, payloads: list[tuple[str, bytes]]) -> dict[str, Path]:
    """Write every ``(name, payload)`` into ``directory`` atomically, in the order given; {name: path}.

    Each payload goes to its own temporary file in the directory, which is flushed and fsynced before it is
    moved over its target with ``os.replace``. The files are written first and fsynced together (one
    thread each: the file system commits them in one go instead of one journal commit per file), then
    moved in order. On an error no temporary file is left behind; targets moved before it stay new.
    """
    staged: list[tuple[Path, str, object]] = []  # (target, temporary path, open file)
    try:
        for name, payload in payloads:
            target = directory / name
            fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{name}.", suffix=".tmp", dir=directory)
            try:
                fh = os.fdopen(fd, "wb")
            except BaseException:  # pragma: no cover
                os.close(fd)
                os.unlink(tmp)
                raise
            staged.append((target, tmp, fh))
            fh.write(payload)
            fh.flush()
        if len(staged) > 1:
            list(_fsync_pool().map(os.fsync, [fh.fileno() for _, _, fh in staged]))
        else:
            for _, _, fh in staged:
                os.fsync(fh.fileno())
        paths: dict[str, Path] = {}
        while staged:
            target, tmp, fh = staged[0]
            fh.close()
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            staged.pop(0)
            paths[target.name] = target
        return paths
    finally:
        for _, tmp, fh in staged:  # only after an error
            fh.close()
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def _is_report_artifact(path: Path, formats: tuple[str, ...]) -> bool:
    """A file a write of ``formats`` owns in a report directory: those formats' files, the charts when the
    Markdown is among them, and any temporary file left by a crash."""
    name = path.name
    if name.startswith(_TMP_PREFIX):
        return True
    if name in REPORT_FILES:
        return REPORT_FORMATS[REPORT_FILES.index(name)] in formats
    return "md" in formats and bool(_CHART_NAME.match(name))


def write_report(rendered: RenderedReport, charts: dict[str, bytes], directory,
                 formats=REPORT_FORMATS) -> WriteResult:
    """Write the report's files of ``formats`` (default all three) into ``directory`` atomically; remove the
    stale files those formats own (see the module docstring).

    With the Markdown, ``charts`` must hold exactly the chart files it links to (``rendered.chart_files``), so
    a report never links a missing picture nor ships one it does not mention; charts are written first and
    the Markdown last, so the links resolve as soon as the Markdown appears. Without the Markdown no chart is
    written and ``charts`` must be empty. ``ValueError`` for an unknown format or a chart mismatch, before
    anything is written.
    """
    formats = check_formats(formats)
    directory = Path(directory)
    expected = set(rendered.chart_files) if "md" in formats else set()
    given = set(charts)
    if given != expected:
        raise ValueError(
            f"charts {sorted(given)} do not match the charts the report's written formats "
            f"({', '.join(formats)}) link to {sorted(expected)}"
        )
    for name in given:
        if not _CHART_NAME.match(name):
            raise ValueError(f"invalid chart file name {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    files = [REPORT_FILES[REPORT_FORMATS.index(fmt)] for fmt in formats]
    overwrote = any((directory / f).exists() for f in files)

    payloads: list[tuple[str, bytes]] = [(name, charts[name]) for name in sorted(given)]
    # CSV, JSON, then the Markdown last (the order the files appear in)
    payloads += [(REPORT_FILES[REPORT_FORMATS.index(fmt)], report_text(rendered, fmt).encode("utf-8"))
                 for fmt in reversed(REPORT_FORMATS) if fmt in formats]
    paths = _atomic_write_all(directory, payloads)

    removed: list[Path] = []
    keep = set(paths)
    for entry in sorted(directory.iterdir()):
        if entry.name in keep or not _is_report_artifact(entry, formats):
            continue
        if entry.is_symlink() or entry.is_file():  # never a directory; a symlink itself, not its target
            entry.unlink()
            removed.append(entry)
    _fsync_dir(directory)
    return WriteResult(directory=directory, paths=paths, overwrote=overwrote, removed=removed)
