"""Evaluation use cases: settings, a month's KPIs with composites and rankings, the report data.

The engine counts; ``domain`` turns counts into rates, composites and grades; this module puts
names on the numbers, ranks the subjects, compares with the previous month and the same month
last year, and shapes the result for the API, the CLI and the report (``schemas``).

``compute_monthly`` takes an engine factory and the names instead of a session, so the same code
serves the live database (``monthly_kpis`` / ``monthly_report``) and a columnar export or the
10-million-case benchmark (``bench/evaluation.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.catalog.models import MinorClass
from cityloop.cityconfig.service import load as load_setting
from cityloop.cityconfig.service import put as put_setting
from cityloop.db.uow import UnitOfWork
from cityloop.evaluation import audit, domain
from cityloop.evaluation.config import (
    SETTINGS_KEY,
    EvaluationSettings,
    Subject,
    dump_settings,
    read_settings_file,
    read_settings_text,
)
from cityloop.evaluation.domain import (
    INDICATORS,
    VOLUME_SCORE,
    Period,
    Term,
    fmt_delta,
    fmt_pct,
    fmt_score,
    ratio,
)
from cityloop.evaluation.engine import Engine, KpiCounts, ReportLists
from cityloop.evaluation.schemas import (
    AuditItemPublic,
    CellCount,
    ClassCount,
    Headline,
    HotlineRates,
    HotlineSection,
    MonthlyKpis,
    MonthlyReport,
    OverdueCase,
    RepeatProblem,
    SubjectKpis,
    TerritoryCount,
)
from cityloop.org.domain import Actor, DepartmentKind, Role
from cityloop.org.models import Department, User
from cityloop.org.service import require_role

# Rates shown for each kind of subject (a composite may weigh others; they are added).
SUBJECT_RATES: dict[Subject | None, tuple[str, ...]] = {
    None: (
        "disposal_rate",
        "on_time_disposal_rate",
        "closing_rate",
        "on_time_closing_rate",
        "rework_rate",
        "satisfaction_rate",
    ),
    Subject.DEPARTMENT: (
        "disposal_rate",
        "on_time_disposal_rate",
        "closing_rate",
        "on_time_closing_rate",
        "rework_rate",
        "satisfaction_rate",
        "audit_pass_rate",
    ),
    Subject.SUBDISTRICT: (
        "disposal_rate",
        "on_time_disposal_rate",
        "closing_rate",
        "on_time_closing_rate",
        "rework_rate",
        "satisfaction_rate",
    ),
    Subject.COMMUNITY: (
        "disposal_rate",
        "on_time_disposal_rate",
        "closing_rate",
        "on_time_closing_rate",
        "rework_rate",
        "satisfaction_rate",
    ),
    Subject.INSPECTOR: (
        "valid_report_rate",
        "missed_report_rate",
        "on_time_verify_rate",
        "on_time_check_rate",
    ),
    Subject.INTAKE_OPERATOR: ("on_time_send_verify_rate", "on_time_send_check_rate"),
    Subject.SHIFT_SUPERVISOR: ("on_time_filing_rate", "accurate_filing_rate", "on_time_close_rate"),
    Subject.DISPATCHER: ("on_time_dispatch_rate", "accurate_dispatch_rate"),
}

# What "volume" means for the volume score of each subject [U].
VOLUME_BASIS: dict[Subject, tuple[str, ...]] = {
    Subject.DEPARTMENT: ("due_disposal",),
    Subject.SUBDISTRICT: ("filed",),
    Subject.COMMUNITY: ("filed",),
    Subject.INSPECTOR: ("reports",),
    Subject.INTAKE_OPERATOR: ("verify_sends", "check_sends", "callbacks"),
    Subject.SHIFT_SUPERVISOR: ("filings", "closings"),
    Subject.DISPATCHER: ("dispatches",),
}

ROLE_SUBJECT: dict[str, Subject] = {
    Role.INSPECTOR.value: Subject.INSPECTOR,
    Role.INTAKE_OPERATOR.value: Subject.INTAKE_OPERATOR,
    Role.SHIFT_SUPERVISOR.value: Subject.SHIFT_SUPERVISOR,
    Role.DISPATCHER.value: Subject.DISPATCHER,
}

KIND_SUBJECT: dict[str, Subject] = {
    DepartmentKind.HANDLING.value: Subject.DEPARTMENT,
    DepartmentKind.SUBDISTRICT.value: Subject.SUBDISTRICT,
    DepartmentKind.COMMUNITY.value: Subject.COMMUNITY,
}


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def settings_in(session: Session) -> EvaluationSettings:
    return load_setting(session, SETTINGS_KEY, EvaluationSettings)


def get_settings(uow: UnitOfWork) -> EvaluationSettings:
    with uow.read():
        return settings_in(uow.session)


def put_settings(uow: UnitOfWork, actor: Actor, data: dict[str, Any]) -> EvaluationSettings:
    """Replace the settings (admin only); omitted fields take DOMAIN.md's defaults."""
    return put_setting(uow, actor, SETTINGS_KEY, EvaluationSettings, data)


def import_settings(uow: UnitOfWork, actor: Actor, path: Path) -> EvaluationSettings:
    """Store the settings read from a ``.toml`` or ``.json`` file (admin only)."""
    return put_settings(uow, actor, read_settings_file(path))


def import_settings_text(
    uow: UnitOfWork, actor: Actor, text: str, fmt: str = "toml"
) -> EvaluationSettings:
    """Store the settings given as TOML or JSON text (admin only): the admin page's editor.

    The role is checked before the text is read, so a refused user learns nothing about it.
    """
    require_role(actor, Role.ADMIN)
    return put_settings(uow, actor, read_settings_text(text, fmt, source=f"the {fmt.upper()} text"))


def export_settings(uow: UnitOfWork, fmt: str = "toml") -> str:
    return dump_settings(get_settings(uow), fmt)


def require_reader(actor: Actor) -> None:
    """KPIs, reports and audit results are for the centre's staff and leaders (citywide)."""
    audit.require_reader(actor)


def require_settings_reader(actor: Actor) -> None:
    """The settings are read by admins (who change them) and leaders (who answer for them)."""
    require_role(actor, Role.ADMIN, Role.LEADER)


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    id: int
    code: str
    name: str
    kind: str
    active: bool = True


@dataclass(frozen=True)
class Person:
    id: int
    username: str
    name: str
    role: str
    active: bool = True


@dataclass
class Names:
    """Who and what the numbers are about; from the database or made by the benchmark."""

    units: dict[int, Unit] = field(default_factory=dict)
    people: dict[int, Person] = field(default_factory=dict)
    classes: dict[int, tuple[str, str]] = field(default_factory=dict)  # id → (code, name)

    def unit_name(self, key: int | None) -> str:
        if key is None:
            return "（未定位）"
        unit = self.units.get(key)
        return unit.name if unit else f"#{key}"

    def class_label(self, key: int | None) -> tuple[str | None, str]:
        if key is None:
            return None, "（未分类）"
        code, name = self.classes.get(key, (None, f"#{key}"))
        return code, name


def names_in(session: Session) -> Names:
    return Names(
        units={
            d.id: Unit(d.id, d.code, d.name, d.kind, d.active)
            for d in session.scalars(select(Department))
        },
        people={
            u.id: Person(u.id, u.username, u.display_name, u.role, u.active)
            for u in session.scalars(select(User))
        },
        classes={m.id: (m.code, m.name) for m in session.scalars(select(MinorClass))},
    )


# --------------------------------------------------------------------------------------------
# From counts to graded subjects
# --------------------------------------------------------------------------------------------


def _rates(counts: dict[str, float], keys: Iterable[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in keys:
        spec = INDICATORS.get(key)
        if spec is None or spec.numerator is None or spec.denominator is None:
            continue
        out[key] = ratio(counts.get(spec.numerator, 0.0), counts.get(spec.denominator, 0.0))
    return out


def _subject_keys(
    subject: Subject, kpis: KpiCounts, names: Names
) -> tuple[list[int], dict[int, dict[str, float]]]:
    """The subjects to grade (active ones, and any with numbers) and their counts."""
    if subject in (Subject.DEPARTMENT, Subject.SUBDISTRICT, Subject.COMMUNITY):
        source = kpis.by.get(subject.value, {})
        known = {u.id for u in names.units.values() if KIND_SUBJECT.get(u.kind) == subject}
        active = {i for i in known if names.units[i].active}
        keys = active | {k for k in source if k is not None and k in known}
        if not known:  # names unknown (a bare export): grade whatever has numbers
            keys = {k for k in source if k is not None}
        return sorted(keys), {k: dict(source.get(k, {})) for k in keys}
    actors = kpis.by.get("actor", {})
    role_of = {p.id: ROLE_SUBJECT.get(p.role) for p in names.people.values()}
    keys = {p.id for p in names.people.values() if p.active and role_of[p.id] == subject}
    keys |= {k for k in actors if k is not None and role_of.get(k) == subject}
    return sorted(keys), {k: dict(actors.get(k, {})) for k in keys}


def _label(subject: Subject | None, key: int | None, names: Names) -> tuple[str | None, str]:
    if subject is None:
        return None, "全市"
    if subject in (Subject.DEPARTMENT, Subject.SUBDISTRICT, Subject.COMMUNITY):
        unit = names.units.get(key) if key is not None else None
        return (unit.code, unit.name) if unit else (None, names.unit_name(key))
    person = names.people.get(key) if key is not None else None
    return (person.username, person.name) if person else (None, f"#{key}")


def grade_subjects(
    subject: Subject,
    kpis: KpiCounts,
    names: Names,
    settings: EvaluationSettings,
    audit_items: Sequence[AuditItemPublic] = (),
) -> list[SubjectKpis]:
    """Rates, composite index, grade and rank of every subject of one kind, best first."""
    keys, counts_by = _subject_keys(subject, kpis, names)
    if subject is Subject.DEPARTMENT:
        for item in audit_items:
            counts = counts_by.get(item.department_id)
            if counts is None:
                continue
            if item.outcome is not None:
                counts["audited"] = counts.get("audited", 0) + 1
            if item.outcome == "pass":
                counts["audit_passed"] = counts.get("audit_passed", 0) + 1
            if item.outcome == "fail":
                counts["audit_failed"] = counts.get("audit_failed", 0) + 1
    components = settings.composites.get(subject, [])
    terms = [Term(c.indicator, c.weight, c.invert) for c in components]
    rate_keys = list(dict.fromkeys([*SUBJECT_RATES[subject], *(t.indicator for t in terms)]))
    volumes = {k: sum(counts_by[k].get(n, 0.0) for n in VOLUME_BASIS[subject]) for k in keys}
    volume = domain.volume_scores(volumes)
    bands = [(b.grade, b.min_score) for b in settings.grade_bands]
    built: dict[int, SubjectKpis] = {}
    scores: dict[int, float | None] = {}
    for key in keys:
        counts = counts_by[key]
        rates = _rates(counts, rate_keys)
        values: dict[str, float | None] = dict(rates)
        values[VOLUME_SCORE] = volume.get(key)
        raw = domain.composite(values, terms)
        deduction = 0.0
        score = raw
        if subject is Subject.DEPARTMENT and raw is not None:
            failures = int(counts.get("audit_failed", 0))
            score = domain.apply_deduction(
                raw, failures, settings.audit.deduction_per_failure, settings.audit.max_deduction
            )
            deduction = raw - (score or 0.0)
        code, name = _label(subject, key, names)
        built[key] = SubjectKpis(
            subject=subject,
            key=key,
            code=code,
            name=name,
            counts=counts,
            rates=rates,
            display={k: fmt_pct(v) for k, v in rates.items()},
            volume_score=volume.get(key),
            composite_raw=raw,
            audit_deduction=round(deduction, 6),
            composite=score,
            composite_display=fmt_score(score),
            grade=domain.grade(score, bands, settings.lowest_grade),
        )
        scores[key] = score
    tiebreak = {k: f"{built[k].code or ''}\x00{built[k].name}" for k in keys}
    ordered: list[SubjectKpis] = []
    for ranked in domain.rank(scores, tiebreak):
        graded = built[ranked.key]
        graded.rank = ranked.rank
        ordered.append(graded)
    return ordered


def _city(kpis: KpiCounts) -> SubjectKpis:
    counts = dict(kpis.by.get("city", {}).get(0, {}))
    rates = _rates(counts, SUBJECT_RATES[None])
    return SubjectKpis(
        subject=None,
        key=0,
        name="全市",
        counts=counts,
        rates=rates,
        display={k: fmt_pct(v) for k, v in rates.items()},
    )


def _headline(city: SubjectKpis) -> Headline:
    keys = ("disposal_rate", "on_time_disposal_rate", "closing_rate", "rework_rate")
    display = {k: city.display[k] for k in (*keys, "satisfaction_rate")}
    filed = int(city.counts.get("filed", 0))
    display["filed"] = str(filed)
    return Headline(
        filed=filed,
        disposal_rate=city.rates.get("disposal_rate"),
        on_time_disposal_rate=city.rates.get("on_time_disposal_rate"),
        closing_rate=city.rates.get("closing_rate"),
        rework_rate=city.rates.get("rework_rate"),
        satisfaction_rate=city.rates.get("satisfaction_rate"),
        display=display,
    )


def _hotline_rates(
    key: int | None, name: str, counts: dict[str, float], settings: EvaluationSettings
) -> HotlineRates:
    h = settings.hotline
    tr = domain.three_rates(
        owed=int(counts.get("owed", 0)),
        contacted=int(counts.get("contacted", 0)),
        solved=int(counts.get("solved", 0)),
        rated=int(counts.get("rated", 0)),
        satisfied=int(counts.get("satisfied", 0)),
        basically_satisfied=int(counts.get("basically_satisfied", 0)),
        weights=(h.response_weight, h.resolution_weight, h.satisfaction_weight),
        factor=h.basically_satisfied_factor,
    )
    return HotlineRates(
        key=key,
        name=name,
        owed=tr.owed,
        contacted=tr.contacted,
        solved=tr.solved,
        rated=tr.rated,
        satisfied=tr.satisfied,
        basically_satisfied=tr.basically_satisfied,
        response_rate=tr.response_rate,
        resolution_rate=tr.resolution_rate,
        satisfaction_rate=tr.satisfaction_rate,
        composite=tr.composite,
        display={
            "response_rate": fmt_pct(tr.response_rate),
            "resolution_rate": fmt_pct(tr.resolution_rate),
            "satisfaction_rate": fmt_pct(tr.satisfaction_rate),
            "composite": fmt_score(tr.composite),
        },
    )


def _local(value: dt.datetime, tz: str) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(ZoneInfo(tz))


EngineFactory = Callable[[Sequence[Period]], Engine]


def compute_monthly(
    engine_for: EngineFactory,
    names: Names,
    settings: EvaluationSettings,
    month: str,
    *,
    audit_items: Sequence[AuditItemPublic] = (),
    comparisons: bool = True,
    with_lists: bool = False,
) -> tuple[MonthlyKpis, ReportLists | None]:
    """The month's KPIs of every subject, graded, ranked and compared; optionally the lists."""
    tz = settings.timezone
    period = domain.month_period(month, tz)
    hotline_period = domain.month_period(month, tz, settings.hotline.month_start_day)
    engine = engine_for([period, hotline_period])
    kpis = engine.counts(period)
    hot = engine.hotline_counts(hotline_period)
    lists = engine.report_lists(period) if with_lists else None

    graded = {s: grade_subjects(s, kpis, names, settings, audit_items) for s in Subject}
    if comparisons:
        for other, attr in (
            (domain.previous_month(month), "prev_month"),
            (domain.same_month_last_year(month), "last_year"),
        ):
            other_period = domain.month_period(other, tz)
            other_kpis = engine_for([other_period]).counts(other_period, people=False)
            for subject in (Subject.DEPARTMENT, Subject.SUBDISTRICT, Subject.COMMUNITY):
                before = {s.key: s for s in grade_subjects(subject, other_kpis, names, settings)}
                for current in graded[subject]:
                    old = before.get(current.key)
                    if old is None:
                        continue
                    d = domain.delta(current.composite, old.composite)
                    setattr(current, f"composite_{attr}", old.composite)
                    setattr(current, f"rank_{attr}", old.rank)
                    setattr(current, f"delta_{attr}", d)
                    setattr(current, f"delta_{attr}_display", fmt_delta(d))

    city = _city(kpis)
    hot_city = _hotline_rates(0, "全市", hot.get("city", {}).get(0, {}), settings)
    hot_depts = [
        _hotline_rates(k, names.unit_name(k), c, settings)
        for k, c in hot.get("department", {}).items()
    ]
    hot_depts.sort(key=lambda r: (-(r.composite or -1.0), r.name, r.key or 0))
    h = settings.hotline
    result = MonthlyKpis(
        month=period.label,
        period_start=period.start,
        period_end=period.end,
        headline=_headline(city),
        city=city,
        departments=graded[Subject.DEPARTMENT],
        subdistricts=graded[Subject.SUBDISTRICT],
        communities=graded[Subject.COMMUNITY],
        inspectors=graded[Subject.INSPECTOR],
        intake_operators=graded[Subject.INTAKE_OPERATOR],
        shift_supervisors=graded[Subject.SHIFT_SUPERVISOR],
        dispatchers=graded[Subject.DISPATCHER],
        hotline=HotlineSection(
            month=hotline_period.label,
            period_start=hotline_period.start,
            period_end=hotline_period.end,
            weights=(h.response_weight, h.resolution_weight, h.satisfaction_weight),
            city=hot_city,
            departments=hot_depts,
        ),
    )
    return result, lists


def build_report(
    kpis: MonthlyKpis,
    lists: ReportLists,
    names: Names,
    settings: EvaluationSettings,
    audit_items: Sequence[AuditItemPublic],
) -> MonthlyReport:
    tz = settings.timezone
    end_local = kpis.period_end
    overdue: list[OverdueCase] = []
    for row in lists.overdue:
        deadline = _local(row.deadline, tz)
        done = _local(row.disposed_at, tz) if row.disposed_at is not None else None
        until = done or end_local
        overdue.append(
            OverdueCase(
                case_id=row.case_id,
                code=row.code,
                department_name=names.unit_name(row.department_id),
                deadline=deadline,
                disposed_at=done,
                overdue_hours=round(max(0.0, (until - deadline).total_seconds() / 3600), 1),
            )
        )
    items = list(audit_items)
    return MonthlyReport(
        title=settings.report.title,
        month=kpis.month,
        repeat_threshold=settings.report.repeat_threshold,
        kpis=kpis,
        top_classes=[
            ClassCount(
                minor_id=m, code=names.class_label(m)[0], name=names.class_label(m)[1], count=n
            )
            for m, n in lists.top_classes
        ],
        hotspot_cells=[CellCount(cell_code=c, count=n) for c, n in lists.hotspot_cells],
        hotspot_subdistricts=[
            TerritoryCount(department_id=s, name=names.unit_name(s), count=n)
            for s, n in lists.hotspot_subdistricts
        ],
        repeats=[
            RepeatProblem(
                cell_code=c,
                minor_code=names.class_label(m)[0],
                minor_name=names.class_label(m)[1],
                count=n,
                case_codes=codes,
            )
            for c, m, n, codes in lists.repeats
        ],
        repeat_total=lists.repeat_total,
        overdue=overdue,
        overdue_total=lists.overdue_total,
        audits=audit.summary(items),
        audit_failures=[i for i in items if i.outcome == "fail"],
    )


# --------------------------------------------------------------------------------------------
# Over the live database
# --------------------------------------------------------------------------------------------


def _database_engines(session: Session, settings: EvaluationSettings) -> EngineFactory:
    def factory(periods: Sequence[Period]) -> Engine:
        return Engine.from_database(session, settings, periods)

    return factory


def _parquet_engines(directory: Path, settings: EvaluationSettings) -> EngineFactory:
    engine = Engine.from_parquet(directory, settings)

    def factory(periods: Sequence[Period]) -> Engine:
        lo = min(p.start for p in periods).astimezone(dt.UTC).replace(tzinfo=None)
        hi = max(p.end for p in periods).astimezone(dt.UTC).replace(tzinfo=None)
        engine.prepare(lo, hi)
        return engine

    return factory


def monthly_kpis(
    uow: UnitOfWork,
    month: str,
    *,
    comparisons: bool = True,
    settings: EvaluationSettings | None = None,
) -> MonthlyKpis:
    """The month's KPIs for every subject from the live database (read-only transaction)."""
    with uow.read():
        session = uow.session
        settings = settings or settings_in(session)
        items = audit.items_of(session, domain.parse_month_label(month))
        kpis, _ = compute_monthly(
            _database_engines(session, settings),
            names_in(session),
            settings,
            month,
            audit_items=items,
            comparisons=comparisons,
        )
        return kpis


def monthly_report(
    uow: UnitOfWork,
    month: str,
    *,
    parquet: Path | None = None,
    settings: EvaluationSettings | None = None,
) -> MonthlyReport:
    """Everything the monthly report shows; the events from the database or a Parquet export."""
    with uow.read():
        session = uow.session
        settings = settings or settings_in(session)
        label = domain.parse_month_label(month)
        items = audit.items_of(session, label)
        names = names_in(session)
        factory = (
            _parquet_engines(parquet, settings)
            if parquet is not None
            else _database_engines(session, settings)
        )
        kpis, lists = compute_monthly(
            factory, names, settings, label, audit_items=items, with_lists=True
        )
        assert lists is not None
        return build_report(kpis, lists, names, settings, items)


__all__ = [
    "ROLE_SUBJECT",
    "SUBJECT_RATES",
    "VOLUME_BASIS",
    "Names",
    "Person",
    "Unit",
    "build_report",
    "compute_monthly",
    "export_settings",
    "get_settings",
    "grade_subjects",
    "import_settings",
    "import_settings_text",
    "monthly_kpis",
    "monthly_report",
    "names_in",
    "put_settings",
    "require_reader",
    "require_settings_reader",
    "settings_in",
]
