"""Pure ledger snapshots for the unit tests (no database).

``haidian()`` rebuilds the Haidian seed bulletin's figures: 3 aspects, 37 problems, 100
measures, 28 problems done (every measure signed off) and 9 still being pushed forward (each
with at least one measure signed off and one not, so a half-done problem never counts as done).
``hazard_survey()`` rebuilds the seed's hazard figures: 213 inspections, 182 hazards found,
166 rectified (91.2 %).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cityloop.ledgers.domain import (
    GroupFacts,
    ItemFacts,
    ItemStatus,
    LedgerFacts,
    LedgerKind,
    LedgerSnapshot,
    SignoffState,
    TextBlock,
)

UTC = dt.UTC
NOW = dt.datetime(2023, 5, 21, 4, 0, tzinfo=UTC)

HAIDIAN_ASPECTS = (
    "聚焦“三治五化”，不断提升城市管理和交通综合治理水平",
    "加强监督教育力度，规范工程和资金管理",
    "坚持问题导向，压紧压实整改责任",
)
# 37 problems: 20 + 14 + 3.
PROBLEMS_PER_ASPECT = (20, 14, 3)


def haidian_ledger(**overrides: object) -> LedgerFacts:
    values: dict[str, object] = {
        "id": 1,
        "kind": LedgerKind.RECTIFICATION,
        "title": "区城市管理委巡察整改台账",
        "subject": "区城市管理委党组",
        "authority": "海淀区委",
        "inspection_group": "海淀区委第四巡察组",
        "onsite_start": dt.date(2022, 7, 19),
        "onsite_end": dt.date(2022, 9, 23),
        "feedback_on": dt.date(2023, 2, 3),
        "bulletin_title": "中共北京市海淀区城市管理委员会党组关于向社会公开巡察整改情况的通报",
        "organisation": (
            TextBlock(
                "旗帜鲜明讲政治，压紧压实巡察整改责任",
                "区城市管理委党组坚持把巡察整改作为一项重要政治任务，及时成立整改工作领导小组，"
                "压实整改落实主体责任。",
            ),
            TextBlock(
                "细化整改措施",
                "2月14日，专题召开党组会，研究制定整改方案，细化整改措施，明确责任人和整改时限。",
            ),
        ),
        "next_steps": (
            TextBlock("强化思想认识", "进一步提高政治站位，引导党员干部克服“前紧后松”等错误认识。"),
            TextBlock("健全工作机制", "对已经完成的整改事项，坚持跟踪问效，防止问题反弹。"),
            TextBlock("强化跟踪问效", "对于未完成的整改事项，将继续实行清单化、销账式管理。"),
        ),
        "as_of": dt.date(2023, 5, 21),
        "issuer": "中共北京市海淀区城市管理委员会党组",
        "issued_on": dt.date(2023, 11, 3),
        "contact_phone": "88487410",
        "contact_mailbox": "北京市海淀区西四环北路11号，北京市海淀区城市管理委员会（南200乙）",
        "contact_postcode": "100195",
    }
    values.update(overrides)
    return LedgerFacts(**values)  # type: ignore[arg-type]


def haidian(ledger: LedgerFacts | None = None) -> LedgerSnapshot:
    """3 aspects, 37 problems, 100 measures; problems 1-28 done, 29-37 in progress."""
    groups: list[GroupFacts] = []
    items: list[ItemFacts] = []
    gid = 100
    iid = 1000
    problem_no = 0
    for a_pos, (title, count) in enumerate(
        zip(HAIDIAN_ASPECTS, PROBLEMS_PER_ASPECT, strict=True), 1
    ):
        gid += 1
        aspect_id = gid
        groups.append(
            GroupFacts(id=aspect_id, parent_id=None, level=1, position=a_pos, title=title)
        )
        for p_pos in range(1, count + 1):
            problem_no += 1
            gid += 1
            groups.append(
                GroupFacts(
                    id=gid,
                    parent_id=aspect_id,
                    level=2,
                    position=p_pos,
                    title=f"第{problem_no}项反馈问题整改不到位的问题",
                )
            )
            # 26 problems with 3 measures and 11 with 2: 78 + 22 = 100.
            measures = 3 if problem_no <= 26 else 2
            for m_pos in range(1, measures + 1):
                iid += 1
                done = problem_no <= 28 or m_pos == 1
                items.append(
                    ItemFacts(
                        id=iid,
                        group_id=gid,
                        position=m_pos,
                        content=f"问题{problem_no}的第{m_pos}条整改措施",
                        completion=f"已落实问题{problem_no}的第{m_pos}条措施" if done else "",
                        state=SignoffState.SIGNED_OFF if done else SignoffState.OPEN,
                        status=ItemStatus.DONE if done else ItemStatus.IN_PROGRESS,
                        unit_id=1 + iid % 3,
                        unit_name=("市容科", "环卫科", "交通科")[iid % 3],
                        stage=("前期准备", "全面推进", "总结评估")[m_pos - 1],
                        deadline_text="2023年6月30日",
                        due_on=dt.date(2023, 6, 30),
                        due_at=dt.datetime(2023, 6, 30, 16, 0, tzinfo=UTC),
                    )
                )
    return LedgerSnapshot(ledger or haidian_ledger(), tuple(groups), tuple(items))


def hazard_survey(*, first_day: dt.date = dt.date(2023, 4, 18)) -> LedgerSnapshot:
    """213 inspections, 182 hazards (一般), 166 signed off."""
    ledger = LedgerFacts(id=2, kind=LedgerKind.HAZARD, title="安全生产隐患排查治理台账")
    groups = []
    items = []
    hazard_no = 0
    for n in range(1, 214):
        groups.append(
            GroupFacts(
                id=n,
                parent_id=None,
                level=1,
                position=n,
                title=f"检查{n}",
                held_on=first_day + dt.timedelta(days=n % 30),
                place=f"企业{n}",
                inspector="张三",
            )
        )
        # Hazards on 182 of the 213 inspections, one each.
        if n <= 182:
            hazard_no += 1
            items.append(
                ItemFacts(
                    id=10_000 + hazard_no,
                    group_id=n,
                    position=1,
                    content=f"隐患{hazard_no}",
                    state=SignoffState.SIGNED_OFF if hazard_no <= 166 else SignoffState.OPEN,
                    hazard_class="燃气",
                    hazard_level="一般",
                )
            )
    return LedgerSnapshot(ledger, tuple(groups), tuple(items))


def tiny(
    states: Sequence[Sequence[SignoffState]],
    *,
    relapses: Sequence[Sequence[int]] | None = None,
    ledger: LedgerFacts | None = None,
) -> LedgerSnapshot:
    """One aspect; problem ``p`` has one measure per state in ``states[p]``."""
    facts = ledger or LedgerFacts(id=3, kind=LedgerKind.RECTIFICATION, title="小台账")
    groups = [GroupFacts(id=1, parent_id=None, level=1, position=1, title="方面一")]
    items = []
    iid = 0
    for p, problem_states in enumerate(states, start=1):
        groups.append(GroupFacts(id=10 + p, parent_id=1, level=2, position=p, title=f"问题{p}"))
        for m, state in enumerate(problem_states, start=1):
            iid += 1
            items.append(
                ItemFacts(
                    id=iid,
                    group_id=10 + p,
                    position=m,
                    content=f"措施{p}.{m}",
                    state=state,
                    relapse_count=relapses[p - 1][m - 1] if relapses else 0,
                )
            )
    return LedgerSnapshot(facts, tuple(groups), tuple(items))
