"""Server-rendered pages: the Jinja environments, the page context, errors as pages.

``render(request, "page.html", **context)`` is what every page handler returns. Routers of
pages use ``PageRoute`` so a domain error, a validation error, a refused CSRF token or a rate
limit becomes a friendly page in the user's language (the API keeps its JSON errors), and so
the language and CSRF cookies are set on every page response.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import Response
from starlette.routing import NoMatchFound

from cityloop import __version__
from cityloop.config import get_settings
from cityloop.errors import CityloopError, PermissionDenied, Unauthenticated
from cityloop.org import service as org
from cityloop.org.domain import CITYWIDE_ROLES, Actor, Role
from cityloop.web.deps import SESSION_COOKIE, DatabaseDep
from cityloop.web.i18n import (
    HTML_LANG,
    LANG_COOKIE,
    LANG_NAMES,
    LANGS,
    Translator,
    negotiate,
    requested_lang,
    translations,
)
from cityloop.web.labels import Labels
from cityloop.web.security import RateLimited, csrf_token, set_cookie, set_csrf_cookie
from cityloop.web.settings import get_web_settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


class LoginRequired(Unauthenticated):
    """A staff page was asked for without a valid session: the browser goes to the login."""


# --- environments --------------------------------------------------------------------------


@cache
def environment(lang: str) -> Environment:
    """One environment per language, so the installed translations never race."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


# --- times ---------------------------------------------------------------------------------


def local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def fmt_time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")


def fmt_date(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(local_zone()).date()
    return value.isoformat()


def fmt_duration(t: Translator, minutes: int) -> str:
    days, rest = divmod(max(0, minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return t.gettext("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if hours:
        return t.gettext("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": mins}
    return t.gettext("%(minutes)d min") % {"minutes": mins}


def fmt_due(t: Translator, deadline: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """ "due in 2 h 5 min" / "overdue by 1 d 3 h" against the wall clock."""
    if deadline is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    minutes = int((deadline - now).total_seconds() // 60)
    if minutes >= 0:
        return t.gettext("due in %(time)s") % {"time": fmt_duration(t, minutes)}
    return t.gettext("overdue by %(time)s") % {"time": fmt_duration(t, -minutes)}


# --- navigation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    active: bool


def has_route(request: Request, name: str) -> bool:
    """Whether the app has a route of this name taking no path parameters.

    Asked of the router itself: FastAPI (0.16x) keeps included routers as nested entries, so
    ``app.routes`` does not list their routes' names.
    """
    known: dict[str, bool] | None = getattr(request.app.state, "route_names", None)
    if known is None:
        known = {}
        request.app.state.route_names = known
    if name not in known:
        try:
            request.app.url_path_for(name)
            known[name] = True
        except NoMatchFound:
            known[name] = False
    return known[name]


BOARD_ROLES = (Role.DISPATCHER, Role.SHIFT_SUPERVISOR, Role.LEADER, Role.ADMIN)
# The command-centre dashboard (指挥中心大屏): the roles that steer the centre.
DASHBOARD_ROLES = (Role.LEADER, Role.DISPATCHER, Role.SHIFT_SUPERVISOR, Role.ADMIN)


def nav_items(request: Request, actor: Actor | None, t: Translator) -> list[NavItem]:
    path = request.url.path
    items: list[tuple[str, str]] = []
    if actor is None:
        items = [
            ("/report", t.gettext("Report a problem")),
            ("/track", t.gettext("Track a case")),
            ("/map", t.gettext("Case map")),
        ]
    else:
        items = [("/staff", t.gettext("Workbench"))]
        from cityloop.cases.domain import REPORT_ROLES

        if any(actor.role in roles for roles in REPORT_ROLES.values()):
            items.append(("/staff/report", t.gettext("New report")))
        items.append(("/staff/cases", t.gettext("Search")))
        if actor.role in BOARD_ROLES:
            items.append(("/staff/board", t.gettext("Dispatch board")))
        if actor.role is Role.DEPARTMENT_OPERATOR or actor.role in CITYWIDE_ROLES:
            items.append(("/staff/department", t.gettext("Department view")))
        if actor.role in DASHBOARD_ROLES and has_route(request, "dashboard"):
            items.append((request.app.url_path_for("dashboard"), t.gettext("Dashboard")))
        # Every role may hold ledger items (operators their unit's, inspectors hazard surveys).
        if has_route(request, "ledgers"):
            items.append((request.app.url_path_for("ledgers"), t.gettext("Ledgers")))
        # The month's evaluation (考评): for the centre's staff and leaders, as the API allows.
        if actor.is_citywide and has_route(request, "evaluation"):
            items.append((request.app.url_path_for("evaluation"), t.gettext("Evaluation")))
        if actor.role is Role.ADMIN:
            if has_route(request, "grid_import"):
                items.append((request.app.url_path_for("grid_import"), t.gettext("Grid")))
            items.append(("/staff/admin", t.gettext("Administration")))
    # The longest matching entry is the active one (/staff/admin/grid: Grid, not Administration).
    matches = [h for h, _ in items if h not in ("/", "/staff") and path.startswith(h)]
    active = max(matches, key=len) if matches else path
    return [NavItem(href, label, href == active) for href, label in items]


# --- the page context ----------------------------------------------------------------------


def static_url(path: str) -> str:
    return f"/static/{quote(path)}?v={__version__}"


def lang_url(request: Request, lang: str) -> str:
    params = dict(request.query_params)
    params["lang"] = lang
    return f"{request.url.path}?{urlencode(params)}"


def _half_ems(text: str) -> int:
    return sum(2 if ord(ch) >= 0x2E80 else 1 for ch in text)


def nav_length(items: list[NavItem], brand: str = "") -> int:
    """How full the brand name and the menu make the desktop top bar (1180 px), so it can stay
    on one line: 0 fits, 1 leaves the role out, 2 also shows the logo without the brand name.
    Labels are counted in half-ems (a Chinese character is two), plus padding per entry. The
    brand counts too: the English one is 14 half-ems longer than 数字城管平台."""
    width = _half_ems(brand) + sum(_half_ems(item.label) + 2 for item in items)
    return 2 if width > 96 else 1 if width > 82 else 0


def page_context(request: Request, t: Translator) -> dict[str, Any]:
    actor: Actor | None = getattr(request.state, "actor", None)
    web = get_web_settings()
    nav = nav_items(request, actor, t)
    return {
        "request": request,
        "lang": t.lang,
        "html_lang": HTML_LANG[t.lang],
        "langs": [(code, LANG_NAMES[code], lang_url(request, code)) for code in LANGS],
        "t": t,
        "label": Labels(t),
        "actor": actor,
        "csrf_token": csrf_token(request),
        "nav": nav,
        "nav_length": nav_length(nav, t.gettext("City Loop urban management")),
        "static": static_url,
        "has_route": lambda name: has_route(request, name),
        "url": request.app.url_path_for,
        "fmt_time": fmt_time,
        "fmt_date": fmt_date,
        "fmt_due": lambda deadline: fmt_due(t, deadline),
        "web": web,
        "version": __version__,
    }


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    t = Translator(negotiate(request))
    html = environment(t.lang).get_template(template).render(**page_context(request, t), **context)
    return HTMLResponse(html, status_code=status_code)


def translator(request: Request) -> Translator:
    return Translator(negotiate(request))


TranslatorDep = Annotated[Translator, Depends(translator)]


def redirect(url: str) -> RedirectResponse:
    """After a POST: 303 so the browser follows with a GET."""
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str = "/staff") -> str:
    """A local path to go to after login; anything else (another host) falls back."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


# --- who is logged in ----------------------------------------------------------------------


def optional_actor(request: Request, database: DatabaseDep) -> Actor | None:
    """The staff user of the session cookie, or None (public pages work either way)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        actor = org.actor_for_token(database.uow(), token)
    except Unauthenticated:
        request.state.clear_session = True
        return None
    request.state.actor = actor
    return actor


OptionalActor = Annotated[Actor | None, Depends(optional_actor)]


def require_actor(actor: OptionalActor) -> Actor:
    if actor is None:
        raise LoginRequired("log in first")
    return actor


StaffActor = Annotated[Actor, Depends(require_actor)]


def require_roles(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise PermissionDenied(f"role '{actor.role.value}' may not open this page")


# --- errors as pages -----------------------------------------------------------------------


def _error_page(request: Request, exc: Exception) -> Response:
    t = translator(request)
    if isinstance(exc, LoginRequired | Unauthenticated):
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        else:
            target = "/staff"
        response: Response
        if request.headers.get("HX-Request"):
            # A refresh in the background (htmx) after the session ended: send the whole
            # page to the login, back to the page afterwards, instead of swapping the login
            # form into a table.
            current = urlsplit(request.headers.get("HX-Current-URL", ""))
            page = safe_next(current.path + (f"?{current.query}" if current.query else ""))
            response = Response(
                status_code=204, headers={"HX-Redirect": f"/login?{urlencode({'next': page})}"}
            )
        else:
            response = redirect(f"/login?{urlencode({'next': target})}")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        fields = ", ".join(str(e.get("loc", ("?",))[-1]) for e in errors[:5] if isinstance(e, dict))
        return render(
            request,
            "error.html",
            status_code=422,
            title=t.gettext("Some fields are missing or invalid"),
            message=t.gettext("Please go back, check the form and send it again."),
            detail=fields,
        )
    assert isinstance(exc, CityloopError)
    from cityloop.web.security import CsrfRefused

    if isinstance(exc, CsrfRefused):
        title = t.gettext("This form has expired")
        message = t.gettext(
            "For your security the form could not be accepted. Go back, reload the page "
            "and send it again."
        )
    elif isinstance(exc, RateLimited):
        response = render(
            request,
            "error.html",
            status_code=429,
            title=t.gettext("Too many submissions"),
            message=t.gettext(
                "You have sent several reports in a short time. Please wait %(minutes)d "
                "minutes and try again, or call the 12345 hotline."
            )
            % {"minutes": max(1, (exc.retry_after + 59) // 60)},
            detail="",
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    elif exc.status_code == 404:
        title = t.gettext("Not found")
        message = t.gettext("The page or record you asked for does not exist.")
    elif exc.status_code == 403:
        title = t.gettext("Not allowed")
        message = t.gettext("Your role or department may not see or do this.")
    else:
        title = t.gettext("The request could not be completed")
        message = t.gettext("Please check what you entered and try again.")
    return render(
        request,
        "error.html",
        status_code=exc.status_code,
        title=title,
        message=message,
        detail=exc.message,
    )


def finish(request: Request, response: Response) -> Response:
    """Cookies every page response carries: a new CSRF value, the chosen language."""
    set_csrf_cookie(request, response)
    lang = requested_lang(request)
    if lang is not None:
        set_cookie(response, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    if getattr(request.state, "clear_session", False):
        response.delete_cookie(SESSION_COOKIE, path="/")
    if "cache-control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


class PageRoute(APIRoute):
    """An APIRoute whose errors are pages and whose responses carry the page cookies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except (CityloopError, RequestValidationError) as exc:
                response = _error_page(request, exc)
            return finish(request, response)

        return handler
