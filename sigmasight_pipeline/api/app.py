"""The SigmaSight API application (``spec/api.md``): ``create_app()`` builds it, ``sigmasight serve`` runs it.

Routes live in ``api/routes/<group>.py``, each a ``router`` mounted under ``/api/v1``. Every route but
``/health`` needs a key (``access.caller``). Errors have one shape (``errors.ErrorBody``); a query parameter a
route does not declare is refused like a bad one (422 naming it), as are unknown body fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sigmasight_pipeline.api.access import RateLimiter, UsageRecorder
from sigmasight_pipeline.api.common import CloseRequestDatabase
from sigmasight_pipeline.api.errors import ApiError, FieldError
from sigmasight_pipeline.api.settings import ApiSettings

PREFIX = "/api/v1"


_DECLARED: dict[int, frozenset[str]] = {}


def _declared_query(route) -> frozenset[str]:
    """The query parameters a route declares, its dependencies' included (computed once per route)."""
    known = _DECLARED.get(id(route))
    if known is not None:
        return known
    names, todo = set(), [route.dependant]
    while todo:
        dependant = todo.pop()
        names.update(f.alias for f in dependant.query_params)
        todo.extend(dependant.dependencies)
    return _DECLARED.setdefault(id(route), frozenset(names))


async def _reject_unknown_query(request: Request) -> None:
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant"):
        return
    unknown = sorted(set(request.query_params) - _declared_query(route))
    if unknown:
        allowed = ", ".join(sorted(_declared_query(route))) or "none"
        raise ApiError(422, unknown[0], f"unknown query parameter(s): {', '.join(unknown)} (this endpoint takes: {allowed})")


def _field_name(loc: tuple) -> str:
    """``("body", "trades", 0, "price")`` -> ``trades.0.price``: the location without its leading part."""
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else [str(p) for p in loc]
    return ".".join(parts) or str(loc[0] if loc else "body")


def _routers():
    from sigmasight_pipeline.api import routes

    for info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        yield importlib.import_module(f"{routes.__name__}.{info.name}").router


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment). The warehouse schema is migrated on start."""
    from fastapi import Depends

    from sigmasight_pipeline.warehouse.io import get_engine

    settings = settings or ApiSettings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def flush_periodically():
            while True:
                await asyncio.sleep(settings.usage_flush_seconds)
                await asyncio.to_thread(app.state.usage.flush)

        task = asyncio.create_task(flush_periodically())
        try:
            yield
        finally:
            task.cancel()
            app.state.usage.flush()
            app.state.launcher.close()

    app = FastAPI(
        title="SigmaSight API",
        version="1",
        description="Portfolio risk that the SigmaSight pipeline computed and stored: summaries, positions, Greeks, "
                    "factor exposures, correlations, VaR / ES, attribution, stress results and reports; what-if "
                    "trades and ad-hoc stress answered by the same engine functions as the CLI. Send "
                    "`Authorization: Bearer <key>` (`sigmasight api-key create`).",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(_reject_unknown_query)],
    )
    from sigmasight_pipeline.api.launch import Launcher

    app.state.settings = settings
    app.state.engine = get_engine(settings.database_url)
    app.state.rate_limiter = RateLimiter(settings.rate_limit)
    app.state.usage = UsageRecorder(app.state.engine)
    app.state.launcher = Launcher(settings)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = [FieldError(field=_field_name(tuple(e.get("loc", ()))), message=e.get("msg", "invalid"))
                  for e in exc.errors()]
        first = errors[0] if errors else FieldError(field="body", message="invalid request")
        message = "; ".join(f"{e.field}: {e.message}" for e in errors) or first.message
        return JSONResponse(ApiError(422, first.field, message, errors=errors).body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        field = "path" if exc.status_code in (404, 405) else None
        return JSONResponse(ApiError(exc.status_code, field, str(exc.detail)).body(), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    for router in _routers():
        app.include_router(router, prefix=PREFIX)
    app.add_middleware(CloseRequestDatabase)
    return app
