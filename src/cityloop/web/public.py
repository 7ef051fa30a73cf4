"""Public pages (no login): report a problem, receive the code, track a case, the case map."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.responses import Response

from cityloop.cases import service as cases
from cityloop.cases.domain import Channel
from cityloop.cases.schemas import MAX_DESCRIPTION, CaseCreate, Location, Reporter
from cityloop.db.uow import UnitOfWork
from cityloop.errors import InvalidInput, NotFound
from cityloop.grid import service as grid_service
from cityloop.grid.boundaries import boundary_feature, load_boundary
from cityloop.grid.coords import CoordSystem
from cityloop.org.domain import Actor
from cityloop.web.citizen import citizen_case, recent_points
from cityloop.web.deps import UowDep
from cityloop.web.forms import (
    FormProblem,
    checked_idempotency_key,
    class_groups,
    new_idempotency_key,
    parse_class,
    parse_point,
    read_photos,
)
from cityloop.web.i18n import N_, Translator
from cityloop.web.labels import Labels
from cityloop.web.render import (
    OptionalActor,
    PageRoute,
    TranslatorDep,
    local_zone,
    redirect,
    render,
)
from cityloop.web.security import CsrfChecked, RateLimited, SlidingWindowLimiter, client_ip
from cityloop.web.settings import get_web_settings

router = APIRouter(route_class=PageRoute, include_in_schema=False)
geo_router = APIRouter(prefix="/geo", include_in_schema=False)


# --- the report form, shared with the staff report page --------------------------------------


@dataclass
class ReportFields:
    """What the report form sent, kept as text so a refused form comes back filled in."""

    klass: str = ""
    description: str = ""
    address: str = ""
    lon: str = ""
    lat: str = ""
    name: str = ""
    phone: str = ""
    email: str = ""
    channel: str = Channel.PUBLIC_WEB.value
    idempotency_key: str = ""


_FIELD_MESSAGES = {
    "phone": N_("The phone number is not valid."),
    "email": N_("The e-mail address is not valid."),
    "name": N_("The name is too long."),
    "address": N_("The address is too long."),
    "description": N_("Describe the problem."),
}


def build_case(fields: ReportFields, channel: Channel, t: Translator) -> CaseCreate:
    family, minor_code = parse_class(fields.klass, t)
    point = parse_point(fields.lon, fields.lat, t)
    description = fields.description.strip()
    if not description:
        raise FormProblem("description", t.gettext("Describe the problem."))
    if len(description) > MAX_DESCRIPTION:
        raise FormProblem(
            "description",
            t.gettext("The description is too long (at most %(count)d characters).")
            % {"count": MAX_DESCRIPTION},
        )
    address = fields.address.strip() or None
    if point is None and address is None:
        raise FormProblem("location", t.gettext("Set the place on the map or type an address."))
    try:
        reporter = Reporter(
            name=fields.name.strip() or None,
            phone=fields.phone.strip() or None,
            email=fields.email.strip() or None,
        )
        return CaseCreate(
            channel=channel,
            description=description,
            family=family,
            minor_code=minor_code,
            # Browsers report geolocation in WGS-84 and the map has no GCJ-02 tiles, so a
            # click or a GPS fix is WGS-84 (see docs/web.md for tile servers).
            location=Location(lon=point[0], lat=point[1], system=CoordSystem.WGS84)
            if point
            else None,
            address=address,
            reporter=reporter if (reporter.name or reporter.phone or reporter.email) else None,
        )
    except ValidationError as exc:
        loc = [str(p) for p in exc.errors()[0].get("loc", ())]
        name = loc[-1] if loc else ""
        message = _FIELD_MESSAGES.get(name, N_("Some fields are missing or invalid"))
        raise FormProblem(name or "form", t.gettext(message)) from None


def submit_report(
    request: Request,
    uow: UnitOfWork,
    actor: Actor | None,
    data: CaseCreate,
    photos: list[tuple[str, bytes]],
    idempotency_key: str | None,
    t: Translator,
) -> cases.Reported:
    """Report the case with its (already checked) photos, in one transaction."""
    # The grid layer's point assignment (cell, community, subdistrict, suggested department).
    locate = getattr(request.app.state, "case_locator", None)
    try:
        return cases.report(
            uow,
            actor,
            data,
            idempotency_key=idempotency_key,
            locate=locate,
            photos=photos,
        )
    except InvalidInput as exc:
        if exc.field == "minor_code":
            raise FormProblem("class", t.gettext("Choose a class from the list.")) from None
        raise


def report_page(
    request: Request,
    uow: UnitOfWork,
    fields: ReportFields,
    *,
    template: str = "report.html",
    problem: FormProblem | None = None,
    **extra: Any,
) -> Response:
    if not fields.idempotency_key:
        fields.idempotency_key = new_idempotency_key()
    return render(
        request,
        template,
        status_code=422 if problem else 200,
        form=fields,
        problem=problem,
        groups=class_groups(uow),
        max_photos=get_web_settings().max_photos,
        **extra,
    )


def report_limiter(request: Request) -> SlidingWindowLimiter:
    limiter: SlidingWindowLimiter | None = getattr(request.app.state, "report_limiter", None)
    if limiter is None:
        web = get_web_settings()
        limiter = SlidingWindowLimiter(web.report_rate_limit, web.report_rate_window_seconds)
        request.app.state.report_limiter = limiter
    return limiter


# --- pages -------------------------------------------------------------------------------


@router.get("/", name="home")
def home(request: Request, actor: OptionalActor) -> Response:
    return render(request, "home.html")


@router.get("/report", name="report_form")
def report_form(request: Request, uow: UowDep, actor: OptionalActor) -> Response:
    return report_page(request, uow, ReportFields())


@router.post("/report", name="report_submit")
def report_submit(
    request: Request,
    uow: UowDep,
    actor: OptionalActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    klass: Annotated[str, Form(alias="class")] = "",
    description: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    lon: Annotated[str, Form()] = "",
    lat: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    fields = ReportFields(
        klass=klass,
        description=description,
        address=address,
        lon=lon,
        lat=lat,
        name=name,
        phone=phone,
        email=email,
        idempotency_key=idempotency_key,
    )
    try:
        data = build_case(fields, Channel.PUBLIC_WEB, t)
        checked = read_photos(uow, photos or [], max_photos=get_web_settings().max_photos, t=t)
    except FormProblem as problem:
        return report_page(request, uow, fields, problem=problem)
    retry = report_limiter(request).hit(client_ip(request))
    if retry is not None:
        raise RateLimited("too many reports from this address", retry_after=retry)
    # Citizens report as nobody: a staff member who is logged in uses the staff page.
    try:
        reported = submit_report(
            request, uow, None, data, checked, checked_idempotency_key(idempotency_key), t
        )
    except FormProblem as problem:
        return report_page(request, uow, fields, problem=problem)
    return redirect(request.app.url_path_for("report_receipt", code=reported.code))


@router.get("/report/receipt/{code}", name="report_receipt")
def report_receipt(request: Request, uow: UowDep, actor: OptionalActor, code: str) -> Response:
    case = citizen_case(uow, code)
    return render(request, "receipt.html", case=case)


@router.get("/track", name="track")
def track(request: Request, uow: UowDep, actor: OptionalActor, code: str = "") -> Response:
    case = None
    missing = False
    if code.strip():
        try:
            case = citizen_case(uow, code)
        except NotFound:
            missing = True
    return render(
        request,
        "track.html",
        code=code.strip(),
        case=case,
        missing=missing,
        status_code=404 if missing else 200,
    )


@router.get("/map", name="public_map")
def public_map(request: Request, actor: OptionalActor) -> Response:
    return render(request, "public_map.html", days=get_web_settings().public_map_days)


# --- map data ------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _boundary_geojson(adcode: str) -> dict[str, Any]:
    return boundary_feature(load_boundary(adcode))


@geo_router.get("/boundary.geojson", name="geo_boundary")
def geo_boundary() -> JSONResponse:
    feature = _boundary_geojson(get_web_settings().district_adcode)
    return JSONResponse(
        feature,
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@geo_router.get("/recent-cases.geojson", name="geo_recent_cases")
def geo_recent_cases(request: Request, uow: UowDep, t: TranslatorDep) -> JSONResponse:
    """Recent cases for the public map: class, status and day only, at a rounded position."""
    web = get_web_settings()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=web.public_map_days)
    label = Labels(t)
    points = recent_points(uow, since=since, limit=web.public_map_limit, local_zone=local_zone())
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
            "properties": {
                "class": p.class_name or t.gettext("Unclassified"),
                "status": label("public_status", p.state),
                "closed": p.state.value in ("closed", "declined", "not_accepted", "voided"),
                "day": p.reported_on.isoformat(),
            },
        }
        for p in points
    ]
    return JSONResponse(
        {"type": "FeatureCollection", "features": features},
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=60"},
    )


@geo_router.get("/cells.geojson", name="geo_cells")
def geo_cells(request: Request, uow: UowDep, bbox: str = "") -> JSONResponse:
    """Grid cells in a bounding box ``minlon,minlat,maxlon,maxlat`` (WGS-84), simplified for
    display; an empty collection while the city has no stored grid."""
    if not bbox:
        raise InvalidInput("bbox is minlon,minlat,maxlon,maxlat", field="bbox")
    collection = grid_service.cells_geojson(uow, bbox=bbox, system="wgs84", limit=3000)
    return JSONResponse(
        collection,
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


def public_routers() -> list[APIRouter]:
    return [router, geo_router]


__all__ = ["ReportFields", "build_case", "public_routers", "report_page", "submit_report"]
