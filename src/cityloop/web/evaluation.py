"""Evaluation pages (综合评价): a month's results, the 双随机 audits, the settings.

- ``/staff/evaluation?month=YYYY-MM``: the headline numbers, the department and subdistrict
  rankings with grades and 环比/同比, the 12345 three rates, and links to the full report (HTML
  and .docx). For the centre's staff and leaders (the citywide roles), like the API.
- ``/staff/evaluation/audits``: a month's 双随机 draws with their seed, time, items, auditors
  and outcomes; leaders and admins draw. ``/staff/evaluation/audits/mine``: the audits assigned
  to the user (any role may be drawn as an auditor), each decided once: pass, or fail with a
  reason.
- ``/staff/admin/evaluation``: the settings as a form and as a TOML document, with the TOML
  download. Admins change them; leaders read them.

Thin: the numbers come from ``evaluation.service`` (``monthly_kpis``), the audits from
``evaluation.audit`` and the settings go through ``service.put_settings`` /
``import_settings_text``, which check the role, validate (naming the field) and write the audit
row. A refused or invalid request shows the page again with the message; nothing is saved.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from cityloop.cases.domain import Channel
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import CityloopError, InvalidInput
from cityloop.evaluation import audit, domain, service
from cityloop.evaluation.config import SolvedRule, Subject
from cityloop.evaluation.domain import INDICATORS, VOLUME_SCORE
from cityloop.evaluation.schemas import AuditDrawRequest, AuditOutcomeRequest
from cityloop.org.domain import Actor, Role
from cityloop.org.service import require_role
from cityloop.web.deps import UowDep
from cityloop.web.i18n import N_, Translator
from cityloop.web.labels import SUBJECT as SUBJECT_LABELS
from cityloop.web.labels import Labels
from cityloop.web.render import PageRoute, StaffActor, TranslatorDep, redirect, render
from cityloop.web.security import CsrfChecked

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# The six numbers the seeds' monthly reports open with (service.Headline), in their order.
HEADLINE = (
    "filed",
    "disposal_rate",
    "on_time_disposal_rate",
    "closing_rate",
    "rework_rate",
    "satisfaction_rate",
)
# The rates shown in the ranking tables, after the composite and the grade.
DEPARTMENT_RATES = (
    "on_time_disposal_rate",
    "closing_rate",
    "rework_rate",
    "satisfaction_rate",
    "audit_pass_rate",
)
TERRITORY_RATES = ("on_time_disposal_rate", "closing_rate", "rework_rate", "satisfaction_rate")

MONTH_RE = re.compile(r"^\d{4}-\d{2}$")


# --- shared ----------------------------------------------------------------------------------


def _tabs(actor: Actor) -> list[tuple[str, str]]:
    """The evaluation section's tabs this user may open: (route name, English label)."""
    tabs: list[tuple[str, str]] = []
    if actor.is_citywide:
        tabs += [("evaluation", N_("Evaluation results")), ("evaluation_audits", N_("Audits"))]
    tabs.append(("evaluation_my_audits", N_("My audits")))
    if actor.role in (Role.ADMIN, Role.LEADER):
        tabs.append(("admin_evaluation", N_("Settings")))
    return tabs


def _month(value: str, default: str, t: Translator) -> tuple[str, str | None]:
    """The month asked for, or the default with a message when it cannot be read."""
    if not value.strip():
        return default, None
    try:
        domain.parse_month(value)
    except InvalidInput:
        return default, t.gettext("Months are written YYYY-MM, for example 2026-10.")
    try:
        return domain.parse_month_label(value), None
    except InvalidInput:
        first, last = domain.MONTH_YEARS
        return default, t.gettext("The year must be %(first)d to %(last)d.") % {
            "first": first,
            "last": last,
        }


def _days(start: dt.datetime, end: dt.datetime) -> str:
    """A half-open local period as the days it covers: "2026-10-01 – 2026-10-31"."""
    return f"{start:%Y-%m-%d} – {end - dt.timedelta(days=1):%Y-%m-%d}"


def _default_month(uow: UnitOfWork) -> str:
    return domain.last_complete_month(utcnow(), service.get_settings(uow).timezone)


# --- the month's results ---------------------------------------------------------------------


@router.get("/staff/evaluation", name="evaluation")
def evaluation_page(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, month: str = ""
) -> Response:
    service.require_reader(actor)
    settings = service.get_settings(uow)
    now = utcnow()
    latest = domain.last_complete_month(now, settings.timezone)
    label, problem = _month(month, latest, t)
    kpis = service.monthly_kpis(uow, label, settings=settings)
    current = domain.month_label(*domain.shift_month(*domain.parse_month(latest), 1))
    following = domain.month_label(*domain.shift_month(*domain.parse_month(label), 1))
    return render(
        request,
        "evaluation.html",
        status_code=422 if problem else 200,
        k=kpis,
        month=label,
        problem=problem,
        ended=kpis.period_end <= now,
        period=_days(kpis.period_start, kpis.period_end),
        hotline_period=_days(kpis.hotline.period_start, kpis.hotline.period_end),
        previous=domain.previous_month(label),
        following=following if following <= current else None,
        max_month=current,
        headline=HEADLINE,
        department_rates=DEPARTMENT_RATES,
        territory_rates=TERRITORY_RATES,
        tabs=_tabs(actor),
        tab="evaluation",
    )


# --- 双随机 audits ---------------------------------------------------------------------------


def audits_view(
    request: Request,
    uow: UnitOfWork,
    actor: Actor,
    t: Translator,
    month: str,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    draws = audit.list_draws(uow, actor, month)
    return render(
        request,
        "evaluation_audits.html",
        status_code=status_code,
        month=month,
        draws=list(reversed(draws)),  # the latest draw first
        summary=audit.summary([i for d in draws for i in d.items]),
        may_draw=actor.role in audit.DRAW_ROLES,
        tabs=_tabs(actor),
        tab="evaluation_audits",
        form=extra.pop("form", {"month": month, "seed": ""}),
        **extra,
    )


@router.get("/staff/evaluation/audits", name="evaluation_audits")
def audits_page(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, month: str = ""
) -> Response:
    service.require_reader(actor)
    label, problem = _month(month, _default_month(uow), t)
    drawn = request.query_params.get("drawn", "")
    notice = (
        t.gettext("Drawn: draw No. %(id)s is recorded below with its seed.") % {"id": drawn}
        if drawn.isdigit()
        else None
    )
    return audits_view(
        request,
        uow,
        actor,
        t,
        label,
        status_code=422 if problem else 200,
        problem=problem,
        notice=notice,
    )


def _seed(value: str, t: Translator) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidInput(
            t.gettext("The seed is a whole number of at most 19 digits, or empty."), field="seed"
        )
    return int(value.strip())


@router.post("/staff/evaluation/audits", name="evaluation_audit_draw")
def audits_draw(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    month: Annotated[str, Form()] = "",
    seed: Annotated[str, Form()] = "",
) -> Response:
    service.require_reader(actor)
    form = {"month": month, "seed": seed}
    shown, unreadable = _month(month, _default_month(uow), t)
    try:
        req = AuditDrawRequest(month=month.strip(), seed=_seed(seed, t))
        result = audit.draw(uow, actor, req.month, seed=req.seed)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][-1])
        message = {
            "month": t.gettext("Months are written YYYY-MM, for example 2026-10."),
            "seed": t.gettext("The seed is a whole number of at most 19 digits, or empty."),
        }.get(field, t.gettext("Some fields are missing or invalid"))
        return audits_view(
            request, uow, actor, t, shown, status_code=422, problem=message, form=form
        )
    except CityloopError as exc:
        return audits_view(
            request,
            uow,
            actor,
            t,
            shown,
            status_code=exc.status_code,
            problem=(unreadable if exc.field == "month" else None) or _draw_problem(t, exc),
            problem_detail=None if exc.status_code == 403 or exc.field else exc.message,
            form=form,
        )
    query = urlencode({"month": result.month, "drawn": result.id})
    return redirect(f"{request.app.url_path_for('evaluation_audits')}?{query}")


def _draw_problem(t: Translator, exc: CityloopError) -> str:
    if exc.status_code == 403:
        return t.gettext("Only leaders and administrators may draw the audits.")
    if exc.field == "month":
        return t.gettext("Audits are drawn after the month has ended.")
    if exc.field == "seed":
        return t.gettext("The seed is a whole number of at most 19 digits, or empty.")
    return t.gettext("The draw could not be made.")


def my_audits_view(
    request: Request, uow: UnitOfWork, actor: Actor, *, status_code: int = 200, **extra: Any
) -> Response:
    return render(
        request,
        "evaluation_mine.html",
        status_code=status_code,
        items=audit.my_items(uow, actor),
        may_open_cases=actor.is_citywide,
        tabs=_tabs(actor),
        tab="evaluation_my_audits",
        **extra,
    )


@router.get("/staff/evaluation/audits/mine", name="evaluation_my_audits")
def my_audits_page(request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep) -> Response:
    params = request.query_params
    notice = None
    if params.get("decided") and params.get("outcome") in ("pass", "fail"):
        outcome = Labels(t)("audit_outcome", params["outcome"])
        notice = t.gettext("Recorded: case %(code)s, %(outcome)s.") % {
            "code": params["decided"][:32],
            "outcome": outcome,
        }
    return my_audits_view(request, uow, actor, notice=notice)


@router.post("/staff/evaluation/audits/items/{item_id:int}/outcome", name="evaluation_audit_decide")
def my_audits_decide(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    item_id: int,
    outcome: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        req = AuditOutcomeRequest(outcome=outcome, reason=reason)  # the API's limits
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][-1])
        message = (
            t.gettext("The reason is at most 2000 characters.")
            if field == "reason"
            else t.gettext("Choose passed or failed.")
        )
        return my_audits_view(
            request,
            uow,
            actor,
            status_code=422,
            problem=message,
            failed_item=item_id,
            form={"outcome": outcome, "reason": reason},
        )
    try:
        result = audit.decide(uow, actor, item_id, req.outcome, req.reason)
    except CityloopError as exc:
        messages = {
            "outcome": t.gettext("Choose passed or failed."),
            "reason": t.gettext("A failed audit needs a reason: say what is wrong on site."),
            "auditor": t.gettext("This audit is not yours to decide."),
            "case": t.gettext("You acted on this case since the draw, so you may not audit it."),
        }
        detail = None
        if exc.status_code == 409:
            message = t.gettext("This audit was already decided; an outcome is recorded once.")
        elif exc.status_code == 404:
            message = t.gettext("There is no such audit.")
        elif exc.field in messages:
            message = messages[exc.field or ""]
        else:
            message, detail = t.gettext("The outcome was not recorded."), exc.message
        return my_audits_view(
            request,
            uow,
            actor,
            status_code=exc.status_code,
            problem=message,
            problem_detail=detail,
            failed_item=item_id,
            form={"outcome": outcome, "reason": reason},
        )
    query = urlencode({"decided": result.case_code, "outcome": result.outcome or ""})
    return redirect(f"{request.app.url_path_for('evaluation_my_audits')}?{query}")


# --- settings --------------------------------------------------------------------------------

# Scalar fields of the form, by their dotted path in the settings document. Booleans are
# checkboxes (absent = false); the lists are groups of checkboxes; the rows are below.
SCALARS = (
    "timezone",
    "on_time.grace_minutes",
    "lowest_grade",
    "hotline.month_start_day",
    "hotline.response_weight",
    "hotline.resolution_weight",
    "hotline.satisfaction_weight",
    "hotline.basically_satisfied_factor",
    "hotline.solved_rule",
    "audit.cases_per_department",
    "audit.deduction_per_failure",
    "audit.max_deduction",
    "report.title",
    "report.top_classes",
    "report.hotspot_cells",
    "report.repeat_threshold",
    "report.repeat_rows",
    "report.repeat_codes",
    "report.overdue_rows",
    "report.cjk_font",
)
BOOLEANS = (
    "on_time.extended_counts_as_on_time",
    "suspended_leave_denominator",
    "pending_reports_leave_denominator",
)
LISTS = ("hotline.channels", "audit.auditor_roles")
COMPOSITE_ROW = re.compile(r"^composites\.(\w+)\.(\d+)\.(indicator|weight|invert)$")
BAND_ROW = re.compile(r"^grade_bands\.(\d+)\.(grade|min_score)$")
BLANK_ROWS = 2  # empty rows offered under each table, to add a term or a band

# What each field is called on the page (and in an error naming it).
FIELD_LABELS: Mapping[str, str] = {
    "timezone": N_("Time zone"),
    "on_time": N_("On-time rule"),
    "on_time.grace_minutes": N_("Grace after the deadline (minutes)"),
    "on_time.extended_counts_as_on_time": N_("A disposal with an approved extension is on time"),
    "suspended_leave_denominator": N_("Suspended disposals leave the denominators"),
    "pending_reports_leave_denominator": N_("Undecided reports leave the valid report rate"),
    "composites": N_("Composite index formulas"),
    "grade_bands": N_("Grade bands"),
    "lowest_grade": N_("Grade below every band"),
    "hotline": N_("12345 three rates"),
    "hotline.channels": N_("Channels counted"),
    "hotline.month_start_day": N_("Assessment month starts on day"),
    "hotline.response_weight": N_("Weight of the response rate"),
    "hotline.resolution_weight": N_("Weight of the resolution rate"),
    "hotline.satisfaction_weight": N_("Weight of the satisfaction rate"),
    "hotline.basically_satisfied_factor": N_("Factor of basically satisfied"),
    "hotline.solved_rule": N_("Solved means"),
    "audit": N_("Double-random audits"),
    "audit.cases_per_department": N_("Cases per department"),
    "audit.auditor_roles": N_("Who may be drawn as auditor"),
    "audit.deduction_per_failure": N_("Points deducted per failed audit"),
    "audit.max_deduction": N_("Most points deducted in a month"),
    "report": N_("Monthly report"),
    "report.title": N_("Report title"),
    "report.top_classes": N_("Top classes listed"),
    "report.hotspot_cells": N_("Hotspot cells listed"),
    "report.repeat_threshold": N_("Repeat problem: cases in a cell and class"),
    "report.repeat_rows": N_("Repeat problems listed"),
    "report.repeat_codes": N_("Case codes per repeat problem"),
    "report.overdue_rows": N_("Overdue cases listed"),
    "report.cjk_font": N_("Chinese font file for the charts"),
    "toml": N_("Settings as TOML"),
}


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return ""
        node = node[key]
    return node


def settings_from_form(form: FormData, current: dict[str, Any]) -> dict[str, Any]:
    """The settings document the form describes, over the stored one (so a field the form does
    not show is kept). Values stay as typed: the settings model converts and names bad ones.
    A formula's row without an indicator ("— remove —" or a blank row) and a band's row whose
    boxes are empty are dropped, which is how a term or a band is removed."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in current.items()}
    for path in SCALARS:
        value = form.get(path)
        if isinstance(value, str):
            _set(data, path, value.strip())
    for path in BOOLEANS:
        _set(data, path, form.get(path) == "on")
    for path in LISTS:
        _set(data, path, [str(v) for v in form.getlist(path)])
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    bands: dict[int, dict[str, str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if match := COMPOSITE_ROW.match(key):
            subject, index, part = match.group(1), int(match.group(2)), match.group(3)
            row = rows.setdefault(subject, {}).setdefault(index, {"invert": False})
            row[part] = value == "on" if part == "invert" else value.strip()
        elif match := BAND_ROW.match(key):
            bands.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    if rows:
        data["composites"] = {
            subject: [
                {**row, "invert": bool(row.get("invert"))}
                for _, row in sorted(by_index.items())
                if row.get("indicator")
            ]
            for subject, by_index in rows.items()
        }
    if bands:
        data["grade_bands"] = [
            band for _, band in sorted(bands.items()) if band.get("grade") or band.get("min_score")
        ]
    return data


def _field_label(t: Translator, field: str | None) -> str:
    """The page's name for a field path ("audit.cases_per_department" or "composites")."""
    if not field:
        return ""
    path = field.removeprefix("evaluation.")
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        name = FIELD_LABELS.get(".".join(parts[:end]))
        if name:
            return t.gettext(name)
    return path


def _indicator_choices() -> list[str]:
    return [k for k, spec in INDICATORS.items() if spec.is_rate] + [VOLUME_SCORE]


def settings_view(
    request: Request,
    uow: UnitOfWork,
    actor: Actor,
    t: Translator,
    *,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
    toml_text: str | None = None,
    **extra: Any,
) -> Response:
    stored = service.get_settings(uow)
    if values is None:
        values = stored.model_dump(mode="json")
    error_field = str(extra.get("error_field") or "").removeprefix("evaluation.")
    return render(
        request,
        "admin/evaluation.html",
        status_code=status_code,
        value=lambda path: _get(values, path),
        toml_text=toml_text if toml_text is not None else service.export_settings(uow, "toml"),
        may_edit=actor.role is Role.ADMIN,
        subjects=list(Subject),
        indicators=_indicator_choices(),
        channels=list(Channel),
        roles=list(Role),
        solved_rules=list(SolvedRule),
        blank_rows=BLANK_ROWS if actor.role is Role.ADMIN else 0,
        field_label=lambda path: t.gettext(FIELD_LABELS[path]),
        error_field=error_field,
        tabs=_tabs(actor),
        tab="admin_evaluation",
        saved=request.query_params.get("saved", ""),
        **{k: v for k, v in extra.items() if k != "error_field"},
    )


SUBJECT_IN_MESSAGE = re.compile(r"composites: (?:Value error, )?(\w+): ")


def _error_field(exc: CityloopError) -> str:
    """The field an error names; a formula's error names its subject ("composites.dispatcher"),
    which the settings model can only say in the message."""
    field = (exc.field or "").removeprefix("evaluation.")
    if field == "composites":
        match = SUBJECT_IN_MESSAGE.search(exc.message)
        if match and match.group(1) in {s.value for s in Subject}:
            return f"composites.{match.group(1)}"
    return field


def _settings_problem(t: Translator, exc: CityloopError, field: str) -> str:
    if exc.field == "file":
        return t.gettext("Not saved: the TOML text cannot be read. Nothing was changed.")
    label = _field_label(t, field)
    parts = field.split(".")
    if len(parts) >= 2 and parts[0] == "composites" and parts[1] in {s.value for s in Subject}:
        label = f"{label} · {t.pgettext(*SUBJECT_LABELS[Subject(parts[1])])}"
    if label:
        return t.gettext("Not saved: check “%(field)s”. Nothing was changed.") % {"field": label}
    return t.gettext("Not saved. Nothing was changed.")


@router.get("/staff/admin/evaluation", name="admin_evaluation")
def settings_page(request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep) -> Response:
    service.require_settings_reader(actor)
    return settings_view(request, uow, actor, t)


@router.post("/staff/admin/evaluation", name="admin_evaluation_save")
async def settings_save(
    request: Request, uow: UowDep, actor: StaffActor, t: TranslatorDep, _csrf: CsrfChecked
) -> Response:
    require_role(actor, Role.ADMIN)
    form = await request.form()
    data = settings_from_form(form, service.get_settings(uow).model_dump(mode="json"))
    try:
        service.put_settings(uow, actor, data)
    except CityloopError as exc:
        if exc.status_code == 403:
            raise
        return settings_view(
            request,
            uow,
            actor,
            t,
            status_code=exc.status_code,
            values=data,
            problem=_settings_problem(t, exc, _error_field(exc)),
            problem_detail=exc.message,
            error_field=_error_field(exc),
        )
    return redirect(f"{request.app.url_path_for('admin_evaluation')}?saved=form")


@router.post("/staff/admin/evaluation/toml", name="admin_evaluation_toml")
def settings_toml(
    request: Request,
    uow: UowDep,
    actor: StaffActor,
    t: TranslatorDep,
    _csrf: CsrfChecked,
    toml: Annotated[str, Form()] = "",
) -> Response:
    require_role(actor, Role.ADMIN)
    try:
        service.import_settings_text(uow, actor, toml, "toml")
    except CityloopError as exc:
        if exc.status_code == 403:
            raise
        return settings_view(
            request,
            uow,
            actor,
            t,
            status_code=exc.status_code,
            toml_text=toml,
            problem=_settings_problem(t, exc, _error_field(exc)),
            problem_detail=exc.message,
            error_field="toml",
            advanced_open=True,
        )
    return redirect(f"{request.app.url_path_for('admin_evaluation')}?saved=toml")


@router.get("/staff/admin/evaluation/export.toml", name="admin_evaluation_export")
def settings_export(uow: UowDep, actor: StaffActor) -> Response:
    service.require_settings_reader(actor)
    return Response(
        service.export_settings(uow, "toml"),
        media_type="application/toml; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="evaluation.toml"'},
    )
