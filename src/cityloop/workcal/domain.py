"""Pure working-time rules: time limits and their written forms.

No I/O here. The calendar engine (deadlines, elapsed working time, lights) lives beside this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from cityloop.errors import InvalidInput


class Clock(StrEnum):
    """How time is counted against a limit."""

    URGENT = "urgent"  # continuous: nights, weekends and holidays count (紧急工作时/日)
    WORKING = "working"  # only working time of working days counts (工作时, 工作日, 小时, 天)
    CALENDAR = "calendar"  # continuous calendar time (自然日)


class Unit(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class UnitMeaning:
    clock: Clock
    unit: Unit


# How a written unit maps to a clock and a unit. Configuration, not law: cities differ. The
# default follows the foundation issue: 紧急工作时/日 are urgent (continuous), 小时 and 工作时
# are working hours, 天 and 工作日 are working days, 自然日 is calendar days.
DEFAULT_UNIT_MAP: Mapping[str, UnitMeaning] = {
    "紧急工作时": UnitMeaning(Clock.URGENT, Unit.HOUR),
    "紧急小时": UnitMeaning(Clock.URGENT, Unit.HOUR),
    "紧急工作日": UnitMeaning(Clock.URGENT, Unit.DAY),
    "工作时": UnitMeaning(Clock.WORKING, Unit.HOUR),
    "工作小时": UnitMeaning(Clock.WORKING, Unit.HOUR),
    "小时": UnitMeaning(Clock.WORKING, Unit.HOUR),
    "工作日": UnitMeaning(Clock.WORKING, Unit.DAY),
    "天": UnitMeaning(Clock.WORKING, Unit.DAY),
    "日": UnitMeaning(Clock.WORKING, Unit.DAY),
    "自然日": UnitMeaning(Clock.CALENDAR, Unit.DAY),
    "分钟": UnitMeaning(Clock.WORKING, Unit.MINUTE),
    "工作分钟": UnitMeaning(Clock.WORKING, Unit.MINUTE),
    "紧急分钟": UnitMeaning(Clock.URGENT, Unit.MINUTE),
}


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """A time limit such as "2紧急工作时": an amount of a unit on a clock.

    ``text`` keeps the city's written form so an export reproduces the workbook exactly;
    ``remark`` keeps trailing words some workbooks add ("1紧急工作时制止").
    """

    amount: int
    unit: Unit
    clock: Clock
    text: str = ""
    remark: str = ""

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise InvalidInput(f"a time limit must be positive, got {self.amount}", field="limit")

    def label(self) -> str:
        return self.text or f"{self.amount} {self.clock.value} {self.unit.value}(s)"


_LIMIT_RE = re.compile(r"^\s*(\d+)\s*([^\d\s]+?)\s*$")


def parse_time_limit(
    text: str, unit_map: Mapping[str, UnitMeaning] = DEFAULT_UNIT_MAP
) -> TimeLimit:
    """Parse a written time limit ("2紧急工作时", "15工作日", "4小时", "1紧急工作时制止").

    The longest known unit that the text starts with wins, so "紧急工作时" is not read as
    "紧急" + "工作时". Words after the unit are kept as a remark. Raises ``InvalidInput`` with a
    sentence naming the text when it cannot be read.
    """
    cleaned = text.strip().replace("\u3000", "")
    match = _LIMIT_RE.match(cleaned)
    if match is None:
        raise InvalidInput(
            f"cannot read time limit {text!r}: expected a whole number followed by a unit "
            f"such as 工作日, 工作时, 小时, 天, 自然日 or 紧急工作时",
            field="limit",
        )
    amount = int(match.group(1))
    rest = match.group(2)
    for written in sorted(unit_map, key=len, reverse=True):
        if rest.startswith(written):
            meaning = unit_map[written]
            if amount <= 0:
                raise InvalidInput(f"time limit {text!r} must be positive", field="limit")
            return TimeLimit(
                amount=amount,
                unit=meaning.unit,
                clock=meaning.clock,
                text=cleaned,
                remark=rest[len(written) :].strip(),
            )
    raise InvalidInput(
        f"cannot read time limit {text!r}: unknown unit {rest!r} "
        f"(known units: {', '.join(sorted(unit_map, key=len))})",
        field="limit",
    )
