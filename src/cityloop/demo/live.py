"""Live open cases in every state, made through the real service (so the demo also proves it).

The simulated history leaves open whatever was in flight at "now"; short-lived states (a
pending extension request, say) may be missing from it. This tops every open state up to a few
cases by walking fresh reports through ``cases.service`` with the demo staff.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter

from PIL import Image, ImageDraw
from sqlalchemy import func, select

from cityloop.cases import attachments
from cityloop.cases import service as cases
from cityloop.cases.domain import OPEN_STATES, STATE_LABELS_ZH, CaseAction, CaseState, Channel
from cityloop.cases.models import Case
from cityloop.cases.schemas import CaseActionRequest, CaseCreate, Location, Reporter
from cityloop.catalog.models import FilingStandard, MinorClass
from cityloop.db.engine import Database
from cityloop.grid.coords import CoordSystem
from cityloop.org import service as org
from cityloop.org.domain import Actor

A = CaseAction
S = CaseState

# The walk from a fresh report to each open state: (actor username, action, extra fields).
_PUBLIC = Channel.PUBLIC_WEB
_WALKS: dict[CaseState, tuple[Channel, list[tuple[str, CaseAction]]]] = {
    S.REPORTED: (_PUBLIC, []),
    S.VERIFYING: (_PUBLIC, [("intake", A.SEND_VERIFY)]),
    S.NOT_FOUND: (_PUBLIC, [("intake", A.SEND_VERIFY), ("inspector", A.VERIFY_NOT_FOUND)]),
    S.VOID_REQUESTED: (_PUBLIC, [("intake", A.REQUEST_VOID)]),
    S.VERIFIED: (Channel.INSPECTOR, []),
    S.SELF_HANDLED: (Channel.INSPECTOR, [("inspector", A.SELF_HANDLE)]),
    S.FILED: (Channel.INSPECTOR, [("supervisor", A.FILE)]),
    S.DISPATCHED: (Channel.INSPECTOR, [("supervisor", A.FILE), ("dispatcher", A.DISPATCH)]),
}
_DISPATCHED = _WALKS[S.DISPATCHED][1]
_WALKS.update(
    {
        S.RETURN_REQUESTED: (Channel.INSPECTOR, [*_DISPATCHED, ("operator", A.REQUEST_RETURN)]),
        S.EXTENSION_REQUESTED: (
            Channel.INSPECTOR,
            [*_DISPATCHED, ("operator", A.REQUEST_EXTENSION)],
        ),
        S.SUSPEND_REQUESTED: (Channel.INSPECTOR, [*_DISPATCHED, ("operator", A.REQUEST_SUSPEND)]),
        S.SUSPENDED: (
            Channel.INSPECTOR,
            [*_DISPATCHED, ("operator", A.REQUEST_SUSPEND), ("dispatcher", A.APPROVE_SUSPEND)],
        ),
        S.DISPOSED: (Channel.INSPECTOR, [*_DISPATCHED, ("operator", A.DISPOSE)]),
        S.CHECKING: (
            Channel.INSPECTOR,
            [*_DISPATCHED, ("operator", A.DISPOSE), ("intake", A.SEND_CHECK)],
        ),
        S.CHECKED: (
            Channel.INSPECTOR,
            [
                *_DISPATCHED,
                ("operator", A.DISPOSE),
                ("intake", A.SEND_CHECK),
                ("inspector", A.CHECK_PASS),
            ],
        ),
    }
)

_REASONS = {
    A.VERIFY_NOT_FOUND: "现场未发现(演示)",
    A.REQUEST_VOID: "疑似重复上报(演示)",
    A.SELF_HANDLE: "已当场处理(演示)",
    A.REQUEST_RETURN: "不属于本单位职责(演示)",
    A.REQUEST_EXTENSION: "需采购配件(演示)",
    A.REQUEST_SUSPEND: "需协调管线迁改(演示)",
    A.DISPOSE: "已处置完毕(演示)",
}


def _photo(text: str) -> bytes:
    image = Image.new("RGB", (640, 480), (96, 125, 139))
    ImageDraw.Draw(image).text((24, 24), text, fill=(255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def ensure_every_open_state(
    database: Database, *, now: dt.datetime, per_state: int = 3, cell: tuple[float, float]
) -> Counter[str]:
    """Top every open state up to ``per_state`` cases. Returns how many were made per state."""
    uow = database.uow()
    with uow.read():
        counts: dict[str, int] = {
            state: n
            for state, n in uow.session.execute(
                select(Case.state, func.count()).group_by(Case.state)
            )
        }
        standard_id = uow.session.scalar(
            select(FilingStandard.id)
            .join(MinorClass, MinorClass.id == FilingStandard.minor_id)
            .where(MinorClass.code == "0101", MinorClass.family == "component")
            .where(FilingStandard.limit_text.is_not(None))
            .order_by(FilingStandard.position)
        )
    actors: dict[str, Actor] = {}

    def actor(name: str) -> Actor:
        if name not in actors:
            actors[name] = org.actor_by_username(database.uow(), name)
        return actors[name]

    made: Counter[str] = Counter()
    for state in sorted(OPEN_STATES, key=lambda s: s.value):
        missing = per_state - counts.get(state.value, 0)
        channel, walk = _WALKS[state]
        for n in range(max(0, missing)):
            t = now - dt.timedelta(hours=3, minutes=7 * n)
            reporter = None if channel is _PUBLIC else actor("inspector")
            data = CaseCreate(
                channel=channel,
                description=f"雨水井盖缺失，需尽快处置（演示：{STATE_LABELS_ZH[state]}）",
                location=Location(lon=cell[0], lat=cell[1], system=CoordSystem.WGS84),
                address="海淀区演示路88号",
                family="component",
                minor_code="0101",
                standard_id=standard_id,
                reporter=Reporter(name="演示市民", phone="13800000000")
                if reporter is None
                else None,
            )
            case_id = cases.report(database.uow(), reporter, data, now=t).id
            for username, action in walk:
                t += dt.timedelta(minutes=4)
                who = actor(username)
                version = cases.get_case(database.uow(), who, case_id, now=t).version
                photos = []
                if action is A.DISPOSE:
                    photos = [
                        attachments.upload(
                            database.uow(),
                            who,
                            filename="feedback.jpg",
                            content=_photo("cityloop demo"),
                            stage="feedback",
                        ).id
                    ]
                cases.act(
                    database.uow(),
                    who,
                    case_id,
                    CaseActionRequest(
                        action=action,
                        version=version,
                        reason=_REASONS.get(action),
                        inspector="inspector" if action is A.SEND_VERIFY else None,
                        standard_id=standard_id if action is A.FILE else None,
                        department_code="drainage" if action is A.DISPATCH else None,
                        attachment_ids=photos,
                    ),
                    now=t,
                )
            made[state.value] += 1
    return made
