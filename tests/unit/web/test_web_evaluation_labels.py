"""The evaluation pages name indicators and subjects as the evaluation domain does."""

from __future__ import annotations

from cityloop.evaluation.config import SolvedRule, Subject
from cityloop.evaluation.domain import INDICATORS, RATE_KEYS, VOLUME_SCORE
from cityloop.web import labels
from cityloop.web.i18n import Translator


def test_every_rate_a_formula_may_weigh_has_a_label_reading_as_the_domains() -> None:
    assert set(RATE_KEYS) | {VOLUME_SCORE} <= set(labels.INDICATOR)
    zh, en = Translator("zh"), Translator("en")
    for key, (context, message) in labels.INDICATOR.items():
        if key != VOLUME_SCORE:
            assert zh.pgettext(context, message) == INDICATORS[key].label_zh, key
        assert en.pgettext(context, message) == message
    assert zh.pgettext(*labels.INDICATOR[VOLUME_SCORE]) == "业务量得分"


def test_every_subject_solved_rule_and_outcome_has_a_label() -> None:
    assert set(labels.SUBJECT) == set(Subject)
    assert set(labels.SOLVED_RULE) == set(SolvedRule)
    zh = Translator("zh")
    assert zh.pgettext(*labels.SUBJECT[Subject.DEPARTMENT]) == "专业部门"
    assert [zh.pgettext(*labels.AUDIT_OUTCOME[k]) for k in ("pass", "fail", "pending")] == [
        "通过",
        "未通过",
        "待判定",
    ]
