"""Catalog use cases: import, export and load the defaults; look classes and criteria up.

What an import does to an existing catalog (the rule the CLI documents):

- The workbook is the city's whole catalog for each family it has a sheet for. Importing it
  replaces that family's catalog in one transaction; a family without a sheet is left alone.
- Nothing is deleted. A class whose code persists keeps its id (renamed or reordered in place),
  so cases that reference it stay valid. A class the workbook no longer lists is retired
  (``active = False``) and comes back, with the same id, if a later workbook lists it again.
- A filing-standard row keeps its id while its content (criteria, time limit as written,
  handling units, supervising authority) is unchanged. A row whose content changed is a new
  row and the old one is retired: a case keeps pointing at exactly what it was filed against.
- Either everything applies or nothing does: an unreadable row rejects the whole workbook
  before the transaction opens, and any later failure rolls it back.

``load_defaults`` uses the same machinery but refuses to overwrite a family that holds something
other than the defaults (an imported city catalog) unless asked to (``replace=True``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityloop.audit.service import record
from cityloop.catalog.defaults import default_catalog
from cityloop.catalog.domain import (
    DEFAULT_EXTENSION_FLOOR,
    CatalogSpec,
    Family,
    FamilySpec,
    FilingRow,
    MajorSpec,
    MinorSpec,
    StandardSpec,
    limit_from_columns,
    read_code,
)
from cityloop.catalog.models import FilingStandard, MajorClass, MinorClass
from cityloop.catalog.schemas import (
    FamilyChanges,
    FamilyCounts,
    FilingStandardPublic,
    ImportReport,
    MajorClassPublic,
    MinorClassDetail,
    MinorClassPublic,
)
from cityloop.catalog.workbook import (
    DEFAULT_TITLE,
    check_export_path,
    read_workbook,
    write_workbook,
)
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import Conflict, InvalidInput, NotFound
from cityloop.org.domain import Actor, Role
from cityloop.org.models import Department
from cityloop.org.service import department_by_code, require_role
from cityloop.workcal.domain import DEFAULT_UNIT_MAP, UnitMeaning

# --- import, load-defaults ------------------------------------------------------------------


def import_workbook(
    uow: UnitOfWork,
    actor: Actor,
    *,
    path: Path,
    unit_map: Mapping[str, UnitMeaning] | None = None,
    extension_floor: int = DEFAULT_EXTENSION_FLOOR,
    dry_run: bool = False,
) -> ImportReport:
    """Import a city's workbook, replacing the catalog of each family it has a sheet for.

    The file is read and checked completely before the transaction opens. ``dry_run`` computes
    the same report and rolls back, so an admin can see what an import would change.
    """
    require_role(actor, Role.ADMIN)
    spec = read_workbook(
        path, unit_map=unit_map or DEFAULT_UNIT_MAP, extension_floor=extension_floor
    )
    return _apply(
        uow,
        actor,
        spec,
        action="catalog.import",
        source=path.name,
        overwrite=True,
        dry_run=dry_run,
    )


def load_defaults(uow: UnitOfWork, actor: Actor, *, replace: bool = False) -> ImportReport:
    """Load the built-in catalog. A second run finds nothing to change and reports so.

    A family that already holds a different catalog (a city's import) is refused with
    ``Conflict`` unless ``replace`` is set, because loading the defaults over it would retire
    the city's own classes.
    """
    require_role(actor, Role.ADMIN)
    return _apply(
        uow,
        actor,
        default_catalog(),
        action="catalog.load_defaults",
        source="built-in defaults",
        overwrite=replace,
        dry_run=False,
    )


def _apply(
    uow: UnitOfWork,
    actor: Actor,
    spec: CatalogSpec,
    *,
    action: str,
    source: str,
    overwrite: bool,
    dry_run: bool,
) -> ImportReport:
    with uow:
        session = uow.session
        try:
            results = [
                _apply_checked(session, actor, family_spec, action, source, overwrite, dry_run)
                for family_spec in spec.families
            ]
        except IntegrityError:
            # Two imports at once on PostgreSQL: the second one loses on a unique code.
            raise Conflict(
                "the catalog was changed by another import at the same time; "
                "nothing was imported, run the import again"
            ) from None
        if not dry_run:
            uow.commit()
        return ImportReport(source=source, dry_run=dry_run, families=results)


def _apply_checked(
    session: Session,
    actor: Actor,
    spec: FamilySpec,
    action: str,
    source: str,
    overwrite: bool,
    dry_run: bool,
) -> FamilyChanges:
    """Apply one family; refuse (and so roll back) when it would overwrite a catalog that
    ``overwrite`` does not allow to be overwritten; audit what was done."""
    had_catalog = _has_active_classes(session, spec.family)
    changes = _apply_family(session, spec, _departments_by_name(session))
    if had_catalog and changes.changed and not overwrite:
        raise Conflict(
            f"the {spec.family.value} catalog ({spec.family.label_zh}) already holds classes "
            "that differ from the defaults, probably a city's import; load the defaults with "
            "--replace to overwrite it"
        )
    if not dry_run:
        record(
            session,
            actor,
            action=action,
            entity="catalog",
            entity_id=spec.family.value,
            detail={"source": source, **changes.model_dump(mode="json")},
        )
    return changes


def _has_active_classes(session: Session, family: Family) -> bool:
    stmt = select(MinorClass.id).where(MinorClass.family == family.value, MinorClass.active)
    return session.scalar(stmt.limit(1)) is not None


_UNIT_SEPARATORS = re.compile(r"[、,，;；/\s]+")


def _departments_by_name(session: Session) -> dict[str, int]:
    rows = session.execute(select(Department.name, Department.id).where(Department.active))
    return {name: dept_id for name, dept_id in rows}


def resolve_department(handling_units: str, departments: Mapping[str, int]) -> int | None:
    """The first unit named in a 处置单位 cell that is exactly a department's name, or None.

    Exact names only: "所属街办" or "各产权单位" name a role, not a department, and a guessed
    department would dispatch cases to the wrong desk.
    """
    for unit in _UNIT_SEPARATORS.split(handling_units):
        if unit and unit in departments:
            return departments[unit]
    return None


def _assign(obj: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; True when any did (and then stamp ``updated_at``)."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    if changed:
        obj.updated_at = utcnow()
    return changed


def _apply_family(
    session: Session, spec: FamilySpec, departments: Mapping[str, int]
) -> FamilyChanges:
    family = spec.family.value
    majors = {
        m.code: m for m in session.scalars(select(MajorClass).where(MajorClass.family == family))
    }
    minors = {
        m.code: m for m in session.scalars(select(MinorClass).where(MinorClass.family == family))
    }
    rows_by_minor: dict[int, list[FilingStandard]] = defaultdict(list)
    stmt = (
        select(FilingStandard)
        .join(MinorClass, FilingStandard.minor_id == MinorClass.id)
        .where(MinorClass.family == family)
        .order_by(FilingStandard.id)
    )
    for row in session.scalars(stmt):
        rows_by_minor[row.minor_id].append(row)

    counts: Counter[str] = Counter()
    listed_majors: set[str] = set()
    listed_minors: set[str] = set()
    for major_position, major_spec in enumerate(spec.majors, start=1):
        listed_majors.add(major_spec.code)
        major = majors.get(major_spec.code)
        values = {
            "name": major_spec.name,
            "is_extension": major_spec.is_extension,
            "position": major_position,
            "active": True,
        }
        if major is None:
            major = MajorClass(family=family, code=major_spec.code, **values)
            session.add(major)
            session.flush()
            counts["classes_added"] += 1
        elif _assign(major, values):
            counts["classes_updated"] += 1
        for minor_position, minor_spec in enumerate(major_spec.minors, start=1):
            listed_minors.add(minor_spec.code)
            minor = minors.get(minor_spec.code)
            values = {
                "major_id": major.id,
                "name": minor_spec.name,
                "is_extension": minor_spec.is_extension,
                "position": minor_position,
                "active": True,
            }
            if minor is None:
                minor = MinorClass(family=family, code=minor_spec.code, **values)
                session.add(minor)
                session.flush()
                counts["classes_added"] += 1
            elif _assign(minor, values):
                counts["classes_updated"] += 1
            _apply_rows(session, minor, minor_spec, rows_by_minor[minor.id], departments, counts)

    for code, minor in minors.items():
        if code not in listed_minors:
            if minor.active:
                _assign(minor, {"active": False})
                counts["classes_retired"] += 1
            for row in rows_by_minor[minor.id]:
                if row.active:
                    _assign(row, {"active": False})
                    counts["rows_retired"] += 1
    for code, major in majors.items():
        if code not in listed_majors and major.active:
            _assign(major, {"active": False})
            counts["classes_retired"] += 1
    session.flush()
    return FamilyChanges(
        family=spec.family,
        major_classes=len(spec.majors),
        minor_classes=spec.minor_count,
        criterion_rows=spec.standard_count,
        **counts,
    )


def _apply_rows(
    session: Session,
    minor: MinorClass,
    spec: MinorSpec,
    existing: list[FilingStandard],
    departments: Mapping[str, int],
    counts: Counter[str],
) -> None:
    """Match the minor class's rows by content; keep matches, add the new, retire the rest."""
    pool: dict[tuple[str, str, str | None, str, str], list[FilingStandard]] = defaultdict(list)
    # Active rows first, so an unchanged row is kept rather than a retired twin revived.
    for row in sorted(existing, key=lambda r: (not r.active, r.id)):
        pool[_row_key(row)].append(row)
    kept: set[int] = set()
    for position, standard in enumerate(spec.standards, start=1):
        values = _row_values(standard, position)
        candidates = pool.get(standard.content_key())
        if candidates:
            row = candidates.pop(0)
            kept.add(row.id)
            if row.default_department_id is None:
                values["default_department_id"] = resolve_department(
                    standard.handling_units, departments
                )
            counts["rows_updated" if _assign(row, values) else "rows_unchanged"] += 1
        else:
            values["default_department_id"] = resolve_department(
                standard.handling_units, departments
            )
            session.add(FilingStandard(minor_id=minor.id, **values))
            counts["rows_added"] += 1
    for row in existing:
        if row.active and row.id not in kept:
            _assign(row, {"active": False})
            counts["rows_retired"] += 1


def _row_key(row: FilingStandard) -> tuple[str, str, str | None, str, str]:
    return (
        row.filing_criterion,
        row.closing_criterion,
        row.limit_text,
        row.handling_units,
        row.supervising_authority,
    )


def _row_values(standard: StandardSpec, position: int) -> dict[str, Any]:
    limit = standard.limit
    return {
        "position": position,
        "filing_criterion": standard.filing_criterion,
        "closing_criterion": standard.closing_criterion,
        "limit_text": limit.text if limit else None,
        "limit_amount": limit.amount if limit else None,
        "limit_unit": limit.unit.value if limit else None,
        "limit_clock": limit.clock.value if limit else None,
        "limit_remark": (limit.remark or None) if limit else None,
        "handling_units": standard.handling_units,
        "supervising_authority": standard.supervising_authority,
        "active": True,
    }


# --- export ---------------------------------------------------------------------------------


def current_catalog(uow: UnitOfWork, *, family: Family | None = None) -> CatalogSpec:
    """The active catalog in the shape a workbook holds (what an export writes)."""
    with uow.read():
        return _current_catalog(uow.session, family)


def _current_catalog(session: Session, family: Family | None) -> CatalogSpec:
    families = [family] if family is not None else list(Family)
    result: list[FamilySpec] = []
    for fam in families:
        majors = session.scalars(
            select(MajorClass)
            .where(MajorClass.family == fam.value, MajorClass.active)
            .order_by(MajorClass.position, MajorClass.code)
        ).all()
        minors_by_major: dict[int, list[MinorClass]] = defaultdict(list)
        for minor in session.scalars(
            select(MinorClass)
            .where(MinorClass.family == fam.value, MinorClass.active)
            .order_by(MinorClass.position, MinorClass.code)
        ):
            minors_by_major[minor.major_id].append(minor)
        rows_by_minor: dict[int, list[FilingStandard]] = defaultdict(list)
        for row in session.scalars(
            select(FilingStandard)
            .join(MinorClass, FilingStandard.minor_id == MinorClass.id)
            .where(MinorClass.family == fam.value, FilingStandard.active)
            .order_by(FilingStandard.position, FilingStandard.id)
        ):
            rows_by_minor[row.minor_id].append(row)
        major_specs = tuple(
            MajorSpec(
                code=major.code,
                name=major.name,
                is_extension=major.is_extension,
                minors=tuple(
                    MinorSpec(
                        code=minor.code,
                        name=minor.name,
                        is_extension=minor.is_extension,
                        standards=tuple(_standard_spec(r) for r in rows_by_minor[minor.id]),
                    )
                    for minor in minors_by_major[major.id]
                ),
            )
            for major in majors
        )
        if major_specs:
            result.append(FamilySpec(family=fam, majors=major_specs))
    return CatalogSpec(families=tuple(result))


def _standard_spec(row: FilingStandard) -> StandardSpec:
    return StandardSpec(
        filing_criterion=row.filing_criterion,
        closing_criterion=row.closing_criterion,
        limit=limit_from_columns(
            row.limit_text, row.limit_amount, row.limit_unit, row.limit_clock, row.limit_remark
        ),
        handling_units=row.handling_units,
        supervising_authority=row.supervising_authority,
    )


def export_workbook(
    uow: UnitOfWork,
    *,
    path: Path,
    family: Family | None = None,
    title: str = DEFAULT_TITLE,
) -> list[FamilyCounts]:
    """Write the active catalog as a workbook that ``import_workbook`` reads back unchanged.

    Read-only, so any staff user may export; retired classes and rows are left out.
    """
    check_export_path(path)
    catalog = current_catalog(uow, family=family)
    if not catalog.families:
        which = f"the {family.value} catalog is" if family else "the catalog is"
        raise InvalidInput(
            f"{which} empty; nothing to export (run `cityloop catalog load-defaults` "
            "or import a workbook first)"
        )
    write_workbook(path, catalog, title=title)
    return [
        FamilyCounts(
            family=spec.family,
            major_classes=len(spec.majors),
            minor_classes=spec.minor_count,
            criterion_rows=spec.standard_count,
        )
        for spec in catalog.families
    ]


# --- reading --------------------------------------------------------------------------------


def _minor_public(minor: MinorClass, major: MajorClass, standard_count: int) -> MinorClassPublic:
    return MinorClassPublic(
        id=minor.id,
        family=Family(minor.family),
        code=minor.code,
        name=minor.name,
        major_id=major.id,
        major_code=major.code,
        major_name=major.name,
        is_extension=minor.is_extension,
        position=minor.position,
        active=minor.active,
        standard_count=standard_count,
    )


def _active_row_counts(session: Session, minor_ids: list[int]) -> dict[int, int]:
    if not minor_ids:
        return {}
    stmt = (
        select(FilingStandard.minor_id, func.count())
        .where(FilingStandard.minor_id.in_(minor_ids), FilingStandard.active)
        .group_by(FilingStandard.minor_id)
    )
    return {minor_id: count for minor_id, count in session.execute(stmt)}


def list_majors(
    uow: UnitOfWork, *, family: Family | None = None, include_retired: bool = False
) -> list[MajorClassPublic]:
    with uow.read():
        stmt = select(MajorClass).order_by(MajorClass.family, MajorClass.position, MajorClass.code)
        if family is not None:
            stmt = stmt.where(MajorClass.family == family.value)
        if not include_retired:
            stmt = stmt.where(MajorClass.active)
        return [MajorClassPublic.model_validate(m) for m in uow.session.scalars(stmt)]


def list_classes(
    uow: UnitOfWork,
    *,
    family: Family | None = None,
    query: str | None = None,
    include_retired: bool = False,
) -> list[MinorClassPublic]:
    """Minor classes in catalog order. ``query`` matches a code prefix ("01", "0101") or a
    part of the minor or major class name ("井盖")."""
    with uow.read():
        session = uow.session
        stmt = (
            select(MinorClass, MajorClass)
            .join(MajorClass, MinorClass.major_id == MajorClass.id)
            .order_by(
                MinorClass.family,
                MajorClass.position,
                MajorClass.code,
                MinorClass.active.desc(),  # retired classes after the live ones
                MinorClass.position,
                MinorClass.code,
            )
        )
        if family is not None:
            stmt = stmt.where(MinorClass.family == family.value)
        if not include_retired:
            stmt = stmt.where(MinorClass.active)
        text = (query or "").strip()
        if text:
            stmt = stmt.where(
                or_(
                    MinorClass.code.startswith(text, autoescape=True),
                    MinorClass.name.contains(text, autoescape=True),
                    MajorClass.name.contains(text, autoescape=True),
                )
            )
        pairs = session.execute(stmt).all()
        counts = _active_row_counts(session, [minor.id for minor, _ in pairs])
        return [_minor_public(minor, major, counts.get(minor.id, 0)) for minor, major in pairs]


def _normalise_minor_code(code: str) -> str:
    try:
        digits = read_code(code)
    except ValueError:
        digits = ""
    if len(digits) != 4:
        raise InvalidInput(
            f"{code!r} is not a minor class code: expected 4 digits such as 0101", field="code"
        )
    return digits


def minor_by_code(session: Session, *, family: Family, code: str) -> MinorClass:
    """The minor class with this 4-digit code, retired or not (old cases still name it)."""
    digits = _normalise_minor_code(code)
    minor = session.scalar(
        select(MinorClass).where(MinorClass.family == family.value, MinorClass.code == digits)
    )
    if minor is None:
        raise NotFound(
            f"no {family.value} ({family.label_zh}) minor class with code {digits}", field="code"
        )
    return minor


def get_minor(uow: UnitOfWork, *, family: Family, code: str) -> MinorClassDetail:
    """A minor class with its active filing-standard rows, in order."""
    with uow.read():
        session = uow.session
        minor = minor_by_code(session, family=family, code=code)
        standards = _standards(session, minor.id, include_retired=False)
        base = _minor_public(minor, minor.major, len(standards))
        return MinorClassDetail(**base.model_dump(), standards=standards)


def _standards(
    session: Session, minor_id: int, *, include_retired: bool
) -> list[FilingStandardPublic]:
    stmt = (
        select(FilingStandard)
        .where(FilingStandard.minor_id == minor_id)
        .order_by(FilingStandard.active.desc(), FilingStandard.position, FilingStandard.id)
    )
    if not include_retired:
        stmt = stmt.where(FilingStandard.active)
    return [FilingStandardPublic.model_validate(r) for r in session.scalars(stmt)]


def standards_for(
    uow: UnitOfWork, *, minor_id: int, include_retired: bool = False
) -> list[FilingStandardPublic]:
    with uow.read():
        if uow.session.get(MinorClass, minor_id) is None:
            raise NotFound(f"no minor class with id {minor_id}", field="minor_id")
        return _standards(uow.session, minor_id, include_retired=include_retired)


def catalog_counts(uow: UnitOfWork) -> list[FamilyCounts]:
    """Active major classes, minor classes and criterion rows per family."""
    with uow.read():
        session = uow.session
        result = []
        for family in Family:
            majors = session.scalar(
                select(func.count())
                .select_from(MajorClass)
                .where(MajorClass.family == family.value, MajorClass.active)
            )
            minors = session.scalar(
                select(func.count())
                .select_from(MinorClass)
                .where(MinorClass.family == family.value, MinorClass.active)
            )
            rows = session.scalar(
                select(func.count())
                .select_from(FilingStandard)
                .join(MinorClass, FilingStandard.minor_id == MinorClass.id)
                .where(MinorClass.family == family.value, FilingStandard.active)
            )
            result.append(
                FamilyCounts(
                    family=family,
                    major_classes=majors or 0,
                    minor_classes=minors or 0,
                    criterion_rows=rows or 0,
                )
            )
        return result


# --- lookups for the case loop (they join the caller's transaction) --------------------------


def _filing_row(row: FilingStandard, minor: MinorClass) -> FilingRow:
    return FilingRow(
        id=row.id,
        minor_id=minor.id,
        family=Family(minor.family),
        minor_code=minor.code,
        minor_name=minor.name,
        position=row.position,
        filing_criterion=row.filing_criterion,
        closing_criterion=row.closing_criterion,
        limit=limit_from_columns(
            row.limit_text, row.limit_amount, row.limit_unit, row.limit_clock, row.limit_remark
        ),
        handling_units=row.handling_units,
        supervising_authority=row.supervising_authority,
        default_department_id=row.default_department_id,
        active=row.active,
    )


def filing_row(session: Session, row_id: int) -> FilingRow:
    """One filing-standard row with its parsed time limit, retired or not.

    Filing a new case should check ``active``; reading an old case must not care.
    """
    row = session.get(FilingStandard, row_id)
    if row is None:
        raise NotFound(f"no filing-standard row with id {row_id}", field="filing_row_id")
    return _filing_row(row, row.minor)


def filing_rows(session: Session, *, minor_id: int) -> list[FilingRow]:
    """The active filing-standard rows of a minor class, in the city's order."""
    minor = session.get(MinorClass, minor_id)
    if minor is None:
        raise NotFound(f"no minor class with id {minor_id}", field="minor_id")
    stmt = (
        select(FilingStandard)
        .where(FilingStandard.minor_id == minor_id, FilingStandard.active)
        .order_by(FilingStandard.position, FilingStandard.id)
    )
    return [_filing_row(row, minor) for row in session.scalars(stmt)]


# --- admin mutations ------------------------------------------------------------------------


def set_default_department(
    uow: UnitOfWork, actor: Actor, *, standard_id: int, department_code: str | None
) -> FilingStandardPublic:
    """Bind a filing-standard row to the department cases of that row go to by default
    (``None`` clears it). A later import keeps the binding while the row's content holds."""
    require_role(actor, Role.ADMIN)
    with uow:
        session = uow.session
        row = session.get(FilingStandard, standard_id)
        if row is None:
            raise NotFound(f"no filing-standard row with id {standard_id}", field="standard_id")
        department_id = (
            department_by_code(session, department_code).id if department_code is not None else None
        )
        before = row.default_department_id
        _assign(row, {"default_department_id": department_id})
        record(
            session,
            actor,
            action="catalog.standard.set_department",
            entity="catalog_filing_standard",
            entity_id=row.id,
            detail={"before": before, "after": department_id, "department": department_code},
        )
        result = FilingStandardPublic.model_validate(row)
        uow.commit()
        return result
