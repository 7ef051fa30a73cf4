"""The city's evaluation settings: weights, grade bands, on-time rules, the 12345 rates, audits.

DOMAIN.md section 5 says "weights and formulas must be configuration, not code", so every number a
bureau argues about lives here, with DOMAIN.md's defaults, stored in ``city_setting`` under the
key ``evaluation`` (see ``cityloop.cityconfig``) and importable from / exportable to a TOML or
JSON file so a bureau can keep its assessment scheme (考核办法) under version control.

Marks as in DOMAIN.md: [L] one vendor's or city's practice, [U] our own reading, unconfirmed.
"""

from __future__ import annotations

import json
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cityloop.cases.domain import Channel
from cityloop.errors import InvalidInput
from cityloop.org.domain import Role

SETTINGS_KEY = "evaluation"


class Subject(StrEnum):
    """Who or what a composite index grades (one formula per subject)."""

    DEPARTMENT = "department"  # 专业部门 / 处置单位
    SUBDISTRICT = "subdistrict"  # 街道
    COMMUNITY = "community"  # 社区
    INSPECTOR = "inspector"  # 监督员
    INTAKE_OPERATOR = "intake_operator"  # 受理员
    SHIFT_SUPERVISOR = "shift_supervisor"  # 值班长
    DISPATCHER = "dispatcher"  # 派遣员


class Component(BaseModel):
    """One term of a composite: ``weight`` x score, score = 100 x rate (or 100 x (1 - rate)).

    ``indicator`` names a rate of ``domain.INDICATORS`` (e.g. ``on_time_disposal_rate``) or the
    pseudo-indicator ``volume_score`` (0-100, the subject's volume against the busiest peer).
    """

    model_config = ConfigDict(extra="forbid")

    indicator: str
    weight: float = Field(ge=0, le=1)
    invert: bool = False  # score 1 - rate: for rates where lower is better (返工率, 漏报率)


class GradeBand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: str = Field(min_length=1, max_length=4)
    min_score: float = Field(ge=0, le=100)


def _c(indicator: str, weight: float, invert: bool = False) -> Component:
    return Component(indicator=indicator, weight=weight, invert=invert)


def default_composites() -> dict[Subject, list[Component]]:
    """DOMAIN.md section 5's vendor weights [L]; the territorial and intake ones are ours [U]."""
    return {
        # inspector = 有效上报率 40 % + (1 − 漏报率) 20 % + 按时核实率 20 % + 按时核查率 20 %
        Subject.INSPECTOR: [
            _c("valid_report_rate", 0.4),
            _c("missed_report_rate", 0.2, invert=True),
            _c("on_time_verify_rate", 0.2),
            _c("on_time_check_rate", 0.2),
        ],
        # shift supervisor = 按时立案率 25 % + 准确立案率 40 % + 按时结案率 35 %
        Subject.SHIFT_SUPERVISOR: [
            _c("on_time_filing_rate", 0.25),
            _c("accurate_filing_rate", 0.40),
            _c("on_time_close_rate", 0.35),
        ],
        # dispatcher = volume score 20 % + 按时派遣率 40 % + 准确派遣率 40 %
        Subject.DISPATCHER: [
            _c("volume_score", 0.2),
            _c("on_time_dispatch_rate", 0.4),
            _c("accurate_dispatch_rate", 0.4),
        ],
        # department = volume score (≤ 10 points) + 结案率 30 % + 按时处置率 30 %
        #              + (1 − 返工率) 30 %
        Subject.DEPARTMENT: [
            _c("volume_score", 0.1),
            _c("closing_rate", 0.3),
            _c("on_time_disposal_rate", 0.3),
            _c("rework_rate", 0.3, invert=True),
        ],
        # [U] territories are judged on the same outcomes as departments, without volume.
        Subject.SUBDISTRICT: [
            _c("closing_rate", 0.35),
            _c("on_time_disposal_rate", 0.35),
            _c("rework_rate", 0.30, invert=True),
        ],
        Subject.COMMUNITY: [
            _c("closing_rate", 0.35),
            _c("on_time_disposal_rate", 0.35),
            _c("rework_rate", 0.30, invert=True),
        ],
        # [U] intake: sending verification and check tasks on time.
        Subject.INTAKE_OPERATOR: [
            _c("on_time_send_verify_rate", 0.5),
            _c("on_time_send_check_rate", 0.5),
        ],
    }


def default_bands() -> list[GradeBand]:
    return [
        GradeBand(grade="A", min_score=90),
        GradeBand(grade="B", min_score=75),
        GradeBand(grade="C", min_score=60),
        GradeBand(grade="D", min_score=40),
    ]


class OnTimeRule(BaseModel):
    """What counts as on time (按期/按时).

    A step is on time when the event that ends it happens at or before the deadline in force
    when it ended (the deadline recorded by the event before it, so approved extensions and
    suspensions are already in it) plus ``grace_minutes``.
    """

    model_config = ConfigDict(extra="forbid")

    grace_minutes: int = Field(
        default=0, ge=0, le=7 * 24 * 60
    )  # [U] 0: the deadline is the deadline
    # [L] Some cities count a disposal that needed an approved extension (延期) as late.
    extended_counts_as_on_time: bool = True


class SolvedRule(StrEnum):
    """What "solved" (已解决) means for the 12345 resolution rate (解决率) [U]."""

    CLOSED_NOT_DISSATISFIED = "closed_not_dissatisfied"  # closed, and the callback is not 不满意
    CLOSED_AND_SATISFIED = "closed_and_satisfied"  # closed, and 满意 or 基本满意 at callback
    CLOSED = "closed"  # closed (结案) is enough


class HotlineSettings(BaseModel):
    """The 12345 接诉即办 three rates (三率) [C names, L formulas]."""

    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] = Field(default_factory=lambda: [Channel.HOTLINE_12345])
    # The assessment month "2026-10" runs from the 19th of September 00:00 to the 18th of
    # October 24:00 (local time) [L]. 1 makes it the calendar month.
    month_start_day: int = Field(default=19, ge=1, le=28)
    response_weight: float = Field(default=0.1, ge=0, le=1)
    resolution_weight: float = Field(default=0.5, ge=0, le=1)
    satisfaction_weight: float = Field(default=0.4, ge=0, le=1)
    basically_satisfied_factor: float = Field(default=0.9, ge=0, le=1)
    solved_rule: SolvedRule = SolvedRule.CLOSED_NOT_DISSATISFIED

    @model_validator(mode="after")
    def _weights_add_up(self) -> HotlineSettings:
        # Checked here, not on the whole settings, so the error names the field "hotline".
        total = self.response_weight + self.resolution_weight + self.satisfaction_weight
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"hotline weights add up to {total:g}, they must add up to 1")
        return self


class AuditSettings(BaseModel):
    """双随机 audits of closed cases [C practice, L numbers]."""

    model_config = ConfigDict(extra="forbid")

    cases_per_department: int = Field(default=5, ge=1, le=1000)
    # Who may be drawn as an auditor. Never anyone who acted on the case (enforced in audit.py).
    auditor_roles: list[Role] = Field(
        default_factory=lambda: [Role.INSPECTOR, Role.SHIFT_SUPERVISOR, Role.LEADER]
    )
    # Points taken off a department's composite per failed audit of the month; 0 turns it off.
    deduction_per_failure: float = Field(default=0.0, ge=0, le=100)
    max_deduction: float = Field(default=10.0, ge=0, le=100)


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_classes: int = Field(default=10, ge=1, le=100)
    hotspot_cells: int = Field(default=10, ge=1, le=100)
    repeat_threshold: int = Field(default=3, ge=2, le=100)  # same cell + minor class, ≥ n a month
    repeat_rows: int = Field(default=50, ge=1, le=10_000)  # the largest repeat problems listed
    repeat_codes: int = Field(default=10, ge=1, le=1000)  # case codes shown per repeat problem
    overdue_rows: int = Field(default=50, ge=1, le=10_000)
    title: str = Field(default="数字城管月度考评报告", max_length=64)
    # A font file with CJK glyphs for the charts; empty: the first of the usual Noto/WenQuanYi
    # paths (Debian: fonts-noto-cjk). Without one the charts are left out, never drawn as boxes.
    cjk_font: str = ""


class EvaluationSettings(BaseModel):
    """Everything a bureau may tune about its evaluation."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Shanghai"  # month boundaries are local midnights
    on_time: OnTimeRule = Field(default_factory=OnTimeRule)
    # [L] 应结案数 − 缓办数: a disposal that was suspended (挂账) leaves the denominators.
    suspended_leave_denominator: bool = True
    # [U] A report still undecided (neither filed nor refused) at the period's end is left out
    # of 有效上报率 instead of counting as invalid.
    pending_reports_leave_denominator: bool = True
    composites: dict[Subject, list[Component]] = Field(default_factory=default_composites)
    grade_bands: list[GradeBand] = Field(default_factory=default_bands)
    lowest_grade: str = Field(default="E", min_length=1, max_length=4)
    hotline: HotlineSettings = Field(default_factory=HotlineSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)

    @field_validator("composites")
    @classmethod
    def _known_indicators(
        cls, value: dict[Subject, list[Component]]
    ) -> dict[Subject, list[Component]]:
        from cityloop.evaluation.domain import INDICATORS, VOLUME_SCORE

        merged = default_composites()
        merged.update(value)
        for subject, components in merged.items():
            for comp in components:
                if comp.indicator != VOLUME_SCORE and comp.indicator not in INDICATORS:
                    raise ValueError(
                        f"{subject.value}: unknown indicator '{comp.indicator}' "
                        f"(known: {', '.join(sorted([*INDICATORS, VOLUME_SCORE]))})"
                    )
                spec = INDICATORS.get(comp.indicator)
                if spec is not None and not spec.is_rate:
                    raise ValueError(
                        f"{subject.value}: '{comp.indicator}' is a count, not a rate; "
                        "a composite can only weigh rates and volume_score"
                    )
            total = sum(c.weight for c in components)
            if components and abs(total - 1.0) > 1e-6:
                raise ValueError(
                    f"{subject.value}: the weights add up to {total:g}, they must add up to 1"
                )
        return merged

    @field_validator("grade_bands")
    @classmethod
    def _bands_descend(cls, value: list[GradeBand]) -> list[GradeBand]:
        ordered = sorted(value, key=lambda b: -b.min_score)
        names = [b.grade for b in ordered]
        if len(set(names)) != len(names):
            raise ValueError("each grade may appear once")
        return ordered

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{value}'") from None
        return value


# --- file import / export -------------------------------------------------------------------


def parse_settings(data: dict[str, Any], *, source: str = "settings") -> EvaluationSettings:
    """Validate a mapping into settings; the first bad field is named in one sentence."""
    try:
        return EvaluationSettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        raise InvalidInput(f"{source}: {field}: {err['msg']}", field=field) from None


def read_settings_text(text: str, fmt: str = "toml", *, source: str = "settings") -> dict[str, Any]:
    """Read TOML or JSON text into a plain mapping (validated by the caller).

    A syntax error is named with ``source`` and the parser's line and column, field ``file``.
    """
    try:
        if fmt == "toml":
            return tomllib.loads(text)
        if fmt == "json":
            loaded = json.loads(text)
            if not isinstance(loaded, dict):
                raise InvalidInput(f"{source}: the top level must be an object", field="file")
            return loaded
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read {source}: {exc}", field="file") from None
    raise InvalidInput(f"unknown format '{fmt}' (toml or json)", field="format")


def read_settings_file(path: Path) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` file into a plain mapping (validated by the caller)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("toml", "json"):
        raise InvalidInput(f"{path.name}: expected a .toml or .json file", field="file")
    return read_settings_text(path.read_text(encoding="utf-8"), suffix, source=path.name)


def load_settings_file(path: Path) -> EvaluationSettings:
    return parse_settings(read_settings_file(path), source=path.name)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list) and all(not isinstance(v, dict) for v in value):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _toml_table(prefix: str, data: dict[str, Any], out: list[str]) -> None:
    scalars = {
        k: v
        for k, v in data.items()
        if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))
    }
    if prefix and scalars:
        out.append(f"\n[{prefix}]")
    for key, value in scalars.items():
        out.append(f"{key} = {_toml_value(value)}")
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _toml_table(name, value, out)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                out.append(f"\n[[{name}]]")
                for k, v in item.items():
                    out.append(f"{k} = {_toml_value(v)}")


def dump_settings(settings: EvaluationSettings, fmt: str = "toml") -> str:
    """The settings as TOML (default) or JSON text, complete (every default written out)."""
    data = settings.model_dump(mode="json")
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt != "toml":
        raise InvalidInput(f"unknown format '{fmt}' (toml or json)", field="format")
    out = ["# cityloop evaluation settings (综合评价配置); see docs/evaluation.md"]
    _toml_table("", data, out)
    return "\n".join(out) + "\n"


__all__ = [
    "SETTINGS_KEY",
    "AuditSettings",
    "Component",
    "EvaluationSettings",
    "GradeBand",
    "HotlineSettings",
    "OnTimeRule",
    "ReportSettings",
    "SolvedRule",
    "Subject",
    "dump_settings",
    "load_settings_file",
    "parse_settings",
    "read_settings_file",
    "read_settings_text",
]
