"""The pure formulas of the evaluation on hand-computed numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cityloop.errors import InvalidInput
from cityloop.evaluation import domain
from cityloop.evaluation.config import (
    EvaluationSettings,
    Subject,
    dump_settings,
    load_settings_file,
    parse_settings,
)
from cityloop.evaluation.domain import Term


def test_a_zero_denominator_is_none_and_shows_a_dash() -> None:
    assert domain.ratio(0, 0) is None
    assert domain.fmt_pct(domain.ratio(5, 0)) == "—"
    assert domain.fmt_pct(domain.ratio(0, 4)) == "0.00%"
    assert domain.fmt_pct(domain.ratio(493, 500)) == "98.60%"
    assert domain.fmt_score(None) == "—"
    assert domain.fmt_delta(None) == "—"
    assert domain.fmt_delta(1.254) == "+1.25"
    with pytest.raises(InvalidInput):
        domain.ratio(-1, 3)


def test_rates_of_counts() -> None:
    rates = domain.rates_of({"disposed": 3, "due_disposal": 4, "reworked": 0, "disposals": 0})
    assert rates["disposal_rate"] == 0.75
    assert rates["rework_rate"] is None
    assert "on_time_dispatch_rate" not in rates


def test_the_department_composite_of_domain_md() -> None:
    terms = [
        Term("volume_score", 0.1),
        Term("closing_rate", 0.3),
        Term("on_time_disposal_rate", 0.3),
        Term("rework_rate", 0.3, invert=True),
    ]
    values = {
        "volume_score": 50.0,
        "closing_rate": 0.9,
        "on_time_disposal_rate": 0.8,
        "rework_rate": 0.1,
    }
    assert domain.composite(values, terms) == pytest.approx(5 + 27 + 24 + 27)
    # Nothing due for rework checks: the other weights are scaled back up to 1.
    values["rework_rate"] = None
    assert domain.composite(values, terms) == pytest.approx((5 + 27 + 24) / 0.7)
    # Volume alone is no performance.
    assert domain.composite({"volume_score": 100.0}, terms) is None


def test_grades_use_the_bands_and_a_missing_score_is_a_dash() -> None:
    bands = [("A", 90), ("B", 75), ("C", 60), ("D", 40)]
    assert [domain.grade(s, bands) for s in (95, 90, 89.99, 75, 60, 40, 39.9, 0)] == [
        "A",
        "A",
        "B",
        "B",
        "C",
        "D",
        "E",
        "E",
    ]
    assert domain.grade(None, bands) == "—"


def test_ranking_shares_ties_and_puts_the_unscored_last() -> None:
    ranked = domain.rank({1: 80.0, 2: 90.0, 3: 80.0, 4: None}, {1: "b", 2: "a", 3: "a", 4: "z"})
    assert [(r.key, r.rank) for r in ranked] == [(2, 1), (3, 2), (1, 2), (4, None)]


def test_volume_scores() -> None:
    assert domain.volume_scores({1: 5.0, 2: 2.0}) == {1: 100.0, 2: 40.0}
    assert domain.volume_scores({1: 0.0}) == {1: None}


def test_three_rates() -> None:
    tr = domain.three_rates(
        owed=10, contacted=9, solved=8, rated=8, satisfied=5, basically_satisfied=2
    )
    assert tr.response_rate == 0.9
    assert tr.resolution_rate == 0.8
    assert tr.satisfaction_rate == pytest.approx((5 + 0.9 * 2) / 8)
    assert tr.composite == pytest.approx(100 * (0.1 * 0.9 + 0.5 * 0.8 + 0.4 * 6.8 / 8))
    empty = domain.three_rates(
        owed=0, contacted=0, solved=0, rated=0, satisfied=0, basically_satisfied=0
    )
    assert (empty.response_rate, empty.composite) == (None, None)


def test_months_and_the_19th_to_18th_assessment_month() -> None:
    p = domain.month_period("2026-10")
    assert (p.start.isoformat(), p.end.isoformat()) == (
        "2026-10-01T00:00:00+08:00",
        "2026-11-01T00:00:00+08:00",
    )
    assert p.utc_naive()[0] == dt.datetime(2026, 9, 30, 16, 0)
    h = domain.month_period("2026-01", start_day=19)
    assert (h.start.date().isoformat(), h.end.date().isoformat()) == ("2025-12-19", "2026-01-19")
    assert domain.previous_month("2026-01") == "2025-12"
    assert domain.same_month_last_year("2026-10") == "2025-10"
    for bad in ("2026-13", "26-10", "2026/10", ""):
        with pytest.raises(InvalidInput):
            domain.parse_month(bad)


def test_the_draw_is_reproducible_and_skips_involved_users() -> None:
    cases = list(range(1, 50))
    first = domain.draw_cases(123, 7, cases, 5)
    assert first == domain.draw_cases(123, 7, reversed(cases), 5)
    assert len(first) == 5 and first != domain.draw_cases(124, 7, cases, 5)
    assert domain.draw_cases(1, 7, [3, 4], 5) == [3, 4]
    for case_id in cases:
        picked = domain.pick_auditor(9, case_id, [1, 2, 3, 4], involved=[1, 2])
        assert picked in (3, 4)
    assert domain.pick_auditor(9, 1, [1, 2], involved=[1, 2]) is None


def test_settings_defaults_validation_and_files(tmp_path: Path) -> None:
    s = EvaluationSettings()
    assert [c.weight for c in s.composites[Subject.INSPECTOR]] == [0.4, 0.2, 0.2, 0.2]
    assert (s.grade_bands[0].grade, s.grade_bands[0].min_score) == ("A", 90)
    assert s.hotline.month_start_day == 19
    with pytest.raises(InvalidInput, match="add up to"):
        parse_settings(
            {"composites": {"dispatcher": [{"indicator": "accurate_dispatch_rate", "weight": 0.5}]}}
        )
    with pytest.raises(InvalidInput, match="unknown indicator"):
        parse_settings({"composites": {"dispatcher": [{"indicator": "nope", "weight": 1}]}})
    with pytest.raises(InvalidInput):
        parse_settings({"timezone": "Mars/Base"})
    changed = parse_settings({"on_time": {"grace_minutes": 30}, "lowest_grade": "F"})
    for fmt in ("toml", "json"):
        path = tmp_path / f"evaluation.{fmt}"
        path.write_text(dump_settings(changed, fmt), encoding="utf-8")
        assert load_settings_file(path) == changed
    bad = tmp_path / "evaluation.yaml"
    bad.write_text("x: 1", encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_settings_file(bad)
