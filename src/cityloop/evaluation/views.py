"""HTTP routes of the evaluation: /api/v1/evaluation/... (JSON) and /reports/monthly/{month}.

Thin: the service decides. KPIs and reports are for the centre's staff and leaders (citywide
roles); settings are admin-only (the cityconfig store enforces it on write); audit draws are for
leaders and admins, outcomes for the assigned auditor.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from cityloop.evaluation import audit, report, service
from cityloop.evaluation.config import EvaluationSettings
from cityloop.evaluation.domain import parse_month_label
from cityloop.evaluation.schemas import (
    AuditDrawPublic,
    AuditDrawRequest,
    AuditItemPublic,
    AuditOutcomeRequest,
    MonthlyKpis,
    MonthlyReport,
)
from cityloop.web.deps import CurrentActor, UowDep

router = APIRouter(tags=["evaluation"])

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@router.get("/api/v1/evaluation/settings", response_model=EvaluationSettings)
def get_settings(uow: UowDep, actor: CurrentActor) -> EvaluationSettings:
    """The evaluation settings in force (defaults merged with the city's overrides)."""
    service.require_settings_reader(actor)
    return service.get_settings(uow)


@router.put("/api/v1/evaluation/settings", response_model=EvaluationSettings)
def put_settings(
    uow: UowDep, actor: CurrentActor, data: Annotated[dict[str, Any], Body()]
) -> EvaluationSettings:
    """Replace the settings (admin). Omitted fields take DOMAIN.md's defaults."""
    return service.put_settings(uow, actor, data)


@router.get("/api/v1/evaluation/settings/export", response_class=PlainTextResponse)
def export_settings(
    uow: UowDep,
    actor: CurrentActor,
    fmt: Annotated[str, Query(alias="format", pattern="^(toml|json)$")] = "toml",
) -> str:
    """The settings as a TOML or JSON file, complete, for version control or another city."""
    service.require_settings_reader(actor)
    return service.export_settings(uow, fmt)


@router.get("/api/v1/evaluation/months/{month}/kpis", response_model=MonthlyKpis)
def month_kpis(
    uow: UowDep, actor: CurrentActor, month: str, comparisons: bool = True
) -> MonthlyKpis:
    """Every KPI of the month for every subject, with composites, grades and rankings."""
    service.require_reader(actor)
    return service.monthly_kpis(uow, parse_month_label(month), comparisons=comparisons)


@router.get("/api/v1/evaluation/months/{month}/report", response_model=MonthlyReport)
def month_report(uow: UowDep, actor: CurrentActor, month: str) -> MonthlyReport:
    """The monthly report's content as JSON (the same numbers as the .docx and the page)."""
    service.require_reader(actor)
    return service.monthly_report(uow, parse_month_label(month))


@router.get("/api/v1/evaluation/months/{month}/report.docx")
def month_report_docx(uow: UowDep, actor: CurrentActor, month: str) -> Response:
    service.require_reader(actor)
    data = service.monthly_report(uow, parse_month_label(month))
    settings = service.get_settings(uow)
    body = report.render(data, "docx", settings.report.cjk_font)
    name = f"monthly-{data.month}.docx"
    return Response(
        body,
        media_type=DOCX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/api/v1/evaluation/audits", response_model=AuditDrawPublic, status_code=201)
def draw_audits(uow: UowDep, actor: CurrentActor, req: AuditDrawRequest) -> AuditDrawPublic:
    """双随机: draw the month's audit sample (leader or admin); give a seed to reproduce one."""
    return audit.draw(uow, actor, req.month, seed=req.seed)


@router.get("/api/v1/evaluation/audits", response_model=list[AuditDrawPublic])
def list_audits(uow: UowDep, actor: CurrentActor, month: str) -> list[AuditDrawPublic]:
    return audit.list_draws(uow, actor, month)


@router.get("/api/v1/evaluation/audits/mine", response_model=list[AuditItemPublic])
def my_audits(uow: UowDep, actor: CurrentActor) -> list[AuditItemPublic]:
    """The audits assigned to me that still need an outcome."""
    return audit.my_items(uow, actor)


@router.post("/api/v1/evaluation/audits/items/{item_id}/outcome", response_model=AuditItemPublic)
def audit_outcome(
    uow: UowDep, actor: CurrentActor, item_id: int, req: AuditOutcomeRequest
) -> AuditItemPublic:
    """Pass or fail (with a reason) one drawn case; only its assigned auditor, once."""
    return audit.decide(uow, actor, item_id, req.outcome, req.reason)


def report_csp(html: str) -> str:
    """The report page's own Content-Security-Policy.

    The page is self-contained: one inline ``<style>`` and charts as ``data:`` images. The
    site-wide policy (``style-src 'self'``) would block that style, so this page allows exactly
    its own style blocks by their SHA-256, images from ``data:``, and nothing else (no script).
    """
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode("utf-8")).digest()).decode() + "'"
        for m in re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    ]
    return "; ".join(
        [
            "default-src 'none'",
            "style-src " + (" ".join(hashes) or "'none'"),
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@router.get("/reports/monthly/{month}", response_class=HTMLResponse)
def monthly_page(uow: UowDep, actor: CurrentActor, month: str) -> HTMLResponse:
    """The monthly report as a page (the web UI's session cookie authenticates)."""
    service.require_reader(actor)
    data = service.monthly_report(uow, parse_month_label(month))
    settings = service.get_settings(uow)
    html = report.render(data, "html", settings.report.cjk_font).decode("utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": report_csp(html)})
