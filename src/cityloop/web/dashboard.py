"""The command-centre dashboard (指挥中心大屏): today's figures, the 30-day trend, the map of
cells shaded by open cases, the top classes. For the roles that steer the centre: leader,
dispatcher, shift supervisor, admin.

The page polls ``/staff/dashboard/panel`` (htmx, every minute) and swaps the figures in place;
the map keeps itself (``hx-preserve``) and reloads its cells after each swap. The same figures
are JSON at ``/staff/dashboard/data.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from cityloop.errors import InvalidInput
from cityloop.web import dashboard_data
from cityloop.web.charts import trend_svg
from cityloop.web.deps import UowDep
from cityloop.web.i18n import Translator
from cityloop.web.render import (
    DASHBOARD_ROLES,
    PageRoute,
    StaffActor,
    TranslatorDep,
    local_zone,
    render,
    require_roles,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix="/staff/dashboard")

REFRESH_SECONDS = 60


def _context(uow: UowDep, t: Translator) -> dict[str, Any]:
    data = dashboard_data.dashboard(uow, zone=local_zone())

    def tip(day: dashboard_data.DayCount) -> str:
        return t.gettext("%(day)s: %(intake)d reported, %(closed)d closed") % {
            "day": day.day.isoformat(),
            "intake": day.intake,
            "closed": day.closed,
        }

    return {
        "d": data,
        "trend": trend_svg(
            data.trend, label=t.gettext("Reported and closed per day, last 30 days"), tip=tip
        ),
        "updated": data.now.astimezone(local_zone()).strftime("%H:%M:%S"),
        "refresh": REFRESH_SECONDS,
        "max_class": max((c.intake for c in data.classes), default=0),
    }


@router.get("", name="dashboard")
def dashboard_page(request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep) -> Response:
    require_roles(actor, *DASHBOARD_ROLES)
    return render(request, "dashboard.html", **_context(uow, t))


@router.get("/panel", name="dashboard_panel")
def dashboard_panel(request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep) -> Response:
    """The figures alone: the page swaps them in every minute."""
    require_roles(actor, *DASHBOARD_ROLES)
    return render(request, "_dashboard_panel.html", **_context(uow, t))


@router.get("/data.json", name="dashboard_data")
def dashboard_json(uow: UowDep, actor: StaffActor) -> Response:
    require_roles(actor, *DASHBOARD_ROLES)
    data = dashboard_data.dashboard(uow, zone=local_zone())
    return JSONResponse(data.as_json())


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError:
        raise InvalidInput("bbox is minlon,minlat,maxlon,maxlat", field="bbox") from None
    if len(parts) != 4 or not (parts[0] < parts[2] and parts[1] < parts[3]):
        raise InvalidInput("bbox is minlon,minlat,maxlon,maxlat", field="bbox")
    if not (-180 <= parts[0] <= 180 and -180 <= parts[2] <= 180):
        raise InvalidInput("bbox longitudes lie in -180..180", field="bbox")
    if not (-90 <= parts[1] <= 90 and -90 <= parts[3] <= 90):
        raise InvalidInput("bbox latitudes lie in -90..90", field="bbox")
    return parts[0], parts[1], parts[2], parts[3]


@router.get("/cells.geojson", name="dashboard_cells")
def dashboard_cells(uow: UowDep, actor: StaffActor, bbox: str = "") -> Response:
    """Cells shaded by open cases: the district's hotspots, or every busy cell in a view."""
    require_roles(actor, *DASHBOARD_ROLES)
    box = parse_bbox(bbox) if bbox else None
    return JSONResponse(
        dashboard_data.cells_geojson(uow, bbox=box), media_type="application/geo+json"
    )
