"""The city's settings for the case loop, stored under the key ``cases`` (cityconfig)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from cityloop.cases.domain import Channel, LoopPolicy, Step
from cityloop.workcal.domain import parse_time_limit

SETTINGS_KEY = "cases"


class OutsidePolicy(StrEnum):
    REFUSE = "refuse"  # a point outside the city is refused with a clear error
    ACCEPT = "accept"  # accepted and flagged "outside jurisdiction"


# eGova defaults [L] for the four timed side steps; filing, dispatch and closing limits [U].
DEFAULT_STEP_LIMITS: dict[Step, str] = {
    Step.SEND_VERIFY: "30分钟",
    Step.VERIFY: "120分钟",
    Step.FILE: "60分钟",
    Step.DISPATCH: "30分钟",
    Step.SEND_CHECK: "30分钟",
    Step.CHECK: "120分钟",
    Step.CLOSE: "60分钟",
}


class CaseSettings(BaseModel):
    inspector_reports_skip_verification: bool = True
    public_reports_need_verification: bool = True
    max_extensions: int = Field(default=2, ge=0, le=10)
    max_suspensions: int = Field(default=1, ge=0, le=10)
    step_limits: dict[Step, str] = Field(default_factory=lambda: dict(DEFAULT_STEP_LIMITS))
    # Used when the chosen filing-standard row leaves its time limit empty [U].
    default_disposal_limit: str = "5工作日"
    feedback_requires_evidence: bool = True  # 处置反馈 must carry at least one photo
    code_prefix: str = Field(default="", max_length=8, pattern=r"^[A-Za-z0-9]*$")
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_attachments_per_action: int = Field(default=3, ge=1, le=20)
    outside_jurisdiction: OutsidePolicy = OutsidePolicy.REFUSE
    auto_urge_at_red: bool = True  # the worker urges an overdue step once

    @field_validator("step_limits")
    @classmethod
    def _limits_parse(cls, value: dict[Step, str]) -> dict[Step, str]:
        merged = dict(DEFAULT_STEP_LIMITS)
        merged.update(value)
        for step, text in merged.items():
            if step != Step.DISPOSE:
                parse_time_limit(text)  # raises InvalidInput naming the text
        return merged

    @field_validator("default_disposal_limit")
    @classmethod
    def _disposal_parses(cls, value: str) -> str:
        parse_time_limit(value)
        return value

    def policy(self) -> LoopPolicy:
        return LoopPolicy(
            inspector_reports_skip_verification=self.inspector_reports_skip_verification,
            public_reports_need_verification=self.public_reports_need_verification,
            max_extensions=self.max_extensions,
            max_suspensions=self.max_suspensions,
        )


__all__ = ["DEFAULT_STEP_LIMITS", "SETTINGS_KEY", "CaseSettings", "Channel", "OutsidePolicy"]
