"""Pure rules of the Open311 server: formats, service codes, status, dates, attributes, errors.

No I/O, no clock: the service layer reads the database and the clock and asks these functions,
so every rule the GeoReport v2 spec sets (the 90-day window, the 1,000 limit, comma-delimited
filters, ``attribute[code][]`` lists) is decided in one place and tested without a server.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from cityloop.cases.domain import TERMINAL_STATES, CaseState

# --------------------------------------------------------------------------------------------
# Errors: the spec's error list, not cityloop's JSON error body
# --------------------------------------------------------------------------------------------


class Open311Error(Exception):
    """A refusal in the spec's shape: an HTTP code and a sentence, rendered as the error list.

    Separate from ``CityloopError`` on purpose: Open311 clients parse ``errors/error/code``, not
    cityloop's ``{"error", "message"}``, so the router renders these itself in the requested
    format instead of leaving them to the application's JSON handler.
    """

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def bad_request(description: str) -> Open311Error:
    return Open311Error(400, description)


def forbidden(description: str) -> Open311Error:
    return Open311Error(403, description)


def not_found(description: str) -> Open311Error:
    return Open311Error(404, description)


# --------------------------------------------------------------------------------------------
# Formats: the spec selects the format by the resource's extension
# --------------------------------------------------------------------------------------------


class Format(StrEnum):
    XML = "xml"  # required by the spec; also the format errors fall back to
    JSON = "json"


MEDIA_TYPES: Mapping[Format, str] = {
    Format.XML: "text/xml; charset=utf-8",
    Format.JSON: "application/json; charset=utf-8",
}


def parse_format(extension: str) -> Format:
    try:
        return Format(extension.lower())
    except ValueError:
        raise bad_request(
            f"format '{extension}' is not supported; end the resource in .xml or .json"
        ) from None


def split_name(name: str) -> tuple[str, Format]:
    """``"C0101.json"`` -> ``("C0101", Format.JSON)``: the last dot separates the format."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        raise bad_request(f"'{name}' has no format; end it in .xml or .json")
    return stem, parse_format(extension)


def format_hint(name: str) -> Format:
    """The format an error about ``name`` should use: the one asked for when it is valid, else
    XML, the format every Open311 client must understand."""
    extension = name.rpartition(".")[2].lower()
    return Format.JSON if extension == Format.JSON.value else Format.XML


# --------------------------------------------------------------------------------------------
# Service codes: family letter + the catalog's 4-digit minor code
# --------------------------------------------------------------------------------------------

FAMILY_PREFIX: Mapping[str, str] = {"component": "C", "event": "E"}
"""部件 and 事件 number their minor classes independently (component 0101 is 上水井盖, event 0101
is 私搭乱建), so the family letter is what makes a service code unique."""

PREFIX_FAMILY: Mapping[str, str] = {prefix: family for family, prefix in FAMILY_PREFIX.items()}

UNCLASSIFIED = "unclassified"
"""The service code of a case not yet classified (a hotline case before filing): the spec
requires a service_code on every request, and inventing a class would be untrue."""

_SERVICE_CODE = re.compile(r"^([CE])(\d{4})$")


def service_code(family: str | None, minor_code: str | None) -> str:
    if family is None or minor_code is None or family not in FAMILY_PREFIX:
        return UNCLASSIFIED
    return f"{FAMILY_PREFIX[family]}{minor_code}"


def parse_service_code(code: str) -> tuple[str, str] | None:
    """``"C0101"`` -> ``("component", "0101")``; None when the code is not of our scheme."""
    match = _SERVICE_CODE.match(code.strip().upper())
    if match is None:
        return None
    return PREFIX_FAMILY[match.group(1)], match.group(2)


# --------------------------------------------------------------------------------------------
# Status: the spec knows open and closed; our loop has nineteen states
# --------------------------------------------------------------------------------------------


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def status_of(state: CaseState | str) -> Status:
    """Closed exactly when the loop has ended (结案, 不予立案, 不予受理, 作废)."""
    return Status.CLOSED if CaseState(state) in TERMINAL_STATES else Status.OPEN


def states_with(status: Status) -> frozenset[CaseState]:
    return frozenset(s for s in CaseState if status_of(s) is status)


def parse_statuses(value: str | None) -> frozenset[Status] | None:
    """The ``status`` filter: comma-delimited, any case. None (or blank) means every status."""
    if value is None or not value.strip():
        return None
    result: set[Status] = set()
    for word in value.split(","):
        word = word.strip().lower()
        if not word:
            continue
        try:
            result.add(Status(word))
        except ValueError:
            raise bad_request(f"status '{word}' is not open or closed") from None
    return frozenset(result) or None


UPDATE_STATUSES: frozenset[str] = frozenset(
    {
        "open",
        "closed",
        "fixed",
        "in_progress",
        "action_scheduled",
        "investigating",
        "duplicate",
        "not_councils_responsibility",
        "no_further_action",
        "internal_referral",
        "reopen",
    }
)
"""What mySociety's POST servicerequestupdates may state (OPEN/CLOSED and their extension)."""


def parse_update_status(value: str | None) -> str:
    word = (value or "").strip().lower().replace(" ", "_")
    if not word:
        raise bad_request("status is required (OPEN or CLOSED)")
    if word not in UPDATE_STATUSES:
        allowed = ", ".join(sorted(s.upper() for s in UPDATE_STATUSES))
        raise bad_request(f"status '{value}' is not one of {allowed}")
    return word


# --------------------------------------------------------------------------------------------
# Dates, windows, limits and paging
# --------------------------------------------------------------------------------------------

MAX_WINDOW = dt.timedelta(days=90)
"""The spec: a start/end range "may not span more than 90 days", and the default range is the
most recent 90 days."""

DEFAULT_LIMIT = 1000
"""The spec's default query limit ("first 1000 requests"); also the largest page."""

MAX_IDS = DEFAULT_LIMIT

_SPACE_FOR_PLUS = re.compile(r"^(.*\d) (\d{2}:?\d{2})$")


def parse_datetime(name: str, value: str) -> dt.datetime:
    """A W3C date-time with its timezone, as the spec requires (``2010-01-01T00:00:00Z``).

    A client that forgets to URL-encode ``+08:00`` sends `` 08:00``; that one mistake is
    repaired because its meaning is not in doubt. A time without a zone is refused: guessing
    UTC or Beijing time would shift the window by eight hours without anyone noticing.
    """
    text = value.strip()
    repaired = _SPACE_FOR_PLUS.match(text)
    if repaired:
        text = f"{repaired.group(1)}+{repaired.group(2)}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            f"{name} '{value}' is not a W3C date-time; use e.g. 2010-01-01T00:00:00Z"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise bad_request(f"{name} '{value}' needs a timezone, e.g. Z or +08:00")
    return parsed.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """An inclusive range of instants (both ends are "to include" in the spec's words)."""

    start: dt.datetime
    end: dt.datetime


def window(start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime) -> Window:
    """The spec's defaults: no dates -> the last 90 days; one date -> 90 days from/to it."""
    if start is None and end is None:
        return Window(now - MAX_WINDOW, now)
    if start is None:
        assert end is not None
        return Window(end - MAX_WINDOW, end)
    if end is None:
        return Window(start, start + MAX_WINDOW)
    if end < start:
        raise bad_request("end_date is before start_date")
    if end - start > MAX_WINDOW:
        raise bad_request("start_date and end_date may not span more than 90 days")
    return Window(start, end)


def parse_positive_int(name: str, value: str | None, *, default: int, maximum: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise bad_request(f"{name} '{value}' is not a whole number") from None
    if number < 1 or number > maximum:
        raise bad_request(f"{name} must be between 1 and {maximum}, not {number}")
    return number


def parse_id_list(value: str) -> list[str]:
    """``service_request_id=a,b,c``: order kept, duplicates and blanks dropped."""
    ids = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not ids:
        raise bad_request("service_request_id is empty")
    if len(ids) > MAX_IDS:
        raise bad_request(f"at most {MAX_IDS} service_request_id values at once")
    return ids


def parse_bool(name: str, value: str | None) -> bool:
    if value is None or not value.strip():
        return False
    word = value.strip().lower()
    if word in ("true", "1", "yes"):
        return True
    if word in ("false", "0", "no"):
        return False
    raise bad_request(f"{name} '{value}' is not true or false")


# --------------------------------------------------------------------------------------------
# Service attributes (the service definition) and the values a POST gives them
# --------------------------------------------------------------------------------------------


class Datatype(StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    TEXT = "text"
    SINGLEVALUELIST = "singlevaluelist"
    MULTIVALUELIST = "multivaluelist"


LIST_TYPES: frozenset[Datatype] = frozenset({Datatype.SINGLEVALUELIST, Datatype.MULTIVALUELIST})


@dataclass(frozen=True, slots=True)
class Choice:
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class AttributeDef:
    """One attribute of a service definition, with what a valid answer looks like."""

    code: str
    datatype: Datatype
    description: str
    order: int
    required: bool = False
    variable: bool = True
    datatype_description: str | None = None
    choices: tuple[Choice, ...] = ()
    max_length: int = 200
    minimum: float | None = None
    maximum: float | None = None


SITUATION = "situation"
"""The attribute whose answer is a filing-standard row: the citizen says which situation it is
(e.g. "破损超过25c㎡"), which the case keeps as its suggested row (``standard_id``)."""

COMMON_ATTRIBUTES: tuple[AttributeDef, ...] = (
    AttributeDef(
        code="impact",
        datatype=Datatype.MULTIVALUELIST,
        description="现场影响（可多选） / What the problem affects (choose any)",
        order=2,
        choices=(
            Choice("traffic", "影响通行 / blocks traffic or walking"),
            Choice("safety", "存在安全隐患 / a safety hazard"),
            Choice("sanitation", "影响环境卫生 / dirt, smell or waste"),
            Choice("noise", "噪声扰民 / noise"),
            Choice("night", "夜间尤甚 / worse at night"),
        ),
    ),
    AttributeDef(
        code="observed_at",
        datatype=Datatype.DATETIME,
        description="发现时间 / When you saw it",
        order=3,
        datatype_description="W3C date-time with a timezone, e.g. 2026-11-22T09:30:00+08:00",
    ),
    AttributeDef(
        code="quantity",
        datatype=Datatype.NUMBER,
        description="涉及数量（个、处、米） / How many items, places or metres",
        order=4,
        datatype_description="a number, 0 to 100000",
        minimum=0,
        maximum=100_000,
    ),
    AttributeDef(
        code="landmark",
        datatype=Datatype.STRING,
        description="附近参照物 / A landmark nearby (shop, bus stop, lamp-post number)",
        order=5,
        datatype_description="up to 100 characters",
        max_length=100,
    ),
    AttributeDef(
        code="access",
        datatype=Datatype.TEXT,
        description="到达现场的说明 / How to find or reach the spot",
        order=6,
        datatype_description="up to 1000 characters",
        max_length=1000,
    ),
)
"""Attributes every service has. They show each datatype the spec defines and carry what a
supervisor asks first on site; none is required, because a citizen who cannot answer should
still be able to report."""


def situation_attribute(rows: Sequence[tuple[int, str]]) -> AttributeDef:
    """The filing-standard rows of a class as a single-value list keyed by row id."""
    return AttributeDef(
        code=SITUATION,
        datatype=Datatype.SINGLEVALUELIST,
        description="属于哪种情况（立案标准） / Which situation is it (the filing standard)",
        order=1,
        datatype_description="one of the listed keys",
        choices=tuple(Choice(str(row_id), criterion) for row_id, criterion in rows),
    )


def attributes_for(rows: Sequence[tuple[int, str]]) -> tuple[AttributeDef, ...]:
    """A service's attributes: its situations (when the class has filing-standard rows) first,
    then the common ones."""
    return ((situation_attribute(rows),) if rows else ()) + COMMON_ATTRIBUTES


def has_metadata(has_situations: bool) -> bool:
    """The services list's ``metadata`` flag: true when the definition has any attribute."""
    return has_situations or bool(COMMON_ATTRIBUTES)


@dataclass(frozen=True, slots=True)
class Answer:
    """A validated attribute value: ``values`` are keys for lists, else the one value."""

    code: str
    datatype: Datatype
    values: tuple[str, ...]
    names: tuple[str, ...] = ()  # the choices' names, for lists


@dataclass(frozen=True, slots=True)
class Answers:
    known: tuple[Answer, ...]
    # Attributes the definition does not have, kept for staff and never published. FixMyStreet
    # sends its own (report_url, title, fixmystreet_id...), so refusing them would break it.
    extra: dict[str, str | list[str]] = field(default_factory=dict)

    def value(self, code: str) -> str | None:
        for answer in self.known:
            if answer.code == code:
                return answer.values[0] if answer.values else None
        return None


_ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
MAX_EXTRA_ATTRIBUTES = 30
MAX_EXTRA_LENGTH = 1000


def collect_attributes(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Gather ``attribute[code]=v`` and ``attribute[code][]=v`` pairs; blanks are "no answer".

    Clients differ: PHP-style ones send lists as ``attribute[code][]``, others repeat
    ``attribute[code]``. Both arrive here as a list per code; whether several values are allowed
    is the definition's business (``check_attributes``).
    """
    result: dict[str, list[str]] = {}
    for key, value in items:
        if not key.startswith("attribute"):
            continue
        match = _ATTRIBUTE_KEY.match(key)
        if match is None:
            raise bad_request(f"'{key}' is not of the form attribute[code] or attribute[code][]")
        values = result.setdefault(match.group(1), [])
        if value.strip():
            values.append(value.strip())
    return result


def check_attributes(
    definitions: Sequence[AttributeDef], submitted: Mapping[str, Sequence[str]]
) -> Answers:
    """Validate answers against a service definition: types, choices, lengths, required."""
    by_code = {d.code: d for d in definitions}
    known: list[Answer] = []
    extra: dict[str, str | list[str]] = {}
    for code, values in submitted.items():
        definition = by_code.get(code)
        if definition is None:
            if values:
                extra[code] = _extra_value(code, values)
            continue
        if not values:
            continue
        known.append(_answer(definition, values))
    if len(extra) > MAX_EXTRA_ATTRIBUTES:
        raise bad_request(f"at most {MAX_EXTRA_ATTRIBUTES} attributes the service does not define")
    answered = {a.code for a in known}
    for definition in definitions:
        if definition.required and definition.code not in answered:
            raise bad_request(f"attribute[{definition.code}] is required")
    known.sort(key=lambda a: by_code[a.code].order)
    return Answers(known=tuple(known), extra=extra)


def _extra_value(code: str, values: Sequence[str]) -> str | list[str]:
    for value in values:
        if len(value) > MAX_EXTRA_LENGTH:
            raise bad_request(f"attribute[{code}] is longer than {MAX_EXTRA_LENGTH} characters")
    return values[0] if len(values) == 1 else list(values)


def _answer(definition: AttributeDef, values: Sequence[str]) -> Answer:
    code, datatype = definition.code, definition.datatype
    if datatype is not Datatype.MULTIVALUELIST and len(values) > 1:
        raise bad_request(f"attribute[{code}] takes one value, got {len(values)}")
    if datatype in LIST_TYPES:
        names = {c.key: c.name for c in definition.choices}
        keys = list(dict.fromkeys(values))
        for key in keys:
            if key not in names:
                allowed = ", ".join(names) or "none"
                raise bad_request(f"attribute[{code}] has no value '{key}'; allowed: {allowed}")
        return Answer(code, datatype, tuple(keys), tuple(names[k] for k in keys))
    value = values[0]
    if datatype is Datatype.NUMBER:
        try:
            number = float(value)
        except ValueError:
            raise bad_request(f"attribute[{code}] '{value}' is not a number") from None
        low, high = definition.minimum, definition.maximum
        if (
            not math.isfinite(number)
            or (low is not None and number < low)
            or (high is not None and number > high)
        ):
            raise bad_request(f"attribute[{code}] {value} is out of range")
        return Answer(code, datatype, (value,))
    if datatype is Datatype.DATETIME:
        parsed = parse_datetime(f"attribute[{code}]", value)
        return Answer(code, datatype, (parsed.isoformat().replace("+00:00", "Z"),))
    if len(value) > definition.max_length:
        raise bad_request(f"attribute[{code}] is longer than {definition.max_length} characters")
    return Answer(code, datatype, (value,))


# --------------------------------------------------------------------------------------------
# Location, media, contact
# --------------------------------------------------------------------------------------------

MAX_ADDRESS = 255  # case_file.address
MAX_MEDIA_URL = 1024
MAX_CLIENT_ID = 128  # device_id, account_id, update_id


@dataclass(frozen=True, slots=True)
class Where:
    lat: float | None
    lon: float | None
    address: str | None


def _coordinate(name: str, value: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise bad_request(f"{name} '{value}' is not a number") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise bad_request(f"{name} {value} is outside -{limit:g}..{limit:g}")
    return number


def parse_where(
    lat: str | None, long: str | None, address_string: str | None, address_id: str | None
) -> Where:
    """The spec: a location by lat & long, address_string or address_id; one is required.

    We keep no master address register, so an address_id alone cannot place a case; it is
    refused with that reason rather than accepted as a case nobody can find.
    """
    lat = (lat or "").strip() or None
    long = (long or "").strip() or None
    address = (address_string or "").strip() or None
    if (lat is None) != (long is None):
        raise bad_request("lat and long must be given together")
    if address is not None and len(address) > MAX_ADDRESS:
        raise bad_request(f"address_string is longer than {MAX_ADDRESS} characters")
    if lat is None or long is None:
        if address is None:
            if (address_id or "").strip():
                raise bad_request(
                    "address_id is not supported here (no address register); "
                    "send lat and long or address_string"
                )
            raise bad_request("a location is required: lat and long, or address_string")
        return Where(None, None, address)
    return Where(_coordinate("lat", lat, 90), _coordinate("long", long, 180), address)


def check_media_url(value: str | None) -> str | None:
    url = (value or "").strip()
    if not url:
        return None
    if len(url) > MAX_MEDIA_URL:
        raise bad_request(f"media_url is longer than {MAX_MEDIA_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise bad_request(f"media_url '{url[:100]}' is not an http(s) URL")
    return url


def check_client_id(name: str, value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > MAX_CLIENT_ID:
        raise bad_request(f"{name} is longer than {MAX_CLIENT_ID} characters")
    return text


_CJK = re.compile(r"[\u3400-\u9fff]")


def reporter_name(first_name: str | None, last_name: str | None) -> str | None:
    """One name from the spec's two fields: 张 + 三 -> 张三 (family name first, no space);
    John + Smith -> John Smith."""
    first = (first_name or "").strip()
    last = (last_name or "").strip()
    if not first and not last:
        return None
    if _CJK.search(first + last):
        return f"{last}{first}"
    return " ".join(part for part in (first, last) if part)


_PHONE_NOISE = re.compile(r"[().\s]+")


def clean_phone(value: str | None) -> str | None:
    """Drop the punctuation people type around numbers ("(0512) 6523.1234"); what is left is
    checked by the case loop's own rule."""
    text = (value or "").strip()
    if not text:
        return None
    return _PHONE_NOISE.sub(" ", text).strip()
