"""Response shapes of the evaluation API, the report and the CLI (one source for all three).

Every rate is given twice: ``rates`` as a number (0-1, or null when nothing was due) for
machines, and ``display`` as the string people read ("98.60%", or "—"), so the API, the HTML page
and the Word report cannot disagree on rounding or on how "nothing due" looks.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from cityloop.evaluation.config import Subject


class SubjectKpis(BaseModel):
    """One graded subject: a department, a territory or a user, or the city (key 0)."""

    subject: Subject | None  # None for the city
    key: int | None
    code: str | None = None
    name: str
    counts: dict[str, float] = Field(default_factory=dict)
    rates: dict[str, float | None] = Field(default_factory=dict)
    display: dict[str, str] = Field(default_factory=dict)
    volume_score: float | None = None
    composite_raw: float | None = None  # before the audit deduction
    audit_deduction: float = 0.0
    composite: float | None = None
    composite_display: str = "—"
    grade: str = "—"
    rank: int | None = None
    composite_prev_month: float | None = None
    composite_last_year: float | None = None
    delta_prev_month: float | None = None
    delta_last_year: float | None = None
    delta_prev_month_display: str = "—"
    delta_last_year_display: str = "—"
    rank_prev_month: int | None = None
    rank_last_year: int | None = None


class Headline(BaseModel):
    """The six headline numbers of the monthly report (the seeds quote exactly these)."""

    filed: int
    disposal_rate: float | None
    on_time_disposal_rate: float | None
    closing_rate: float | None
    rework_rate: float | None
    satisfaction_rate: float | None
    display: dict[str, str]


class HotlineRates(BaseModel):
    """The 12345 three rates of one subject over its assessment month."""

    key: int | None
    name: str
    owed: int
    contacted: int
    solved: int
    rated: int
    satisfied: int
    basically_satisfied: int
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    composite: float | None
    display: dict[str, str]


class HotlineSection(BaseModel):
    month: str
    period_start: dt.datetime
    period_end: dt.datetime
    weights: tuple[float, float, float]
    city: HotlineRates
    departments: list[HotlineRates]


class MonthlyKpis(BaseModel):
    month: str
    period_start: dt.datetime  # local time, inclusive
    period_end: dt.datetime  # local time, exclusive
    headline: Headline
    city: SubjectKpis
    departments: list[SubjectKpis]
    subdistricts: list[SubjectKpis]
    communities: list[SubjectKpis]
    inspectors: list[SubjectKpis]
    intake_operators: list[SubjectKpis]
    shift_supervisors: list[SubjectKpis]
    dispatchers: list[SubjectKpis]
    hotline: HotlineSection

    def subjects(self, subject: Subject) -> list[SubjectKpis]:
        return {
            Subject.DEPARTMENT: self.departments,
            Subject.SUBDISTRICT: self.subdistricts,
            Subject.COMMUNITY: self.communities,
            Subject.INSPECTOR: self.inspectors,
            Subject.INTAKE_OPERATOR: self.intake_operators,
            Subject.SHIFT_SUPERVISOR: self.shift_supervisors,
            Subject.DISPATCHER: self.dispatchers,
        }[subject]


class AuditItemPublic(BaseModel):
    id: int
    draw_id: int
    case_id: int
    case_code: str
    department_id: int
    department_name: str
    auditor_user_id: int | None
    auditor_name: str | None
    outcome: str | None
    reason: str | None
    decided_at: dt.datetime | None
    # Where to look, for the auditor's own items only (``audit.my_items``): an inspector drawn
    # as auditor cannot open a case outside their scope, yet checks it on site.
    address: str | None = None
    cell_code: str | None = None
    description: str | None = None


class AuditDrawPublic(BaseModel):
    id: int
    month: str
    seed: int
    drawn_at: dt.datetime
    drawn_by_user_id: int | None
    drawn_by_name: str | None = None
    cases_per_department: int
    items: list[AuditItemPublic]


class AuditDepartmentSummary(BaseModel):
    department_id: int
    department_name: str
    drawn: int
    passed: int
    failed: int
    pending: int
    pass_rate: float | None
    pass_rate_display: str


class AuditDrawRequest(BaseModel):
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class AuditOutcomeRequest(BaseModel):
    outcome: str = Field(pattern="^(pass|fail)$")
    reason: str | None = Field(default=None, max_length=2000)


class ClassCount(BaseModel):
    minor_id: int | None
    code: str | None
    name: str
    count: int


class CellCount(BaseModel):
    cell_code: str
    count: int


class TerritoryCount(BaseModel):
    department_id: int
    name: str
    count: int


class RepeatProblem(BaseModel):
    cell_code: str
    minor_code: str | None
    minor_name: str
    count: int
    case_codes: list[str]


class OverdueCase(BaseModel):
    case_id: int
    code: str
    department_name: str
    deadline: dt.datetime  # local time
    disposed_at: dt.datetime | None  # local time; None: not disposed by the period's end
    overdue_hours: float  # by the disposal, or by the period's end when not disposed


class MonthlyReport(BaseModel):
    """Everything the monthly report (月考评) shows, in its order."""

    title: str
    month: str
    repeat_threshold: int
    kpis: MonthlyKpis
    top_classes: list[ClassCount]
    hotspot_cells: list[CellCount]
    hotspot_subdistricts: list[TerritoryCount]
    repeats: list[RepeatProblem]
    repeat_total: int
    overdue: list[OverdueCase]
    overdue_total: int
    audits: list[AuditDepartmentSummary]
    audit_failures: list[AuditItemPublic]
