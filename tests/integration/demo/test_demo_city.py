"""The demo city on both backends, small: the same code `make run` uses for 200,000 cases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cityloop.cases.domain import OPEN_STATES, TERMINAL_STATES, CaseState
from cityloop.cases.models import Case, CaseEvent
from cityloop.config import get_settings
from cityloop.db.engine import Database, make_engine
from cityloop.db.migrate import upgrade
from cityloop.demo import city
from cityloop.org import service as org


@pytest.fixture
def demo_db(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    engine = make_engine(fresh_database_url)
    upgrade(engine)
    yield Database(engine)
    engine.dispose()
    get_settings.cache_clear()


NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def test_the_demo_city_has_history_live_cases_in_every_state_and_logins(demo_db: Database) -> None:
    report = city.build(demo_db, cases=600, days=60, now=NOW, processes=2)
    assert report.cases == 600 and report.cells > 40_000
    assert city.is_built(demo_db)
    uow = demo_db.uow()
    with uow.read():
        s = uow.session
        states = dict(s.execute(select(Case.state, func.count()).group_by(Case.state)).all())
        assert {st.value for st in OPEN_STATES} <= set(states)  # every open state is live
        assert states[CaseState.CLOSED.value] > 300
        codes = s.scalar(select(func.count(func.distinct(Case.code))))
        total = s.scalar(select(func.count(Case.id)))
        assert codes == total
        # Every case starts with a report event, and its version counts its events.
        per_case = dict(
            s.execute(select(CaseEvent.case_id, func.count()).group_by(CaseEvent.case_id)).all()
        )
        versions = dict(s.execute(select(Case.id, Case.version)).all())
        assert len(per_case) == total
        reports = s.scalar(select(func.count()).where(CaseEvent.action == "report"))
        assert reports == total
        closed_without_time = s.scalar(
            select(func.count()).where(
                Case.state.in_(
                    [
                        st.value
                        for st in TERMINAL_STATES - {CaseState.DECLINED, CaseState.NOT_ACCEPTED}
                    ]
                ),
                Case.closed_at.is_(None),
            )
        )
        assert closed_without_time == 0
        # One version per action, in simulated history and in service-made cases alike.
        assert [cid for cid, v in versions.items() if per_case[cid] != v] == []
        first = s.scalar(select(func.min(Case.reported_at)))
        assert first is not None and first >= NOW - dt.timedelta(days=61)
    # Each demo login works with the printed password.
    for _role, username, password in city.demo_credentials():
        assert (
            org.authenticate(demo_db.uow(), username=username, password=password).username
            == username
        )
