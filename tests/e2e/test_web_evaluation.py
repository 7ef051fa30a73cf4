"""The evaluation pages over HTTP (TestClient), on SQLite and PostgreSQL.

The October 2026 world of the evaluation tests (tests/integration/evaluation/evaluation_october.py)
gives known numbers: the results page must show the API's, the settings form must change what
the API reads (and refuse a bad value naming the field, saving nothing), and a 双随机 draw is
made, listed and decided through the pages.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.e2e.webclient import CSRF_RE, login
from tests.integration.evaluation.evaluation_october import October, build_october
from tests.world import World

from cityloop.audit.models import AuditEntry
from cityloop.cases.models import Case
from cityloop.db.engine import Database
from cityloop.evaluation import audit, domain, service
from cityloop.evaluation.config import EvaluationSettings, Subject
from cityloop.evaluation.models import AuditItem
from cityloop.org import service as org

pytestmark = pytest.mark.usefixtures("web_env")

MONTH = "2026-10"
KPI_RE = re.compile(r'data-kpi="(\w+)">([^<]*)<')
PROBLEM_RE = re.compile(r'<div class="alert alert-error" role="alert"[^>]*>(.*?)</div>', re.S)


@pytest.fixture
def client(web_client: TestClient) -> TestClient:
    return web_client


@pytest.fixture
def october(db: Database, world: World) -> October:
    return build_october(db, world)


def token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def problem(html: str) -> str:
    match = PROBLEM_RE.search(html)
    assert match, "no error message on the page"
    return re.sub(r"<[^>]+>", " ", match.group(1))


def row(html: str, attr: str, value: str) -> str:
    """The <tr> carrying ``attr="value"``."""
    match = re.search(rf'<tr {attr}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert match, f"no row {attr}={value}"
    return match.group(1)


class SettingsForm(HTMLParser):
    """What the browser would send from the settings form: every named field as shown."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._select: str | None = None
        self._selected = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in_form = "data-settings-form" in a
        if not self._in_form:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value") or "on"))
            else:
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._selected = a["name"], False
        elif tag == "option" and self._select and "selected" in a:
            self.fields.append((self._select, a.get("value", "")))
            self._selected = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select:
            if not self._selected:  # the browser sends the first option: here always ""
                self.fields.append((self._select, ""))
            self._select = None
        elif tag == "form":
            self._in_form = False


def settings_form(html: str) -> list[tuple[str, str]]:  # (name, value) in page order
    parser = SettingsForm()
    parser.feed(html)
    assert parser.fields, "no settings form on the page"
    return parser.fields


def replace(fields: list[tuple[str, str]], **changes: str | None) -> dict[str, list[str]]:
    """The form with some fields changed (``None`` unchecks a checkbox), as the client sends
    it; names use ``__`` for dots (``audit__cases_per_department``)."""
    named = {k.replace("__", "."): v for k, v in changes.items()}
    out: dict[str, list[str]] = {}
    for key, value in fields:
        if key not in named:
            out.setdefault(key, []).append(value)
    for key, changed in named.items():
        if changed is not None:
            out[key] = [changed]
    return out


def api_settings(client: TestClient) -> dict[str, Any]:
    resp = client.get("/api/v1/evaluation/settings")  # the session cookie reads the API
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


# --- the menu and who may open the pages --------------------------------------------------------


def test_the_menu_entry_is_for_the_centres_staff_and_leaders(
    world: World, client: TestClient
) -> None:
    for username in ("leader", "admin", "intake", "dispatcher", "supervisor"):
        login(client, username)
        html = client.get("/staff").text
        assert '<a href="/staff/evaluation"' in html, username
        assert ">考评</a>" in html, username
    for username in ("operator", "outsider", "inspector"):
        login(client, username)
        assert 'href="/staff/evaluation"' not in client.get("/staff").text, username
        refused = client.get(f"/staff/evaluation?month={MONTH}")
        assert refused.status_code == 403, username
        assert "无权操作" in refused.text
        assert client.get(f"/staff/evaluation/audits?month={MONTH}").status_code == 403
        assert client.get("/staff/admin/evaluation").status_code == 403
    # The administration page links to the settings.
    login(client, "admin")
    assert 'href="/staff/admin/evaluation"' in client.get("/staff/admin").text


# --- the month's results -------------------------------------------------------------------------


def test_the_results_page_shows_the_apis_numbers(
    world: World, october: October, client: TestClient
) -> None:
    login(client, "leader")
    page = client.get(f"/staff/evaluation?month={MONTH}")
    assert page.status_code == 200, page.text[:500]
    shown = dict(KPI_RE.findall(page.text))
    api = client.get(f"/api/v1/evaluation/months/{MONTH}/kpis").json()
    assert shown == api["headline"]["display"]
    # The October world's numbers, counted by hand (test_evaluation_report.py).
    assert (shown["filed"], shown["disposal_rate"], shown["on_time_disposal_rate"]) == (
        "7",
        "85.71%",
        "71.43%",
    )
    assert shown["closing_rate"] == "66.67%"
    for dept in api["departments"]:
        cells = row(page.text, "data-subject", dept["code"])
        assert dept["composite_display"] in cells
        assert f">{dept['grade']}</span>" in cells
        assert dept["delta_prev_month_display"] in cells
    # Parks had nothing due: every rate is "—", never 0 %, no composite, no grade, no rank.
    parks = row(page.text, "data-subject", "parks")
    assert re.findall(r'data-rate="\w+">([^<]*)<', parks) == ["—"] * 5
    assert "0.00%" not in parks
    assert ">—</span>" in parks  # the grade
    for sub in api["subdistricts"]:
        assert sub["composite_display"] in row(page.text, "data-subject", sub["code"])
    assert f'href="/reports/monthly/{MONTH}"' in page.text
    assert f'href="/api/v1/evaluation/months/{MONTH}/report.docx"' in page.text
    assert "Evaluation" not in page.text  # Chinese by default
    english = client.get(f"/staff/evaluation?month={MONTH}&lang=en").text
    assert "On-time disposal rate" in english and "Month on month" in english


def test_the_reports_download_with_the_session_cookie(
    world: World, october: October, client: TestClient
) -> None:
    login(client, "supervisor")
    docx = client.get(f"/api/v1/evaluation/months/{MONTH}/report.docx")
    assert docx.status_code == 200, docx.text[:300]
    assert docx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert docx.content[:2] == b"PK"
    html = client.get(f"/reports/monthly/{MONTH}")
    assert html.status_code == 200
    assert "数字城管月度考评报告" in html.text
    # The report's inline style is allowed by its hash, and nothing else runs on that page.
    policy = html.headers["content-security-policy"]
    assert "style-src 'sha256-" in policy and "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    login(client, "operator")
    assert client.get(f"/api/v1/evaluation/months/{MONTH}/report.docx").status_code == 403


def test_a_bad_month_shows_the_last_complete_one_with_a_message(
    world: World, client: TestClient
) -> None:
    login(client, "dispatcher")
    resp = client.get("/staff/evaluation?month=2026-13")
    assert resp.status_code == 422
    assert "月份格式为 YYYY-MM" in problem(resp.text)
    latest = domain.last_complete_month(dt.datetime.now(dt.UTC))
    assert f'<small class="muted">{latest}</small>' in resp.text
    default = client.get("/staff/evaluation")
    assert default.status_code == 200
    assert f'value="{latest}"' in default.text
    # A year whose comparisons or end no date can hold is refused, here and in the API.
    for far in ("0001-01", "9999-12"):
        resp = client.get(f"/staff/evaluation?month={far}")
        assert resp.status_code == 422, far
        assert "年份须在 1970 至 2999 之间" in problem(resp.text)
        assert client.get(f"/api/v1/evaluation/months/{far}/kpis").status_code == 422
        assert client.get(f"/staff/evaluation/audits?month={far}").status_code == 422


# --- settings ------------------------------------------------------------------------------------


def test_the_settings_form_round_trips_and_its_changes_take_effect(
    db: Database, world: World, client: TestClient
) -> None:
    login(client, "admin")
    page = client.get("/staff/admin/evaluation")
    assert page.status_code == 200
    fields = settings_form(page.text)
    # Sent back untouched, the form changes nothing.
    same = client.post("/staff/admin/evaluation", data=replace(fields), follow_redirects=False)
    assert same.status_code == 303, problem(same.text)
    assert api_settings(client) == EvaluationSettings().model_dump(mode="json")

    changed = replace(
        fields,
        csrf_token=token(client.get("/staff/admin/evaluation").text),
        on_time__grace_minutes="15",
        on_time__extended_counts_as_on_time=None,
        suspended_leave_denominator=None,
        audit__cases_per_department="7",
        audit__deduction_per_failure="2.5",
        hotline__month_start_day="1",
        hotline__response_weight="0.2",
        hotline__resolution_weight="0.4",
        **{
            # The dispatcher's formula: volume 0.2 + on time 0.4 + accurate 0.4 -> 0.3/0.3/0.4.
            "composites__dispatcher__0__weight": "0.3",
            "composites__dispatcher__1__weight": "0.3",
            # A new grade band in the first blank row.
            "grade_bands__4__grade": "D-",
            "grade_bands__4__min_score": "20",
        },
    )
    saved = client.post("/staff/admin/evaluation", data=changed, follow_redirects=False)
    assert saved.status_code == 303, problem(saved.text)
    now = api_settings(client)
    assert now["on_time"] == {"grace_minutes": 15, "extended_counts_as_on_time": False}
    assert now["suspended_leave_denominator"] is False
    assert now["audit"]["cases_per_department"] == 7
    assert now["audit"]["deduction_per_failure"] == 2.5
    assert now["hotline"]["month_start_day"] == 1
    assert [c["weight"] for c in now["composites"]["dispatcher"]] == [0.3, 0.3, 0.4]
    assert [b["grade"] for b in now["grade_bands"]] == ["A", "B", "C", "D", "D-"]
    assert now["report"] == EvaluationSettings().report.model_dump(mode="json")  # kept
    # The service wrote it (with its audit row), and the page shows the new values.
    assert service.get_settings(db.uow()).audit.cases_per_department == 7
    with db.uow().read() as uow:
        actions = uow.session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_id == "evaluation")
        ).all()
    assert actions.count("config.put") == 2
    assert (
        'name="audit.cases_per_department" value="7"'
        in client.get("/staff/admin/evaluation?saved=form").text
    )

    # Removing a term (its row emptied) leaves the formula's weights short of 1: refused.
    html = client.get("/staff/admin/evaluation").text
    dropped = replace(
        settings_form(html),
        **{"composites__dispatcher__2__indicator": "", "composites__dispatcher__2__weight": ""},
    )
    refused = client.post("/staff/admin/evaluation", data=dropped)
    assert refused.status_code == 422
    assert "综合指标值公式 · 派遣员" in problem(refused.text)
    assert [c.weight for c in service.get_settings(db.uow()).composites[Subject.DISPATCHER]] == [
        0.3,
        0.3,
        0.4,
    ]
    # "— remove —" drops the term even with its weight still typed; the rest make 1 again.
    kept = settings_form(html)
    removed = replace(
        kept,
        **{"composites__dispatcher__2__indicator": "", "composites__dispatcher__1__weight": "0.7"},
    )
    assert ("composites.dispatcher.2.weight", "0.4") in kept
    saved = client.post("/staff/admin/evaluation", data=removed, follow_redirects=False)
    assert saved.status_code == 303, problem(saved.text)
    terms = service.get_settings(db.uow()).composites[Subject.DISPATCHER]
    assert [(c.indicator, c.weight) for c in terms] == [
        (now["composites"]["dispatcher"][0]["indicator"], 0.3),
        (now["composites"]["dispatcher"][1]["indicator"], 0.7),
    ]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"audit__cases_per_department": "0"}, "每个部门抽取案件数"),
        ({"on_time__grace_minutes": "soon"}, "超过时限的宽限时间（分钟）"),
        ({"hotline__response_weight": "0.5"}, "12345热线“三率”"),
        ({"composites__department__1__indicator": "filed"}, "综合指标值公式 · 专业部门"),
        ({"grade_bands__1__grade": "A"}, "等级划分"),
        ({"timezone": "Mars/Base"}, "时区"),
    ],
)
def test_a_bad_setting_names_its_field_and_saves_nothing(
    db: Database, world: World, client: TestClient, changes: dict[str, str], named: str
) -> None:
    login(client, "admin")
    before = api_settings(client)
    fields = replace(settings_form(client.get("/staff/admin/evaluation").text), **changes)
    resp = client.post("/staff/admin/evaluation", data=fields)
    assert resp.status_code == 422
    message = problem(resp.text)
    assert "未保存" in message and named in message, message
    assert "has-error" in resp.text
    # The page keeps what was typed, so it can be corrected.
    for key, value in changes.items():
        if not key.startswith(("composites", "grade_bands")):
            assert f'name="{key.replace("__", ".")}" value="{value}"' in resp.text
    assert api_settings(client) == before


def test_only_the_admin_changes_the_settings_and_the_leader_reads_them(
    world: World, client: TestClient
) -> None:
    login(client, "admin")
    fields = settings_form(client.get("/staff/admin/evaluation").text)
    login(client, "leader")
    page = client.get("/staff/admin/evaluation")
    assert page.status_code == 200
    assert '<fieldset class="plain" disabled>' in page.text
    assert "保存配置" not in page.text and "只读" in page.text
    before = api_settings(client)
    forged = replace(fields, csrf_token=token(page.text), audit__cases_per_department="9")
    refused = client.post("/staff/admin/evaluation", data=forged)
    assert refused.status_code == 403
    assert "无权操作" in refused.text
    text = client.get("/staff/admin/evaluation/export.toml").text
    refused = client.post(
        "/staff/admin/evaluation/toml",
        data={"csrf_token": token(page.text), "toml": text.replace("= 5", "= 9")},
    )
    assert refused.status_code == 403
    assert api_settings(client) == before
    login(client, "dispatcher")
    assert client.get("/staff/admin/evaluation").status_code == 403
    assert client.get("/staff/admin/evaluation/export.toml").status_code == 403


def test_the_toml_editor_saves_the_whole_document_and_refuses_bad_text(
    db: Database, world: World, client: TestClient
) -> None:
    login(client, "admin")
    export = client.get("/staff/admin/evaluation/export.toml")
    assert export.status_code == 200
    assert 'filename="evaluation.toml"' in export.headers["content-disposition"]
    assert export.text == service.export_settings(db.uow(), "toml")
    text = export.text.replace("cases_per_department = 5", "cases_per_department = 9")
    page = client.get("/staff/admin/evaluation").text
    saved = client.post(
        "/staff/admin/evaluation/toml",
        data={"csrf_token": token(page), "toml": text},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert api_settings(client)["audit"]["cases_per_department"] == 9

    for bad, named in [
        ("[[[ not toml", "TOML 文本格式有误"),
        (text.replace("grace_minutes = 0", "grace_minutes = -1"), "超过时限的宽限时间（分钟）"),
    ]:
        resp = client.post(
            "/staff/admin/evaluation/toml", data={"csrf_token": token(page), "toml": bad}
        )
        assert resp.status_code == 422
        assert named in problem(resp.text)
        assert '<details class="card advanced" open' in resp.text  # the editor stays open
        assert api_settings(client)["audit"]["cases_per_department"] == 9
        assert api_settings(client)["on_time"]["grace_minutes"] == 0


# --- 双随机 audits -------------------------------------------------------------------------------


def test_an_audit_is_drawn_listed_and_decided_through_the_pages(
    db: Database, world: World, october: October, client: TestClient
) -> None:
    login(client, "leader")
    empty = client.get(f"/staff/evaluation/audits?month={MONTH}")
    assert empty.status_code == 200
    assert "本月尚未抽取抽查任务" in empty.text
    drawn = client.post(
        "/staff/evaluation/audits",
        data={"csrf_token": token(empty.text), "month": MONTH, "seed": "20261101"},
        follow_redirects=False,
    )
    assert drawn.status_code == 303, problem(drawn.text)
    listed = client.get(drawn.headers["location"])
    assert "已抽取" in listed.text
    assert "<code data-seed>20261101</code>" in listed.text
    (draw,) = audit.list_draws(db.uow(), world.leader, MONTH)
    assert draw.seed == 20261101
    codes = {c for c in re.findall(r'class="code" href="/staff/cases/\d+">(\d+)<', listed.text)}
    assert codes == {i.case_code for i in draw.items} and len(codes) == 4
    for item in draw.items:
        assert item.auditor_name and item.auditor_name in row(
            listed.text, "data-item", str(item.id)
        )

    item = draw.items[0]
    assert item.auditor_user_id is not None
    auditor = org.load_actor(db.uow(), user_id=item.auditor_user_id)
    other = "leader2" if auditor.username == "leader" else "leader"
    assert item.id in [i.id for i in audit.my_items(db.uow(), auditor)]

    # Someone else may not decide it.
    login(client, other)
    page = client.get("/staff/evaluation/audits/mine").text
    resp = client.post(
        f"/staff/evaluation/audits/items/{item.id}/outcome",
        data={"csrf_token": token(page), "outcome": "pass"},
    )
    assert resp.status_code == 403
    assert "该抽查任务未分配给您" in problem(resp.text)

    login(client, auditor.username)
    assert "分配给您的抽查任务" in client.get("/staff").text  # the workbench points to them
    page = client.get("/staff/evaluation/audits/mine").text
    assert f'data-audit-item="{item.id}"' in page
    # The card says where to check on site, even for an auditor who cannot open the case.
    with db.uow().read() as uow:
        case = uow.session.get(Case, item.case_id)
        assert case is not None
        where, what = case.address or "—", case.description
    card = page.split(f'data-audit-item="{item.id}"', 1)[1].split("</section>", 1)[0]
    assert f"<dd data-address>{where}</dd>" in card and what in card
    # A failure needs a reason: refused, nothing recorded.
    resp = client.post(
        f"/staff/evaluation/audits/items/{item.id}/outcome",
        data={"csrf_token": token(page), "outcome": "fail", "reason": "  "},
    )
    assert resp.status_code == 422
    assert "判定未通过须填写原因" in problem(resp.text)
    with db.uow().read() as uow:
        stored = uow.session.get(AuditItem, item.id)
        assert stored is not None and stored.outcome is None
    decided = client.post(
        f"/staff/evaluation/audits/items/{item.id}/outcome",
        data={"csrf_token": token(page), "outcome": "fail", "reason": "井盖仍有破损（演示）"},
        follow_redirects=False,
    )
    assert decided.status_code == 303, problem(decided.text)
    after = client.get(decided.headers["location"]).text
    assert f"已登记：案件 {item.case_code}，未通过" in after
    assert f'data-audit-item="{item.id}"' not in after
    # Once only.
    again = client.post(
        f"/staff/evaluation/audits/items/{item.id}/outcome",
        data={"csrf_token": token(after), "outcome": "pass"},
    )
    assert again.status_code == 409
    assert "结果只能登记一次" in problem(again.text)

    # The published results show it, and the month's KPIs count it.
    login(client, "dispatcher")
    listed = client.get(f"/staff/evaluation/audits?month={MONTH}").text
    decided_row = row(listed, "data-item", str(item.id))
    assert 'data-outcome="fail"' in decided_row and "井盖仍有破损（演示）" in decided_row
    assert "抽取抽查任务" not in listed  # only leaders and admins draw
    kpis = service.monthly_kpis(db.uow(), MONTH, comparisons=False)
    dept = next(d for d in kpis.departments if d.key == item.department_id)
    assert dept.counts["audit_failed"] == 1


def test_draw_refusals_are_messages(
    db: Database, world: World, october: October, client: TestClient
) -> None:
    login(client, "dispatcher")
    page = client.get(f"/staff/evaluation/audits?month={MONTH}").text
    resp = client.post("/staff/evaluation/audits", data={"csrf_token": token(page), "month": MONTH})
    assert resp.status_code == 403
    assert "只有领导和系统管理员可以抽取" in problem(resp.text)

    login(client, "admin")
    page = client.get(f"/staff/evaluation/audits?month={MONTH}").text
    this_month = domain.month_label(
        *domain.shift_month(
            *domain.parse_month(domain.last_complete_month(dt.datetime.now(dt.UTC))), 1
        )
    )
    for data, message in [
        ({"month": this_month, "seed": ""}, "须在该月结束后才能抽取"),
        ({"month": MONTH, "seed": "abc"}, "随机种子须为不超过 19 位的非负整数"),
        ({"month": MONTH, "seed": "99999999999999999999"}, "随机种子须为不超过 19 位的非负整数"),
        ({"month": "October", "seed": ""}, "月份格式为 YYYY-MM"),
        ({"month": "2026-13", "seed": ""}, "月份格式为 YYYY-MM"),
        ({"month": "0001-01", "seed": ""}, "年份须在 1970 至 2999 之间"),
    ]:
        resp = client.post("/staff/evaluation/audits", data={"csrf_token": token(page), **data})
        assert resp.status_code == 422, data
        assert message in problem(resp.text), data
    assert audit.list_draws(db.uow(), world.admin, MONTH) == []
    # A form without the CSRF token is refused before anything happens.
    assert client.post("/staff/evaluation/audits", data={"month": MONTH}).status_code == 403
    assert audit.list_draws(db.uow(), world.admin, MONTH) == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_evaluation_page_renders_in_both_languages(
    world: World, client: TestClient, lang: str
) -> None:
    markers = {"zh": ["考评", "双随机", "我的抽查", "考评配置"], "en": ["Evaluation", "Audits"]}
    pages = {
        "leader": ["/staff/evaluation", "/staff/evaluation/audits", "/staff/admin/evaluation"],
        "admin": ["/staff/evaluation", "/staff/admin/evaluation", "/staff/admin"],
        "intake": ["/staff/evaluation", "/staff/evaluation/audits"],
        "inspector": ["/staff/evaluation/audits/mine"],
        "operator": ["/staff/evaluation/audits/mine"],
    }
    for username, paths in pages.items():
        login(client, username)
        for path in paths:
            resp = client.get(f"{path}?lang={lang}")
            assert resp.status_code == 200, (username, path, resp.text[:300])
            assert ("退出" if lang == "zh" else "Log out") in resp.text
    login(client, "leader")
    text = client.get(f"/staff/evaluation/audits?lang={lang}").text
    assert all(marker in text for marker in markers[lang])
