"""Wiring of the web pages into the FastAPI app: routers, static files, security headers.

``create_app`` calls ``install_site(app)`` once. It is idempotent so tests can call it on an app
that already has it.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from cityloop.web import admin, dashboard, evaluation, grid_admin, ledgers, public, staff
from cityloop.web.render import STATIC_DIR
from cityloop.web.security import SecurityHeadersMiddleware


def web_routers() -> list[APIRouter]:
    """The page routers, in the order they should be included."""
    return [
        public.router,
        public.geo_router,
        staff.router,
        dashboard.router,
        ledgers.router,
        evaluation.router,
        admin.router,
        grid_admin.router,
    ]


def install_site(app: FastAPI) -> FastAPI:
    if getattr(app.state, "site_installed", False):
        return app
    for router in web_routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeadersMiddleware)
    app.state.site_installed = True
    return app
