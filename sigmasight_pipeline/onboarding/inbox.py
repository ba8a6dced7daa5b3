"""The portfolio inbox: a folder where portfolio CSV files are dropped to be onboarded.

Pure file handling (no Dagster, no database): list the candidate files, read an optional sidecar, derive
a portfolio name, move a file to ``processed/`` or ``rejected/`` atomically under a unique timestamped name,
and write the error report beside a rejected file.

Layout::

    inbox/
      growth_book.csv          <- dropped here (optional sidecar growth_book.json: {"name", "owner", "id"})
      processed/growth_book.20250627T223015Z.csv
      rejected/bad_book.20250627T223015Z.csv
      rejected/bad_book.20250627T223015Z.csv.errors.txt

Write a file elsewhere and ``mv`` it into the inbox (an atomic rename) so that it is never read half-written;
files modified less than ``min_age_seconds`` ago are left for the next look as a second safeguard.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

PROCESSED = "processed"
REJECTED = "rejected"
ERRORS_SUFFIX = ".errors.txt"
SIDECAR_SUFFIX = ".json"
SIDECAR_FIELDS = ("name", "owner", "id")
#: ``<portfolio-id>.trades.csv``: trades for an existing portfolio (books.md, "Trades"), not a new book.
TRADES_SUFFIX = ".trades.csv"


def trades_portfolio(path: str | os.PathLike) -> str | None:
    """The portfolio id of a trades file (``hnw.trades.csv`` -> ``"hnw"``), or None for a portfolio upload."""
    name = Path(path).name
    return name[: -len(TRADES_SUFFIX)] or None if name.lower().endswith(TRADES_SUFFIX) else None


def ensure_inbox(root: str | os.PathLike) -> Path:
    """Create ``root`` with its ``processed/`` and ``rejected/`` folders; returns the resolved root."""
    path = Path(root).expanduser().resolve()
    for sub in (path, path / PROCESSED, path / REJECTED):
        sub.mkdir(parents=True, exist_ok=True)
    return path


def list_candidates(root: str | os.PathLike, *, min_age_seconds: float = 0.0, now: float | None = None) -> list[Path]:
    """The ``*.csv`` files directly in ``root`` (any case of the suffix), oldest first (mtime, then name).

    Hidden files (``.name``) and files modified less than ``min_age_seconds`` ago are skipped.
    """
    root = Path(root)
    now = time.time() if now is None else now
    found = []
    for path in root.iterdir() if root.is_dir() else []:
        if path.name.startswith(".") or path.suffix.lower() != ".csv":
            continue
        try:
            if not path.is_file():
                continue
            mtime = path.stat().st_mtime
        except OSError:  # vanished meanwhile
            continue
        if now - mtime < min_age_seconds:
            continue
        found.append((mtime, path.name, path))
    return [p for _, _, p in sorted(found)]


def file_digest(data: bytes) -> str:
    """SHA-256 of the file's bytes (hex)."""
    return hashlib.sha256(data).hexdigest()


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    path = Path(csv_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def read_sidecar(csv_path: str | os.PathLike) -> dict[str, str]:
    """The optional ``<stem>.json`` beside the CSV: ``{"name": ..., "owner": ..., "id": ...}`` (all optional).

    Returns ``{}`` without a sidecar; raises ``ValueError`` for unreadable JSON, a non-object, unknown keys
    or non-string values.
    """
    path = sidecar_path(csv_path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"sidecar {path.name}: unreadable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"sidecar {path.name}: expected a JSON object with keys {', '.join(SIDECAR_FIELDS)}")
    unknown = sorted(set(data) - set(SIDECAR_FIELDS))
    if unknown:
        raise ValueError(f"sidecar {path.name}: unknown keys {', '.join(unknown)} (allowed: {', '.join(SIDECAR_FIELDS)})")
    bad = sorted(k for k, v in data.items() if v is not None and (not isinstance(v, str) or not v.strip()))
    if bad:
        raise ValueError(f"sidecar {path.name}: {', '.join(bad)} must be non-empty strings")
    return {k: v.strip() for k, v in data.items() if v is not None}


def name_from_filename(path: str | os.PathLike) -> str:
    """A portfolio name from a file name: the stem with ``_`` and ``-`` as spaces, title-cased.

    ``growth_book.csv`` -> ``"Growth Book"``; ``hedge-fund_2025.csv`` -> ``"Hedge Fund 2025"``. Raises
    ``ValueError`` when nothing is left.
    """
    words = re.sub(r"[_\-\s]+", " ", Path(path).stem).strip()
    if not words:
        raise ValueError(f"cannot derive a portfolio name from the file name {Path(path).name!r}")
    return words.title()


def _timestamp(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _place_atomically(src: Path, dest: Path) -> bool:
    """Move ``src`` to ``dest`` only if ``dest`` does not exist (hard link + unlink; rename where links fail)."""
    try:
        os.link(src, dest)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: rename, after checking (single mover)
        if dest.exists():
            return False
        os.replace(src, dest)
        return True
    os.unlink(src)
    return True


def move_file(path: str | os.PathLike, dest_dir: str | os.PathLike, *, now: dt.datetime | None = None) -> Path:
    """Move ``path`` into ``dest_dir`` as ``<stem>.<UTC timestamp>[-n]<suffix>`` (never overwriting); the
    sidecar ``<stem>.json``, if any, moves along under the same new stem. Returns the new CSV path."""
    src = Path(path)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp = _timestamp(now)
    sidecar = sidecar_path(src)
    n = 0
    while True:
        stem = f"{src.stem}.{stamp}" + (f"-{n}" if n else "")
        target = dest_dir / f"{stem}{src.suffix}"
        side_target = dest_dir / f"{stem}{SIDECAR_SUFFIX}"
        if not side_target.exists() and _place_atomically(src, target):
            break
        n += 1
    if sidecar.is_file():
        _place_atomically(sidecar, side_target)
    return target


def write_error_report(moved: str | os.PathLike, errors: Iterable[object], *, original_name: str, reason: str) -> Path:
    """Write ``<moved file name>.errors.txt`` beside ``moved``: the reason, then one line per error. Atomic."""
    moved = Path(moved)
    errors = [str(e) for e in errors]
    lines = [
        f"file: {original_name}",
        f"rejected at: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
        f"reason: {reason}",
    ]
    if errors:
        lines += ["", f"{len(errors)} error{'s' if len(errors) != 1 else ''}:"] + [f"  {e}" for e in errors]
    lines += ["", "Nothing was imported. Fix the file and drop it in the inbox again."]
    report = moved.with_name(moved.name + ERRORS_SUFFIX)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=report.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, report)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report


def reject(path: str | os.PathLike, root: str | os.PathLike, *, reason: str, errors: Iterable[object] = (),
           now: dt.datetime | None = None) -> tuple[Path, Path]:
    """Move ``path`` to ``root/rejected/`` and write its error report; returns (moved file, report)."""
    original = Path(path).name
    moved = move_file(path, Path(root) / REJECTED, now=now)
    return moved, write_error_report(moved, errors, original_name=original, reason=reason)


def accept(path: str | os.PathLike, root: str | os.PathLike, *, now: dt.datetime | None = None) -> Path:
    """Move ``path`` to ``root/processed/``; returns the moved file."""
    return move_file(path, Path(root) / PROCESSED, now=now)
