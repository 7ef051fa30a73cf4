"""Pure catalog rules: families, class codes, the parsed form of a city's catalog.

No I/O. The workbook reader and the built-in defaults both produce a ``CatalogSpec``; the service
layer applies one to the database. Keeping that shape in one place is what makes "importing the
export reproduces the catalog exactly" checkable without a database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cityloop.errors import InvalidInput
from cityloop.workcal.domain import Clock, TimeLimit, Unit, UnitMeaning


class Family(StrEnum):
    """The two families of the catalog. Components are things, events are behaviours."""

    COMPONENT = "component"  # 部件
    EVENT = "event"  # 事件

    @property
    def label_zh(self) -> str:
        return FAMILY_LABELS_ZH[self]


FAMILY_LABELS_ZH: dict[Family, str] = {Family.COMPONENT: "部件", Family.EVENT: "事件"}

# Every spelling a sheet name or a CLI option may use for a family.
_FAMILY_WORDS: dict[str, Family] = {
    "部件": Family.COMPONENT,
    "部件类": Family.COMPONENT,
    "component": Family.COMPONENT,
    "components": Family.COMPONENT,
    "事件": Family.EVENT,
    "事件类": Family.EVENT,
    "event": Family.EVENT,
    "events": Family.EVENT,
}


def family_from_word(word: str) -> Family | None:
    """The family a word names ("部件", "Components", "event"...), or None."""
    return _FAMILY_WORDS.get(word.strip().lower())


def parse_family(word: str) -> Family:
    """Like ``family_from_word`` but a sentence for the user when the word is not a family."""
    family = family_from_word(word)
    if family is None:
        raise InvalidInput(
            f"unknown family {word!r}: use component (部件) or event (事件)", field="family"
        )
    return family


# City extensions count down from 99 [L]. Where the national list ends and the city's begins is
# not written in any workbook, so the import flags codes at or above this floor as extensions.
# 70 is above every national minor code we know of and below the lowest Yuncheng extension (78);
# it is unconfirmed [U], hence configurable (``cityloop catalog import --extension-floor``).
DEFAULT_EXTENSION_FLOOR = 70


def is_extension_code(code: str, floor: int = DEFAULT_EXTENSION_FLOOR) -> bool:
    """True when a 2-digit code (or the minor part of a 4-digit one) is a city extension."""
    return int(code[-2:]) >= floor


def format_code(number: int) -> str:
    return f"{number:02d}"


_DIGITS_RE = re.compile(r"^\d{1,4}$")


def read_code(value: object) -> str:
    """A class code as a workbook writes it, as digits: 1, 1.0 and "1" give "01"; " 03 " gives
    "03"; 101 and "0101" give "0101". Callers check the length they expect (2 or 4).

    Raises ``ValueError`` with a sentence when the value is not a whole number.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a code")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        text = str(value)
        return text.zfill(2) if len(text) <= 2 else text.zfill(4)
    text = str(value).strip()
    if not _DIGITS_RE.match(text):
        raise ValueError(f"{text!r} is not a number")
    return text.zfill(2) if len(text) <= 2 else text.zfill(4)


_SPACE_RUN = re.compile(r"\s+")


def clean_name(value: object) -> str:
    """A class name with the line breaks and stray spaces of spreadsheet cells removed.

    Workbooks wrap long names inside cells ("烟头收集器\\n或灭烟处", "街面秩序\\n"); the break is
    layout, not part of the name, and a name with a newline breaks every list that shows it.
    """
    text = str(value).strip()
    text = re.sub(r"\s*\n\s*", "", text)
    return _SPACE_RUN.sub(" ", text)


def clean_text(value: object) -> str:
    """A free-text cell (criterion, department list) as written, minus surrounding blanks."""
    return str(value).strip()


@dataclass(frozen=True, slots=True)
class StandardSpec:
    """One filing-standard row as a city wrote it. ``source_row`` says where (for messages)."""

    filing_criterion: str
    closing_criterion: str
    limit: TimeLimit | None
    handling_units: str
    supervising_authority: str
    source_row: int | None = field(default=None, compare=False)

    @property
    def limit_text(self) -> str | None:
        return self.limit.text if self.limit is not None else None

    def content_key(self) -> tuple[str, str, str | None, str, str]:
        """What makes two rows "the same row": everything a case can be filed against."""
        return (
            self.filing_criterion,
            self.closing_criterion,
            self.limit_text,
            self.handling_units,
            self.supervising_authority,
        )


@dataclass(frozen=True, slots=True)
class MinorSpec:
    code: str  # 4 digits
    name: str
    is_extension: bool
    standards: tuple[StandardSpec, ...]
    source_row: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MajorSpec:
    code: str  # 2 digits
    name: str
    is_extension: bool
    minors: tuple[MinorSpec, ...]
    source_row: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """The whole catalog of one family, in the order the city lists it."""

    family: Family
    majors: tuple[MajorSpec, ...]
    sheet: str | None = field(default=None, compare=False)

    @property
    def minor_count(self) -> int:
        return sum(len(m.minors) for m in self.majors)

    @property
    def standard_count(self) -> int:
        return sum(len(n.standards) for m in self.majors for n in m.minors)


@dataclass(frozen=True, slots=True)
class CatalogSpec:
    """One or both families. A family that is absent is left alone by an import."""

    families: tuple[FamilySpec, ...]

    def get(self, family: Family) -> FamilySpec | None:
        for spec in self.families:
            if spec.family is family:
                return spec
        return None


def limit_from_columns(
    text: str | None,
    amount: int | None,
    unit: str | None,
    clock: str | None,
    remark: str | None,
) -> TimeLimit | None:
    """Rebuild the ``TimeLimit`` stored in a filing-standard row (None when the row has none)."""
    if text is None or amount is None or unit is None or clock is None:
        return None
    return TimeLimit(
        amount=amount, unit=Unit(unit), clock=Clock(clock), text=text, remark=remark or ""
    )


def parse_unit_map(
    data: Mapping[str, Any], base: Mapping[str, UnitMeaning]
) -> dict[str, UnitMeaning]:
    """A unit mapping from configuration (a parsed TOML document), laid over ``base``.

    Shape::

        replace_defaults = false          # true: start from nothing instead of ``base``
        [units]
        "小时" = { clock = "urgent", unit = "hour" }
        "个工作日" = { clock = "working", unit = "day" }

    Written units are cities' words, so the mapping is configuration, not code. Raises
    ``InvalidInput`` naming the entry at fault.
    """
    unknown = set(data) - {"units", "replace_defaults"}
    if unknown:
        raise InvalidInput(
            f"unknown key(s) in the unit mapping: {', '.join(sorted(unknown))}; "
            "expected [units] and optionally replace_defaults",
            field="units",
        )
    replace = data.get("replace_defaults", False)
    if not isinstance(replace, bool):
        raise InvalidInput("replace_defaults must be true or false", field="units")
    units = data.get("units")
    if not isinstance(units, Mapping) or not units:
        raise InvalidInput(
            "the unit mapping needs a [units] table with at least one entry", field="units"
        )
    result: dict[str, UnitMeaning] = {} if replace else dict(base)
    clocks = ", ".join(c.value for c in Clock)
    unit_names = ", ".join(u.value for u in Unit)
    for written, meaning in units.items():
        word = str(written).strip()
        if not word or any(ch.isdigit() for ch in word):
            raise InvalidInput(f"unit {written!r}: a written unit has no digits", field="units")
        if not isinstance(meaning, Mapping) or set(meaning) != {"clock", "unit"}:
            raise InvalidInput(
                f"unit {word!r}: expected {{ clock = ..., unit = ... }}", field="units"
            )
        try:
            clock = Clock(str(meaning["clock"]))
        except ValueError:
            raise InvalidInput(
                f"unit {word!r}: clock {meaning['clock']!r} is not one of {clocks}", field="units"
            ) from None
        try:
            unit = Unit(str(meaning["unit"]))
        except ValueError:
            raise InvalidInput(
                f"unit {word!r}: unit {meaning['unit']!r} is not one of {unit_names}",
                field="units",
            ) from None
        result[word] = UnitMeaning(clock, unit)
    return result


@dataclass(frozen=True, slots=True)
class FilingRow:
    """A filing-standard row as the case loop uses it: the texts and the parsed time limit.

    ``active`` is False for a row a later import retired; cases filed against it still read it,
    new cases must not be filed against it.
    """

    id: int
    minor_id: int
    family: Family
    minor_code: str
    minor_name: str
    position: int
    filing_criterion: str
    closing_criterion: str
    limit: TimeLimit | None
    handling_units: str
    supervising_authority: str
    default_department_id: int | None
    active: bool
