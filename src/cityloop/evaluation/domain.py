"""Pure evaluation formulas: ratios, the composite index, grades, periods, the three rates, draws.

No I/O, no clock, no database: the engine counts, these functions turn counts into the numbers a
bureau publishes. Keeping them here means every formula of DOMAIN.md section 5 is tested on
hand-computed numbers and documented once (docs/evaluation.md quotes this module).

A ratio whose denominator is zero is ``None``, shown as "—": "nothing was due" is not "0 % done"
(that would punish a department with no cases) and not "100 %" (that would reward it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar
from zoneinfo import ZoneInfo

from cityloop.errors import InvalidInput

K = TypeVar("K")

DASH = "—"
VOLUME_SCORE = "volume_score"


# --------------------------------------------------------------------------------------------
# Indicators: every number the engine produces, with its Chinese name and its formula
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Indicator:
    """A count, or a rate = numerator / denominator (both names of counts)."""

    key: str
    label_zh: str
    numerator: str | None = None
    denominator: str | None = None
    lower_is_better: bool = False

    @property
    def is_rate(self) -> bool:
        return self.numerator is not None


def _count(key: str, label: str) -> Indicator:
    return Indicator(key, label)


def _rate(key: str, label: str, num: str, den: str, *, lower: bool = False) -> Indicator:
    return Indicator(key, label, num, den, lower)


_ALL: tuple[Indicator, ...] = (
    # -- cases: departments, territories and the city --------------------------------------
    _count("filed", "立案数"),
    _count("due_disposal", "应处置数"),
    _count("disposed", "处置数"),
    _count("disposed_on_time", "按期处置数"),
    _count("overdue", "超期数"),
    _rate("disposal_rate", "处置率", "disposed", "due_disposal"),
    _rate("on_time_disposal_rate", "按期处置率", "disposed_on_time", "due_disposal"),
    _count("due_closing", "应结案数"),
    _count("closed", "结案数"),
    _count("closed_on_time", "按期结案数"),
    _rate("closing_rate", "结案率", "closed", "due_closing"),
    _rate("on_time_closing_rate", "按期结案率", "closed_on_time", "due_closing"),
    _count("disposals", "处置反馈数"),
    _count("reworked", "返工数"),
    _rate("rework_rate", "返工率", "reworked", "disposals", lower=True),
    _count("rated", "回访评价数"),
    _count("satisfied", "满意数"),
    _count("basically_satisfied", "基本满意数"),
    _rate("satisfaction_rate", "满意率", "satisfaction_points", "rated"),
    _count("satisfaction_points", "满意得分"),
    _count("audited", "抽查已判定数"),
    _count("audit_passed", "抽查通过数"),
    _rate("audit_pass_rate", "抽查通过率", "audit_passed", "audited"),
    # -- inspectors -------------------------------------------------------------------------
    _count("reports", "上报数"),
    _count("valid_reports", "有效上报数"),
    _rate("valid_report_rate", "有效上报率", "valid_reports", "reports"),
    _count("beat_filed", "责任片区立案数"),
    _count("missed", "漏报数"),
    _rate("missed_report_rate", "漏报率", "missed", "beat_filed", lower=True),
    _count("verifications", "核实数"),
    _count("verified_on_time", "按时核实数"),
    _rate("on_time_verify_rate", "按时核实率", "verified_on_time", "verifications"),
    _count("checks", "核查数"),
    _count("checked_on_time", "按时核查数"),
    _rate("on_time_check_rate", "按时核查率", "checked_on_time", "checks"),
    # -- intake operators -------------------------------------------------------------------
    _count("verify_sends", "派发核实数"),
    _count("verify_sends_on_time", "按时派发核实数"),
    _rate("on_time_send_verify_rate", "按时派发核实率", "verify_sends_on_time", "verify_sends"),
    _count("check_sends", "派发核查数"),
    _count("check_sends_on_time", "按时派发核查数"),
    _rate("on_time_send_check_rate", "按时派发核查率", "check_sends_on_time", "check_sends"),
    _count("callbacks", "回访数"),
    # -- shift supervisors ------------------------------------------------------------------
    _count("filings", "立案操作数"),
    _count("filed_on_time", "按时立案数"),
    _rate("on_time_filing_rate", "按时立案率", "filed_on_time", "filings"),
    _count("filed_not_voided", "准确立案数"),
    _rate("accurate_filing_rate", "准确立案率", "filed_not_voided", "filings"),
    _count("closings", "结案操作数"),
    _count("closings_on_time", "按时结案数"),
    _rate("on_time_close_rate", "按时结案率", "closings_on_time", "closings"),
    # -- dispatchers ------------------------------------------------------------------------
    _count("dispatches", "派遣数"),
    _count("dispatched_on_time", "按时派遣数"),
    _rate("on_time_dispatch_rate", "按时派遣率", "dispatched_on_time", "dispatches"),
    _count("dispatched_correctly", "准确派遣数"),
    _rate("accurate_dispatch_rate", "准确派遣率", "dispatched_correctly", "dispatches"),
)

INDICATORS: Mapping[str, Indicator] = {i.key: i for i in _ALL}
"""Every indicator by key. Rates name their numerator and denominator counts."""

RATE_KEYS: tuple[str, ...] = tuple(i.key for i in _ALL if i.is_rate)


# --------------------------------------------------------------------------------------------
# Ratios and display
# --------------------------------------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when nothing was due (denominator 0)."""
    if denominator < 0 or numerator < 0:
        raise InvalidInput("counts cannot be negative", field="denominator")
    if denominator == 0:
        return None
    return numerator / denominator


def rates_of(counts: Mapping[str, float]) -> dict[str, float | None]:
    """Every rate of ``INDICATORS`` computable from ``counts`` (missing counts are 0)."""
    out: dict[str, float | None] = {}
    for key in RATE_KEYS:
        spec = INDICATORS[key]
        assert spec.numerator is not None and spec.denominator is not None
        if spec.denominator in counts or spec.numerator in counts:
            out[key] = ratio(counts.get(spec.numerator, 0), counts.get(spec.denominator, 0))
    return out


def fmt_pct(value: float | None, digits: int = 2) -> str:
    """98.6 % style for people: "98.60%"; None is "—"."""
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f}%"


def fmt_score(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_delta(value: float | None, digits: int = 2) -> str:
    """A signed change in points ("+1.25", "-0.50"); None (no comparison) is "—"."""
    if value is None:
        return DASH
    return f"{value:+.{digits}f}"


# --------------------------------------------------------------------------------------------
# Composite index (综合指标值) and grades
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """One composite component as the pure formula needs it (config.Component, flattened)."""

    indicator: str
    weight: float
    invert: bool = False


def volume_scores(volumes: Mapping[K, float]) -> dict[K, float | None]:
    """Each subject's volume as 0-100 against the busiest peer (the vendor's 工作量得分) [U].

    All-zero volumes give None: nobody worked, so nobody is scored on volume.
    """
    top = max(volumes.values(), default=0)
    return {k: (None if top <= 0 else 100.0 * v / top) for k, v in volumes.items()}


def composite(values: Mapping[str, float | None], terms: Sequence[Term]) -> float | None:
    """Σ weight × score over the terms, score = 100 × rate (or 100 × (1 − rate) if inverted).

    ``volume_score`` is already 0-100. A term whose rate is None (nothing due) is left out and
    the remaining weights are scaled back up to 1, so a department with no rework checks is
    graded on what it did have; with no rate available (volume alone does not count) the
    composite is None ("—").
    """
    total_weight = 0.0
    total = 0.0
    rated = False
    for term in terms:
        value = values.get(term.indicator)
        if value is None or term.weight == 0:
            continue
        rated = rated or term.indicator != VOLUME_SCORE
        score = value if term.indicator == VOLUME_SCORE else 100.0 * value
        if term.invert:
            score = 100.0 - score
        total += term.weight * score
        total_weight += term.weight
    if total_weight == 0 or not rated:
        return None  # volume alone is no performance: a subject with nothing due is not graded
    return total / total_weight


def apply_deduction(
    score: float | None, failures: int, per_failure: float, cap: float
) -> float | None:
    """The composite less ``per_failure`` points per failed audit, at most ``cap``, floor 0."""
    if score is None:
        return None
    return max(0.0, score - min(cap, per_failure * failures))


def grade(score: float | None, bands: Sequence[tuple[str, float]], lowest: str = "E") -> str:
    """The first band whose minimum the score reaches (bands highest first); below all, lowest.

    DOMAIN.md: A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, E. No score: "—".
    """
    if score is None:
        return DASH
    for name, minimum in sorted(bands, key=lambda b: -b[1]):
        if score >= minimum - 1e-9:
            return name
    return lowest


@dataclass(frozen=True, slots=True)
class Ranked(Generic[K]):
    key: K
    score: float | None
    rank: int | None  # 1 = best; None for no score


def rank(scores: Mapping[K, float | None], tiebreak: Mapping[K, str]) -> list[Ranked[K]]:
    """Competition ranking (1, 2, 2, 4) by score, highest first; unscored last, unranked.

    Ties share a rank and are listed by ``tiebreak`` (a name or code) so the order is stable.
    """
    scored = sorted(
        ((k, s) for k, s in scores.items() if s is not None),
        key=lambda ks: (-round(ks[1] or 0.0, 6), tiebreak.get(ks[0], str(ks[0]))),
    )
    out: list[Ranked[K]] = []
    previous: float | None = None
    current_rank = 0
    for position, (key, score) in enumerate(scored, start=1):
        assert score is not None
        if previous is None or round(score, 6) != round(previous, 6):
            current_rank = position
        previous = score
        out.append(Ranked(key, score, current_rank))
    unscored = sorted(
        (k for k, s in scores.items() if s is None), key=lambda k: tiebreak.get(k, str(k))
    )
    out.extend(Ranked(k, None, None) for k in unscored)
    return out


def delta(current: float | None, previous: float | None) -> float | None:
    """current − previous, or None if either is missing (no fabricated comparison)."""
    if current is None or previous is None:
        return None
    return current - previous


# --------------------------------------------------------------------------------------------
# The 12345 three rates (三率)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreeRates:
    """响应率, 解决率, 满意率 and their weighted composite, as 0-1 rates (None: nothing owed)."""

    owed: int  # 应回访 (closed hotline cases of the assessment month)
    contacted: int
    solved: int
    rated: int
    satisfied: int
    basically_satisfied: int
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    composite: float | None  # 0-100


def satisfaction_rate(
    satisfied: int, basically_satisfied: int, rated: int, factor: float = 0.9
) -> float | None:
    """(满意 + factor × 基本满意) / rated callbacks; DOMAIN.md's factor is 0.9."""
    if rated == 0:
        return None
    return (satisfied + factor * basically_satisfied) / rated


def three_rates(
    *,
    owed: int,
    contacted: int,
    solved: int,
    rated: int,
    satisfied: int,
    basically_satisfied: int,
    weights: tuple[float, float, float] = (0.1, 0.5, 0.4),
    factor: float = 0.9,
) -> ThreeRates:
    """响应率 = contacted / owed, 解决率 = solved / owed, 满意率 = (S + 0.9 B) / rated.

    Composite = 100 × (w₁ 响应率 + w₂ 解决率 + w₃ 满意率), the default weights 0.1 / 0.5 / 0.4; a
    missing rate drops out and the remaining weights are scaled back to 1 (as ``composite``).
    """
    response = ratio(contacted, owed)
    resolution = ratio(solved, owed)
    satisfaction = satisfaction_rate(satisfied, basically_satisfied, rated, factor)
    score = composite(
        {"r": response, "s": resolution, "m": satisfaction},
        [Term("r", weights[0]), Term("s", weights[1]), Term("m", weights[2])],
    )
    return ThreeRates(
        owed=owed,
        contacted=contacted,
        solved=solved,
        rated=rated,
        satisfied=satisfied,
        basically_satisfied=basically_satisfied,
        response_rate=response,
        resolution_rate=resolution,
        satisfaction_rate=satisfaction,
        composite=score,
    )


# --------------------------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval [start, end) of aware instants, with the label people use."""

    label: str
    start: dt.datetime
    end: dt.datetime

    def utc_naive(self) -> tuple[dt.datetime, dt.datetime]:
        """The bounds as naive UTC, the form the columnar engine stores instants in."""
        return (
            self.start.astimezone(dt.UTC).replace(tzinfo=None),
            self.end.astimezone(dt.UTC).replace(tzinfo=None),
        )


def parse_month(text: str) -> tuple[int, int]:
    """ "2026-10" → (2026, 10); anything else is refused with the expected form."""
    parts = text.strip().split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise InvalidInput(
            f"cannot read month {text!r}: expected YYYY-MM, e.g. 2026-10", field="month"
        )
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12:
        raise InvalidInput(f"month {text!r}: the month must be 01-12", field="month")
    return year, month


# The years a month asked for may fall in. Its comparisons (a year and a month before) and
# its end (the next month) must stay within what dates can hold: "0001-01" would look a year
# back to year 0.
MONTH_YEARS: Final = (1970, 2999)


def parse_month_label(text: str) -> str:
    """A validated "YYYY-MM" label (zero-padded), of a year in ``MONTH_YEARS``."""
    year, month = parse_month(text)
    if not MONTH_YEARS[0] <= year <= MONTH_YEARS[1]:
        raise InvalidInput(
            f"month {text!r}: the year must be {MONTH_YEARS[0]}-{MONTH_YEARS[1]}", field="month"
        )
    return month_label(year, month)


def shift_month(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def month_label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_period(month: str, tz: str = "Asia/Shanghai", start_day: int = 1) -> Period:
    """The assessment month ``month`` in local time.

    ``start_day`` 1 is the calendar month. With 19 (12345 practice [L]) "2026-10" runs from
    2026-09-19 00:00 to 2026-10-19 00:00 local, i.e. the 19th to the 18th inclusive.
    """
    if not 1 <= start_day <= 28:
        raise InvalidInput("the month's start day must be 1-28", field="month_start_day")
    year, mon = parse_month(month)
    zone = ZoneInfo(tz)
    if start_day == 1:
        sy, sm = year, mon
        ey, em = shift_month(year, mon, 1)
    else:
        sy, sm = shift_month(year, mon, -1)
        ey, em = year, mon
    start = dt.datetime(sy, sm, start_day, tzinfo=zone)
    end = dt.datetime(ey, em, start_day, tzinfo=zone)
    return Period(month_label(year, mon), start, end)


def previous_month(month: str) -> str:
    return month_label(*shift_month(*parse_month(month), -1))


def same_month_last_year(month: str) -> str:
    return month_label(*shift_month(*parse_month(month), -12))


def last_complete_month(now: dt.datetime, tz: str = "Asia/Shanghai") -> str:
    """The latest calendar month that has ended at ``now`` in local time (the default month of
    the evaluation pages): on 4 December it is November."""
    local = now.astimezone(ZoneInfo(tz))
    return month_label(*shift_month(local.year, local.month, -1))


# --------------------------------------------------------------------------------------------
# 双随机: the random draw, reproducible by anyone from the published seed
# --------------------------------------------------------------------------------------------


def draw_key(seed: int, *parts: object) -> int:
    """A 64-bit pseudo-random key of (seed, parts): SHA-256, so the draw can be recomputed.

    The audit's credibility rests on nobody steering it; publishing the seed lets anyone check
    that the cases and auditors were the ones this function picks, on any Python version.
    """
    text = ":".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def draw_cases(seed: int, department_id: int, case_ids: Iterable[int], k: int) -> list[int]:
    """The ``k`` cases of one department with the smallest draw keys (a seeded random sample)."""
    ordered = sorted(set(case_ids), key=lambda c: (draw_key(seed, "case", department_id, c), c))
    return sorted(ordered[:k])


def pick_auditor(
    seed: int, case_id: int, eligible: Iterable[int], involved: Iterable[int]
) -> int | None:
    """A random eligible auditor who never acted on the case, or None if there is none."""
    excluded = set(involved)
    pool = sorted(u for u in set(eligible) if u not in excluded)
    if not pool:
        return None
    return min(pool, key=lambda u: (draw_key(seed, "auditor", case_id, u), u))


__all__ = [
    "DASH",
    "INDICATORS",
    "MONTH_YEARS",
    "RATE_KEYS",
    "VOLUME_SCORE",
    "Indicator",
    "Period",
    "Ranked",
    "Term",
    "ThreeRates",
    "apply_deduction",
    "composite",
    "delta",
    "draw_cases",
    "draw_key",
    "fmt_delta",
    "fmt_pct",
    "fmt_score",
    "grade",
    "last_complete_month",
    "month_period",
    "parse_month",
    "parse_month_label",
    "pick_auditor",
    "previous_month",
    "rank",
    "rates_of",
    "ratio",
    "same_month_last_year",
    "satisfaction_rate",
    "shift_month",
    "three_rates",
    "volume_scores",
]
