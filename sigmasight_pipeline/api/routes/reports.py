"""Reports (api.md [3.3]): a portfolio's reports, one file of a report, and a request for a report.

* The list is the stored ``portfolio_reports`` rows (date, folder, when generated, engines available /
  missing), newest first, each with the files present in its folder (md, json, csv, png).
* A download names the date and a plain file name. The folder comes from the stored row, never from the
  request; the file name must be a plain name of that folder (:data:`FILE_NAME`: no slash, backslash, ``..`` or
  NUL) and the resolved path (symlinks followed) must lie inside the folder and inside the reports root
  (``ApiSettings.reports_root``); anything else is a 404 (422 for a name that is not a report file name).
  A row written under another root (a state copied or a volume mounted elsewhere) is read as the folder of the
  same name under this root.
* A request for a report materializes ``portfolio_reports`` of (date, portfolio) with the run config
  ``ReportConfig(formats)``, as ``sigmasight report --as-of D --format ...`` does: 202 with the work request.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from sigmasight_pipeline.api.access import Caller, caller, portfolio_of
from sigmasight_pipeline.api.common import Cursor, Limit, Page, Strict, page_frame, read_rows, resolve_as_of
from sigmasight_pipeline.api.errors import ERROR_RESPONSES, ApiError
from sigmasight_pipeline.api.routes.operations import WorkRequestOut, describe, webserver_failure
from sigmasight_pipeline.reporting.writer import REPORT_FORMATS, check_formats, report_dir
from sigmasight_pipeline.warehouse import schema

router = APIRouter(tags=["reports"], responses=ERROR_RESPONSES)

#: A report file name: a plain name (no folder part) of one of the served kinds.
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}\.(md|json|csv|png)$")
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "png": "image/png",
}


class ReportFile(BaseModel):
    name: str
    format: str  # md | json | csv | png
    size_bytes: int
    url: str  # the download path under /api/v1


class ReportItem(BaseModel):
    as_of: dt.date
    folder: str  # the report folder's name under the reports root
    generated_at: dt.datetime
    engines_available: int
    engines_missing: int
    files: list[ReportFile]


class ReportRequest(Strict):
    """The report of ``as_of`` (a date with a snapshot), writing ``formats`` (default md, json, csv)."""

    as_of: dt.date
    formats: list[str] | None = None


# --- where the files are -----------------------------------------------------------------------------------------

def _inside(path: Path, root: Path) -> bool:
    return path != root and path.is_relative_to(root)


def report_folder(root: Path, stored: str) -> Path | None:
    """The folder of a stored ``report_dir`` inside ``root`` (symlinks resolved), or None."""
    root = Path(root).resolve()
    if not stored or "\x00" in stored:
        return None
    path = Path(stored)
    candidate = (path if path.is_absolute() else root / path).resolve()
    if _inside(candidate, root):
        return candidate
    name = path.name  # written under another root: the folder of the same name here
    if name in ("", ".", "..") or "\\" in name:
        return None
    candidate = (root / name).resolve()
    return candidate if _inside(candidate, root) else None


def report_file(root: Path, folder: Path, filename: str) -> Path | None:
    """The file ``filename`` of ``folder``: a regular file inside the folder and the root once resolved, or None."""
    path = (folder / filename).resolve()
    root = Path(root).resolve()
    if path.parent != folder or not _inside(path, root) or not path.is_file():
        return None
    return path


def files_of(root: Path, folder: Path | None, portfolio_id: str, day: dt.date) -> list[dict]:
    if folder is None or not folder.is_dir():
        return []
    out = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not FILE_NAME.match(entry.name) or ".." in entry.name:
            continue
        path = report_file(root, folder, entry.name)
        if path is None:
            continue
        out.append({"name": entry.name, "format": entry.suffix[1:], "size_bytes": path.stat().st_size,
                    "url": f"/api/v1/portfolios/{portfolio_id}/reports/{day:%Y-%m-%d}/{entry.name}"})
    return out


def check_file_name(filename: str) -> str:
    if ("\x00" in filename or "/" in filename or "\\" in filename or ".." in filename
            or not FILE_NAME.match(filename)):
        raise ApiError(422, "filename", f"{filename!r} is not a report file name: a plain name ending in "
                                        ".md, .json, .csv or .png (letters, digits, '_', '-', '.'; no folder part)")
    return filename


# --- routes ----------------------------------------------------------------------------------------------------------

@router.get("/portfolios/{portfolio_id}/reports", response_model=Page[ReportItem],
            summary="The portfolio's reports (newest first) with the files of each")
def list_reports(request: Request, portfolio_id: str, limit: Limit = 100, cursor: Cursor = None,
                 who: Caller = Depends(caller)):
    portfolio_of(request, portfolio_id, who)
    t = schema.portfolio_reports
    rows = read_rows(request.app.state.engine, sa.select(t).where(t.c.portfolio_id == portfolio_id).order_by(t.c.date.desc()))
    rows, nxt, total = page_frame(rows, limit=limit, cursor=cursor)
    root = request.app.state.settings.reports_root
    items = []
    for row in rows.to_dict("records"):
        day = _date(row["date"])
        folder = report_folder(root, row["report_dir"])
        items.append({
            "as_of": day, "folder": folder.name if folder is not None else Path(str(row["report_dir"])).name,
            "generated_at": row["generated_at"], "engines_available": int(row["engines_available"]),
            "engines_missing": int(row["engines_missing"]), "files": files_of(root, folder, portfolio_id, day),
        })
    return {"items": items, "next_cursor": nxt, "total": total}


@router.get("/portfolios/{portfolio_id}/reports/{date}/{filename}",
            responses={200: {"content": {m.split(";")[0]: {} for m in MEDIA_TYPES.values()},
                             "description": "the file's bytes"}},
            summary="Download one file (md, json, csv, png) of the report of a date")
def download(request: Request, portfolio_id: str, date: dt.date, filename: str, who: Caller = Depends(caller)):
    portfolio_of(request, portfolio_id, who)
    check_file_name(filename)
    t = schema.portfolio_reports
    with request.app.state.engine.connect() as conn:
        stored = conn.execute(sa.select(t.c.report_dir).where((t.c.portfolio_id == portfolio_id) & (t.c.date == date))).scalar()
    if stored is None:
        with request.app.state.engine.connect() as conn:
            latest = conn.execute(sa.select(sa.func.max(t.c.date)).where(t.c.portfolio_id == portfolio_id)).scalar()
        hint = f"; the latest report is of {_date(latest):%Y-%m-%d}" if latest is not None else "; it has no report yet"
        raise ApiError(404, "date", f"no report of portfolio {portfolio_id!r} on {date:%Y-%m-%d}{hint}")
    root = request.app.state.settings.reports_root
    folder = report_folder(root, stored)
    path = report_file(root, folder, filename) if folder is not None else None
    if path is None:
        raise ApiError(404, "filename", f"no file {filename!r} in the report of portfolio {portfolio_id!r} on {date:%Y-%m-%d}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix[1:]], filename=filename,
                        content_disposition_type="inline")


@router.post("/portfolios/{portfolio_id}/reports", response_model=WorkRequestOut, status_code=202,
             summary="Write the report of a date (a Dagster run of portfolio_reports); 202 with the work request")
def request_report(request: Request, portfolio_id: str, body: ReportRequest, who: Caller = Depends(caller)):
    portfolio = portfolio_of(request, portfolio_id, who)
    try:
        formats = check_formats(body.formats if body.formats is not None else REPORT_FORMATS)
    except ValueError as exc:
        raise ApiError(422, "formats", str(exc)) from None
    engine = request.app.state.engine
    as_of = resolve_as_of(engine, schema.portfolio_snapshots, portfolio_id, body.as_of, what="snapshot")
    root = request.app.state.settings.reports_root
    folder = report_dir(root, portfolio["name"], as_of)
    label = f"report {portfolio_id} {as_of:%Y-%m-%d} ({', '.join(formats)})"
    launcher = request.app.state.launcher

    def plan(ctx) -> dict:
        import dagster as dg

        from sigmasight_pipeline import runner as orch

        run_config = {**orch.QUIET, "ops": {"portfolio_reports": {"config": {"formats": list(formats)}}}}
        result = orch.materialize_portfolio(ctx.instance, portfolio_id, as_of, as_of, defs=ctx.defs, tags=ctx.tags,
                                            selection=[dg.AssetKey("portfolio_reports")], run_config=run_config)
        if not all(orch.check_results(result).values()):  # the pre-publish check refused it: nothing written
            problems = [e.metadata["problems"].value for e in result.get_asset_check_evaluations() if not e.passed]
            raise RuntimeError(f"the report failed its pre-publish validation; nothing written: {'; '.join(problems)}")
        return {"run_id": result.run_id, "folder": folder.name,
                "files": [f"portfolio_report.{fmt}" for fmt in formats]}

    def launch(url: str, tags: dict[str, str]) -> str:
        from sigmasight_pipeline import webserver_client as web
        from sigmasight_pipeline.defs.partitions import multi_key

        try:
            return web.launch_run(url, ["portfolio_reports"], partition_key=str(multi_key(as_of, portfolio_id)), tags=tags,
                                  run_config={"ops": {"portfolio_reports": {"config": {"formats": list(formats)}}}})
        except (web.WebserverError, OSError, ValueError) as exc:
            raise webserver_failure(exc) from None

    work = launcher.submit(label, key_id=who.key.key_id, in_process=plan, via_webserver=launch)
    return describe(request, work)


def _date(value) -> dt.date:
    import pandas as pd

    return pd.Timestamp(value).date()
