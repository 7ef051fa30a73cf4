"""What the catalog service returns: plain, validated shapes for the CLI and the web layer.

ORM objects never leave the service layer; a view built inside the transaction cannot be
lazily loaded after it closed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cityloop.catalog.domain import Family
from cityloop.workcal.domain import Clock, Unit


class MajorClassPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    family: Family
    code: str
    name: str
    is_extension: bool
    position: int
    active: bool


class MinorClassPublic(BaseModel):
    id: int
    family: Family
    code: str  # 4 digits: major + minor
    name: str
    major_id: int
    major_code: str
    major_name: str
    is_extension: bool
    position: int
    active: bool
    standard_count: int  # active filing-standard rows


class FilingStandardPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    minor_id: int
    position: int
    filing_criterion: str
    closing_criterion: str
    limit_text: str | None
    limit_amount: int | None
    limit_unit: Unit | None
    limit_clock: Clock | None
    limit_remark: str | None
    handling_units: str
    supervising_authority: str
    default_department_id: int | None
    active: bool


class MinorClassDetail(MinorClassPublic):
    standards: list[FilingStandardPublic]


class FamilyChanges(BaseModel):
    """What one import did to one family, and how big the family is afterwards."""

    family: Family
    major_classes: int  # active after the import
    minor_classes: int
    criterion_rows: int
    classes_added: int = 0
    classes_updated: int = 0  # renamed, reordered, re-flagged or brought back from retirement
    classes_retired: int = 0
    rows_added: int = 0
    rows_updated: int = 0  # reordered, re-parsed, brought back, or given a department
    rows_retired: int = 0
    rows_unchanged: int = 0

    @property
    def changed(self) -> bool:
        return any(
            (
                self.classes_added,
                self.classes_updated,
                self.classes_retired,
                self.rows_added,
                self.rows_updated,
                self.rows_retired,
            )
        )


class ImportReport(BaseModel):
    source: str
    dry_run: bool = False
    families: list[FamilyChanges]

    @property
    def changed(self) -> bool:
        return any(f.changed for f in self.families)


class FamilyCounts(BaseModel):
    family: Family
    major_classes: int
    minor_classes: int
    criterion_rows: int
