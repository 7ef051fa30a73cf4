"""Shapes of the exchange: the import mapping file, the city's exchange settings, the upward
document (version 1) and what the receiver, the importer and the exporter answer."""

from __future__ import annotations

import codecs
import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from cityloop.cases.domain import CaseState, Channel
from cityloop.errors import InvalidInput
from cityloop.exchange.domain import (
    DOCUMENT_VERSION,
    KEY_FIELDS,
    OutboxKind,
)
from cityloop.exchange.domain import Field as ImportField
from cityloop.grid.coords import CoordSystem, parse_coord_system

SETTINGS_KEY = "exchange"

# --------------------------------------------------------------------------------------------
# The import mapping file
# --------------------------------------------------------------------------------------------

_ENUM_FIELDS: dict[ImportField, type[StrEnum]] = {
    ImportField.CHANNEL: Channel,
    ImportField.STATE: CaseState,
}


def _check_value(field: ImportField, value: str, where: str) -> str:
    """A mapped or default value must already be in our vocabulary: a typo in the mapping is
    found before the first row is read, not as a million identical rejections."""
    enum = _ENUM_FIELDS.get(field)
    if enum is not None and value not in enum._value2member_map_:
        known = ", ".join(m.value for m in enum)
        raise ValueError(f"{where}: '{value}' is not a {field.value}; use one of: {known}")
    if field is ImportField.FAMILY and value not in ("component", "event"):
        raise ValueError(f"{where}: '{value}' is not a family; use component or event")
    if field is ImportField.COORD_SYSTEM:
        try:
            parse_coord_system(value)
        except InvalidInput as exc:
            raise ValueError(f"{where}: {exc.message}") from None
    return value


class ImportMapping(BaseModel):
    """How the columns of one source's files become cases (a TOML or JSON file).

    ``columns`` maps a source column header to one of our fields; ``values`` maps source
    spellings to ours per field ("12345热线" -> hotline_12345, "已结案" -> closed); ``defaults``
    fills a field that the file lacks or leaves empty. See docs/exchange.md.
    """

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    source: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[^\s/\\]+$",
        description="Names the source system; with each row's key it makes re-runs idempotent.",
    )
    format: Literal["csv", "xlsx"] | None = None  # default: from the file's extension
    encoding: str = "utf-8-sig"  # CSV only; gb18030 for files saved by Chinese Excel
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    sheet: str | None = None  # Excel: the sheet to read (default: the first)
    header_row: int = Field(default=1, ge=1, le=100)
    timezone: str = "Asia/Shanghai"  # naive times in the file are local to this zone
    date_formats: list[str] = Field(default_factory=lambda: ["iso"], min_length=1, max_length=10)
    coord_system: CoordSystem = CoordSystem.WGS84
    key: ImportField | None = None  # code or external_id; default external_id when mapped
    columns: dict[str, ImportField] = Field(min_length=1)
    values: dict[ImportField, dict[str, str]] = Field(default_factory=dict)
    defaults: dict[ImportField, str] = Field(default_factory=dict)

    @field_validator("coord_system", mode="before")
    @classmethod
    def _system(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_coord_system(value)
        except InvalidInput as exc:  # not a ValueError: pydantic would let it escape unnamed
            raise ValueError(exc.message) from None

    @field_validator("encoding")
    @classmethod
    def _codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding '{value}' (try utf-8-sig or gb18030)") from None
        return value

    @field_validator("columns")
    @classmethod
    def _one_column_per_field(cls, value: dict[str, ImportField]) -> dict[str, ImportField]:
        seen: dict[ImportField, str] = {}
        for column, target in value.items():
            if not column.strip():
                raise ValueError("a column name is empty")
            if target in seen:
                raise ValueError(
                    f"columns '{seen[target]}' and '{column}' both map to {target.value}"
                )
            seen[target] = column
        return value

    @model_validator(mode="after")
    def _complete(self) -> ImportMapping:
        mapped = set(self.columns.values())
        for field, table in self.values.items():
            for source_value, ours in table.items():
                _check_value(field, ours, f"values.{field.value}['{source_value}']")
        for field, value in self.defaults.items():
            _check_value(field, value, f"defaults.{field.value}")
            if field in (ImportField.CODE, ImportField.EXTERNAL_ID, *_TIME_DEFAULT_REFUSED):
                raise ValueError(f"defaults.{field.value}: a default makes no sense here")
        if ImportField.REPORTED_AT not in mapped:
            raise ValueError("columns: no column maps to reported_at (when the case was reported)")
        for field in (ImportField.STATE, ImportField.CHANNEL, ImportField.DESCRIPTION):
            if field not in mapped and field not in self.defaults:
                raise ValueError(
                    f"columns: no column maps to {field.value} and defaults.{field.value} is unset"
                )
        if (ImportField.LON in mapped) != (ImportField.LAT in mapped):
            raise ValueError("columns: map both lon and lat, or neither")
        if ImportField.LON not in mapped and ImportField.ADDRESS not in mapped:
            raise ValueError("columns: map lon and lat, or address: every case needs a location")
        if self.key is None:
            self.key = next((f for f in KEY_FIELDS if f in mapped), None)
            if self.key is None:
                raise ValueError("columns: map code or external_id: a re-run recognises rows by it")
        elif self.key not in KEY_FIELDS:
            raise ValueError("key must be code or external_id")
        elif self.key not in mapped:
            raise ValueError(f"key is {self.key.value} but no column maps to it")
        return self

    def column_of(self, field: ImportField) -> str | None:
        for column, target in self.columns.items():
            if target is field:
                return column
        return None


_TIME_DEFAULT_REFUSED = (
    ImportField.REPORTED_AT,
    ImportField.FILED_AT,
    ImportField.DISPATCHED_AT,
    ImportField.DISPOSAL_DEADLINE,
    ImportField.DISPOSED_AT,
    ImportField.CLOSED_AT,
    ImportField.LON,
    ImportField.LAT,
)


class ImportRejection(BaseModel):
    """One refused row: its number as a spreadsheet shows it (the header is row 1 unless
    ``header_row`` says otherwise), the field at fault, the value and why."""

    row: int
    field: str
    value: str | None = None
    reason: str


class ImportReport(BaseModel):
    source: str
    file: str
    rows_read: int = 0
    created: int = 0
    already_imported: int = 0
    rejected: int = 0
    committed: bool = False
    partial: bool = False
    run_id: int | None = None
    without_deadline: int = 0  # dispatched cases whose disposal deadline could not be computed
    seconds: float = 0.0
    rejections: list[ImportRejection] = Field(default_factory=list)  # the first ones, in order

    @property
    def summary(self) -> str:
        return (
            f"{self.created} new, {self.already_imported} already imported, "
            f"{self.rejected} rejected ({self.rows_read} rows read)"
        )


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    GEOJSON = "geojson"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.GEOJSON: "application/geo+json",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


class ExportReport(BaseModel):
    format: ExportFormat
    path: str
    rows: int


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


class ExchangeSettings(BaseModel):
    """The city's exchange settings (cityconfig key ``exchange``).

    The upstream URL and token may also come from the environment (``CITYLOOP_EXCHANGE_URL``,
    ``CITYLOOP_EXCHANGE_TOKEN``), which wins: a secret is better kept out of the database.
    """

    city_code: str | None = Field(default=None, pattern=r"^\d{6}$")  # this city's adcode
    city_name: str = Field(default="", max_length=128)
    upstream_url: str | None = Field(default=None, max_length=500)
    upstream_token: str | None = Field(default=None, min_length=16, max_length=256)
    batch_size: int = Field(default=100, ge=1, le=500)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    backoff_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    backoff_max_seconds: float = Field(default=3600.0, gt=0, le=86400)
    lease_seconds: float = Field(default=300.0, ge=5, le=3600)
    # Receiver side (a province-level instance).
    max_inbound_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_inbound_documents: int = Field(default=500, ge=1, le=5000)

    @field_validator("upstream_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("upstream_url must start with http:// or https://")
        return value

    def public(self) -> dict[str, Any]:
        """The settings to show: the token is never printed, only whether it is set."""
        shown = self.model_dump(mode="json")
        shown["upstream_token"] = "(set)" if self.upstream_token else None
        return shown


# --------------------------------------------------------------------------------------------
# The upward document, version 1
# --------------------------------------------------------------------------------------------


class CityRef(BaseModel):
    code: str = Field(pattern=r"^\d{6}$", description="The sending city's adcode.")
    name: str = Field(default="", max_length=128)


class LocationDoc(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    system: Literal["wgs84"] = "wgs84"
    cell_code: str | None = Field(default=None, max_length=15)


class CaseDoc(BaseModel):
    """The case as one event left it. No reporter, no description, no address: the
    province counts and maps cases, it does not need anybody's name or words."""

    code: str = Field(min_length=1, max_length=32)
    seq: int = Field(ge=1, description="The sender's case version after this event.")
    event: OutboxKind
    event_at: AwareDatetime
    state: CaseState
    channel: Channel
    family: Literal["component", "event"] | None = None
    minor_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    department_code: str | None = Field(default=None, max_length=32)
    reported_at: AwareDatetime
    filed_at: AwareDatetime | None = None
    dispatched_at: AwareDatetime | None = None
    disposal_deadline: AwareDatetime | None = None
    disposed_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    location: LocationDoc | None = None


class CaseEventDocument(BaseModel):
    """One case event as a city reports it upward."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["cityloop.exchange.case-event"] = Field(
        default="cityloop.exchange.case-event", alias="schema"
    )
    version: int = DOCUMENT_VERSION
    city: CityRef
    case: CaseDoc

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != DOCUMENT_VERSION:
            raise ValueError(
                f"document version {value} is not supported; this receiver reads version "
                f"{DOCUMENT_VERSION}"
            )
        return value


class InboundBatch(BaseModel):
    """What a pusher POSTs: one or more documents, applied in one transaction."""

    documents: list[CaseEventDocument] = Field(min_length=1)


Outcome = Literal["accepted", "duplicate", "stale"]


class InboundResult(BaseModel):
    case_code: str
    seq: int
    outcome: Outcome


class InboundReport(BaseModel):
    accepted: int = 0  # the newest picture of its case now
    duplicates: int = 0  # this (case, seq) arrived before: nothing changed
    stale: int = 0  # new event, but the stored picture is newer: kept the newer one
    results: list[InboundResult] = Field(default_factory=list)


class CitySummary(BaseModel):
    city_code: str
    name: str
    cases: int
    open: int
    closed: int
    by_state: dict[str, int]
    events: int
    last_event_at: dt.datetime | None
    last_received_at: dt.datetime | None


class ReceivedCasePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    city_code: str
    case_code: str
    seq: int
    event: str
    event_at: dt.datetime
    state: str
    channel: str | None
    family: str | None
    minor_code: str | None
    department_code: str | None
    reported_at: dt.datetime | None
    filed_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    disposal_deadline: dt.datetime | None
    disposed_at: dt.datetime | None
    closed_at: dt.datetime | None
    lon: float | None
    lat: float | None
    cell_code: str | None
    received_at: dt.datetime


class ReceivedCasePage(BaseModel):
    items: list[ReceivedCasePublic]
    total: int
    page: int
    page_size: int


class PartnerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    city_code: str
    name: str
    token_hint: str
    active: bool
    created_at: dt.datetime
    last_seen_at: dt.datetime | None


class PartnerCreated(BaseModel):
    partner: PartnerPublic
    token: str  # shown once; only its hash is stored


class OutboxStatus(BaseModel):
    pending: int
    sent: int
    failing: int  # pending rows that failed at least once
    oldest_pending_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    last_error: str | None
    upstream_url: str | None
