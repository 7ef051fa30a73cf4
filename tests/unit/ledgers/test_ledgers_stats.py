"""Statistics: totals, progress by aspect / unit / stage, overdue, relapses, rates, hazards and
the progress timeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from tests.unit.ledgers.ledger_builders import NOW, haidian, hazard_survey, tiny

from cityloop.ledgers.domain import (
    NO_RATE,
    EventFacts,
    GroupFacts,
    ItemFacts,
    ItemStatus,
    LedgerFacts,
    LedgerKind,
    LedgerSnapshot,
    SignoffState,
    format_rate,
    hazard_stats,
    overdue_items,
    progress_by_stage,
    progress_by_top_group,
    progress_by_unit,
    progress_timeline,
    rate,
    totals,
)

S = SignoffState
UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("num", "den", "text"),
    [
        (166, 182, "91.2%"),
        (28, 37, "75.7%"),
        (1, 3, "33.3%"),
        (2, 3, "66.7%"),
        (1, 400, "0.3%"),  # 0.25 rounds half up, not to even
        (1, 8, "12.5%"),
        (0, 5, "0.0%"),
        (5, 5, "100.0%"),
        (0, 0, NO_RATE),
        (3, 0, NO_RATE),
    ],
)
def test_rates_round_half_up_to_one_decimal_and_a_zero_denominator_is_a_dash(
    num: int, den: int, text: str
) -> None:
    assert format_rate(num, den) == text


def test_rate_is_a_decimal_or_none() -> None:
    assert rate(166, 182) == Decimal("91.2")
    assert rate(0, 0) is None
    assert NO_RATE == "—"


def test_haidian_totals_3_aspects_37_problems_100_measures_28_done() -> None:
    t = totals(haidian(), now=NOW)
    assert (t.groups_top, t.groups_leaf, t.items) == (3, 37, 100)
    assert (t.groups_done, t.groups_remaining) == (28, 9)
    # 28 done problems: 26 x 3 + 2 x 2 = 82 measures; 9 others have their first measure signed.
    assert t.signed_off == 82 + 9
    assert t.signoff_rate == "91.0%"


def test_progress_by_aspect_counts_problems_and_measures_of_each_aspect() -> None:
    rows = progress_by_top_group(haidian(), now=NOW)
    assert [r.groups for r in rows] == [20, 14, 3]
    assert [r.groups_done for r in rows] == [20, 8, 0]
    assert [r.items for r in rows] == [60, 34, 6]
    assert sum(r.signed_off for r in rows) == 91
    assert rows[0].signoff_rate == "100.0%"


def test_progress_by_unit_keeps_first_appearance_order_and_puts_no_unit_last() -> None:
    ledger = LedgerFacts(id=1, kind=LedgerKind.CHECKLIST, title="清单")
    groups = (GroupFacts(1, None, 1, 1, "分类"),)
    items = (
        ItemFacts(1, 1, 1, "a", unit_id=5, unit_name="环卫科", state=S.SIGNED_OFF),
        ItemFacts(2, 1, 2, "b"),
        ItemFacts(3, 1, 3, "c", unit_id=2, unit_name="市容科"),
        ItemFacts(4, 1, 4, "d", unit_id=5, unit_name="环卫科"),
    )
    rows = progress_by_unit(LedgerSnapshot(ledger, groups, items), now=NOW)
    assert [(r.label, r.items, r.signed_off) for r in rows] == [
        ("环卫科", 2, 1),
        ("市容科", 1, 0),
        ("未指定责任单位", 1, 0),
    ]
    assert rows[-1].key == ""


def test_progress_by_stage_lists_every_stage_of_the_ledger_in_order() -> None:
    rows = progress_by_stage(haidian(), now=NOW)
    assert [r.label for r in rows] == ["前期准备", "全面推进", "总结评估"]
    assert [r.items for r in rows] == [37, 37, 26]
    empty = progress_by_stage(tiny([[S.OPEN]]), now=NOW)
    assert [(r.label, r.items, r.signoff_rate) for r in empty][:3] == [
        ("前期准备", 0, NO_RATE),
        ("全面推进", 0, NO_RATE),
        ("总结评估", 0, NO_RATE),
    ]
    assert empty[-1].label == "未分阶段"


def test_relapse_statistics_count_events_items_and_current_relapses() -> None:
    snapshot = tiny(
        [[S.SIGNED_OFF, S.RELAPSED], [S.SIGNED_OFF], [S.OPEN]],
        relapses=[[2, 1], [0], [0]],
    )
    t = totals(snapshot, now=NOW)
    assert t.relapses == 3  # an item that relapsed twice counts twice
    assert t.items_relapsed == 2
    assert t.relapsed_now == 1
    assert t.ever_signed_off == 3
    assert t.relapse_rate == "66.7%"
    assert t.groups_done == 1  # the relapsed measure keeps problem 1 open
    row = progress_by_top_group(snapshot, now=NOW)[0]
    assert (row.relapses, row.relapsed_now) == (3, 1)


def test_relapse_rate_is_a_dash_before_anything_was_signed_off() -> None:
    assert totals(tiny([[S.OPEN]]), now=NOW).relapse_rate == NO_RATE


def test_pending_counts_submitted_and_reviewed() -> None:
    t = totals(tiny([[S.SUBMITTED, S.REVIEWED, S.RETURNED]]), now=NOW)
    assert t.pending == 2
    assert t.by_state[S.RETURNED] == 1


def _due(item_id: int, due: dt.datetime | None, state: SignoffState = S.OPEN) -> ItemFacts:
    return ItemFacts(item_id, 11, item_id, f"m{item_id}", state=state, due_at=due)


def test_overdue_means_past_the_deadline_and_not_signed_off() -> None:
    base = tiny([[S.OPEN]])
    items = (
        _due(1, NOW - dt.timedelta(days=3)),
        _due(2, NOW - dt.timedelta(days=9), S.SUBMITTED),  # waiting for review is still late
        _due(3, NOW - dt.timedelta(days=9), S.SIGNED_OFF),
        _due(4, NOW + dt.timedelta(days=1)),
        _due(5, None),  # 长期坚持: never overdue
        _due(6, NOW),  # due exactly now: overdue
    )
    snapshot = LedgerSnapshot(base.ledger, base.groups, items)
    assert [i.id for i in overdue_items(snapshot, now=NOW)] == [2, 1, 6]
    assert totals(snapshot, now=NOW).overdue == 3


def test_a_department_share_keeps_only_its_items_and_their_groups() -> None:
    share = haidian().restricted_to([1001, 1002])
    assert [g.level for g in share.groups] == [1, 2]
    assert totals(share, now=NOW).items == 2


def test_hazard_survey_213_inspections_182_found_166_rectified_91_2_percent() -> None:
    stats = hazard_stats(hazard_survey())
    assert (stats.inspections, stats.found, stats.rectified) == (213, 182, 166)
    assert stats.rate == "91.2%"
    assert stats.sentence() == "累计开展检查213次，发现一般安全隐患182项，已整改166项，整改率91.2%"


def test_hazard_stats_since_a_date_and_with_major_hazards() -> None:
    snapshot = hazard_survey()
    since = hazard_stats(snapshot, since=dt.date(2023, 4, 18))
    assert since.inspections == 213
    assert since.sentence().startswith("4月18日以来，累计开展检查213次")
    later = hazard_stats(snapshot, since=dt.date(2023, 5, 17))
    held = [g.held_on for g in snapshot.groups if g.held_on is not None]
    assert later.inspections == sum(1 for day in held if day >= dt.date(2023, 5, 17))
    major = LedgerSnapshot(
        snapshot.ledger,
        snapshot.groups,
        tuple(
            ItemFacts(**{**_fields(i), "hazard_level": "重大"}) if i.id == 10_001 else i
            for i in snapshot.items
        ),
    )
    text = hazard_stats(major).sentence()
    assert "发现安全隐患182项（其中重大隐患1项）" in text


def test_hazard_stats_with_nothing_found_show_a_dash() -> None:
    ledger = LedgerFacts(id=9, kind=LedgerKind.HAZARD, title="空")
    stats = hazard_stats(LedgerSnapshot(ledger, (), ()))
    assert stats.rate == NO_RATE
    assert stats.sentence() == "累计开展检查0次，发现安全隐患0项，已整改0项，整改率—"


def _fields(item: ItemFacts) -> dict[str, object]:
    return {name: getattr(item, name) for name in item.__slots__}


def _at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2023, 3, day, hour, tzinfo=SHANGHAI)


def test_the_timeline_replays_events_per_local_day_and_relapses_go_back_out() -> None:
    snapshot = tiny([[S.SIGNED_OFF, S.SIGNED_OFF], [S.RELAPSED]])
    events = [
        EventFacts(1, _at(1), S.SUBMITTED),
        EventFacts(1, _at(2), S.SIGNED_OFF),
        EventFacts(3, _at(2, 23), S.SIGNED_OFF),  # 23:00 Beijing is still 3月2日
        EventFacts(2, _at(5), S.SIGNED_OFF),
        EventFacts(3, _at(8), S.RELAPSED),
    ]
    points = progress_timeline(snapshot, events, tz=SHANGHAI, until=dt.date(2023, 3, 10))
    assert [(p.day.day, p.signed_off, p.groups_done) for p in points] == [
        (1, 0, 0),
        (2, 2, 1),
        (5, 3, 2),
        (8, 2, 1),
        (10, 2, 1),
    ]


def test_the_timeline_uses_the_city_timezone_for_the_day() -> None:
    snapshot = tiny([[S.SIGNED_OFF]])
    late = dt.datetime(2023, 3, 1, 17, 30, tzinfo=UTC)  # 3月2日 01:30 in Beijing
    points = progress_timeline(snapshot, [EventFacts(1, late, S.SIGNED_OFF)], tz=SHANGHAI)
    assert points[0].day == dt.date(2023, 3, 2)


def test_an_empty_timeline_is_empty_or_one_point_today() -> None:
    snapshot = tiny([[S.OPEN]])
    assert progress_timeline(snapshot, [], tz=SHANGHAI) == []
    points = progress_timeline(snapshot, [], tz=SHANGHAI, until=dt.date(2023, 3, 1))
    assert [(p.signed_off, p.groups_done) for p in points] == [(0, 0)]


def test_statuses_are_counted() -> None:
    t = totals(haidian(), now=NOW)
    assert t.by_status[ItemStatus.DONE] == 91
    assert t.by_status[ItemStatus.IN_PROGRESS] == 9
