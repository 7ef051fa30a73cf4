"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import text

from cityloop import __version__
from cityloop.db.engine import Database
from cityloop.errors import CityloopError


def create_app(database: Database | None = None) -> FastAPI:
    """Build the app. Tests pass their own ``database``; production opens the configured one."""
    if database is None:
        from cityloop.cli_support import open_database

        database = open_database()

    app = FastAPI(
        title="cityloop",
        version=__version__,
        description="Closed-loop urban management: cases, filing standard, grid, evaluation.",
        docs_url=None,  # served below from our own static files: no CDN
        redoc_url=None,
        # FastAPI's built-in OpenTelemetry hooks: a bureau's intranet has no collector, and
        # asking on every request whether one is configured costs a few % of intake's CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.database = database

    @app.exception_handler(CityloopError)
    async def _domain_error(_request: Request, exc: CityloopError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=exc.to_dict())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid input"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form")]
        field = ".".join(loc) or "body"
        return JSONResponse(
            status_code=422,
            content={
                "error": "InvalidInput",
                "message": f"{field}: {first.get('msg', 'invalid')}",
                "field": field,
                "details": [
                    {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                    for e in errors
                ],
            },
        )

    for router in _routers():
        app.include_router(router)

    from cityloop.web.site import install_site

    install_site(app)  # pages, /static, security headers

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="cityloop API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/icons/logo.svg",
        )

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        uow = database.uow()
        with uow.read():
            uow.session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": database.dialect}

    return app


def create_served_app() -> FastAPI:
    """The app as ``cityloop serve`` runs it: ``create_app`` plus process-wide tuning.

    After start-up the process holds a few hundred thousand long-lived objects (the app, the
    ORM mappers, the schemas, the calendar). Python's cyclic GC would walk them all on every
    full collection, a pause of about 100 ms that lands on whichever requests are in flight
    (the intake benchmark's p99). ``gc.freeze()`` moves them out of the collector's view once
    the app is built; the objects requests create are still collected as usual. Tests build
    many apps in one process and use ``create_app``, so they never freeze.
    """
    app = create_app()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        yield

    app.router.lifespan_context = lifespan
    return app


def _routers() -> list[APIRouter]:
    """Every capability's routes. Add a line when a capability gains a ``views.py``."""
    from cityloop.cases.views import router as cases_router
    from cityloop.evaluation.views import router as evaluation_router
    from cityloop.exchange.views import router as exchange_router
    from cityloop.grid.views import router as grid_router
    from cityloop.ledgers.views import router as ledgers_router
    from cityloop.open311.views import router as open311_router
    from cityloop.org.views import router as org_router
    from cityloop.workcal.views import router as calendar_router

    return [
        org_router,
        cases_router,
        calendar_router,
        grid_router,
        ledgers_router,
        evaluation_router,
        exchange_router,
        open311_router,
    ]
