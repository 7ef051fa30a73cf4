"""The public bulletin (通报): the seeds' structure and numbers, templates, determinism, docx."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import pytest
from docx import Document
from tests.unit.ledgers.ledger_builders import haidian, haidian_ledger, hazard_survey, tiny

from cityloop.errors import InvalidInput
from cityloop.ledgers.bulletin import (
    counts_sentence,
    default_template_text,
    md_escape,
    measures_summary,
    parse_blocks,
    render,
    render_docx,
    render_markdown,
    signature_indents,
)
from cityloop.ledgers.domain import (
    GroupFacts,
    ItemFacts,
    LedgerFacts,
    LedgerKind,
    LedgerSnapshot,
    SignoffState,
    TextBlock,
)


def test_the_haidian_bulletin_states_exactly_the_seed_numbers() -> None:
    text = render_markdown(haidian())
    assert "3个方面37个问题" in text
    assert "100条整改措施" in text
    assert "已完成问题整改28个" in text
    assert "其余9个正在持续推进" in text
    assert (
        "针对巡察反馈的3个方面37个问题，共细化了100条整改措施，截至5月21日，"
        "已完成问题整改28个，其余9个正在持续推进。"
    ) in text


def test_the_docx_states_the_same_numbers() -> None:
    document = Document(io.BytesIO(render_docx(haidian())))
    body = "\n".join(p.text for p in document.paragraphs)
    for phrase in ("3个方面37个问题", "100条整改措施", "已完成问题整改28个", "其余9个正在持续推进"):
        assert phrase in body


def test_the_opening_paragraph_has_the_inspection_and_feedback_dates() -> None:
    text = render_markdown(haidian())
    assert (
        "根据海淀区委统一部署，2022年7月19日至9月23日，海淀区委第四巡察组对区城市管理委党组进行了"
        "巡察。2023年2月3日，海淀区委第四巡察组向区城市管理委党组反馈了巡察意见。"
    ) in text


def test_a_feedback_date_in_the_inspection_year_drops_its_year() -> None:
    ledger = haidian_ledger(
        onsite_start=dt.date(2022, 4, 15),
        onsite_end=dt.date(2022, 6, 8),
        feedback_on=dt.date(2022, 7, 11),
    )
    text = render_markdown(haidian(ledger))
    assert "2022年4月15日至6月8日，" in text
    assert "。7月11日，海淀区委第四巡察组向" in text


def test_sections_follow_the_seeds_with_chinese_numbering() -> None:
    text = render_markdown(haidian())
    headings = re.findall(r"^##+ .*$", text, flags=re.MULTILINE)
    assert headings[:3] == [
        "## 一、整改工作组织情况",
        "## 二、整改落实情况",
        "### （一）聚焦“三治五化”，不断提升城市管理和交通综合治理水平",
    ]
    assert "## 三、下一步整改工作打算" in headings
    assert "**（一）旗帜鲜明讲政治，压紧压实巡察整改责任。**区城市管理委党组" in text
    # Problems are numbered 1. to 37. across aspects, as the seeds number them.
    assert "**1.关于“第1项反馈问题整改不到位”问题的整改情况。**" in text
    assert "**37.关于“第37项反馈问题整改不到位”问题的整改情况。**" in text
    assert "### （三）坚持问题导向，压紧压实整改责任" in text


def test_each_problem_says_what_was_done_as_yi_shi_er_shi() -> None:
    text = render_markdown(haidian())
    assert (
        "一是已落实问题1的第1条措施。二是已落实问题1的第2条措施。三是已落实问题1的第3条措施。"
    ) in text
    # Not yet done: the measure itself stands for what is being done.
    assert "一是已落实问题37的第1条措施。二是问题37的第2条整改措施。" in text


def test_a_single_measure_is_written_without_yi_shi() -> None:
    item = ItemFacts(1, 1, 1, "措施", completion="已完成整改；")
    assert measures_summary([item]) == "已完成整改。"
    assert measures_summary([]) == ""


def test_the_contact_block_and_the_signature_close_the_bulletin() -> None:
    text = render_markdown(haidian())
    assert (
        "欢迎广大干部群众对巡察整改落实情况进行监督。如有意见建议，请及时向我们反映。"
        "联系方式：电话88487410；邮政信箱：北京市海淀区西四环北路11号，北京市海淀区城市管理委员会"
        "（南200乙）；邮政编码：100195。"
    ) in text
    assert text.endswith(
        '<p align="right">中共北京市海淀区城市管理委员会党组<br>2023年11月3日</p>\n'
    )


def test_without_organisation_and_next_steps_the_sections_renumber() -> None:
    ledger = haidian_ledger(organisation=(), next_steps=(), issuer="", issued_on=None)
    text = render_markdown(haidian(ledger))
    assert "## 一、整改落实情况" in text
    assert "下一步" not in text
    assert "<p" not in text


def test_without_as_of_the_counts_have_no_date() -> None:
    text = render_markdown(haidian(haidian_ledger(as_of=None)))
    assert "共细化了100条整改措施，已完成问题整改28个，其余9个正在持续推进。" in text


def test_when_everything_is_done_nothing_is_said_to_be_pending() -> None:
    snapshot = tiny([[SignoffState.SIGNED_OFF], [SignoffState.SIGNED_OFF]])
    assert counts_sentence(snapshot).endswith("已完成问题整改2个，全部完成整改。")


def test_markdown_is_identical_for_identical_data() -> None:
    assert render_markdown(haidian()).encode() == render_markdown(haidian()).encode()


def test_docx_is_byte_identical_for_identical_data_and_carries_no_clock() -> None:
    first, second = render_docx(haidian()), render_docx(haidian())
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        core = archive.read("docProps/core.xml").decode()
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert "2023-11-03T00:00:00Z" in core
    assert "中共北京市海淀区城市管理委员会党组" in core


def test_the_docx_uses_official_fonts_and_layout() -> None:
    document = Document(io.BytesIO(render_docx(haidian())))
    section = document.sections[0]
    assert round(section.page_width.cm, 1) == 21.0 and round(section.top_margin.cm, 1) == 3.7
    title = document.paragraphs[0]
    assert title.text.startswith("中共北京市海淀区城市管理委员会党组关于")
    xml = title.runs[0]._element.xml
    assert 'w:eastAsia="方正小标宋简体"' in xml
    heading = next(p for p in document.paragraphs if p.text == "一、整改工作组织情况")
    assert 'w:eastAsia="黑体"' in heading.runs[0]._element.xml
    body = document.paragraphs[1]
    assert body.paragraph_format.first_line_indent is not None
    assert 'w:eastAsia="仿宋_GB2312"' in body.runs[0]._element.xml
    footer = document.sections[0].footer.paragraphs[0]._element.xml
    assert "PAGE" in footer


def test_quotes_get_the_chinese_font_so_they_print_full_width() -> None:
    document = Document(io.BytesIO(render_docx(haidian())))
    quote_runs = [r for p in document.paragraphs for r in p.runs if r.text in ("“", "”")]
    assert quote_runs
    assert all(
        'w:ascii="仿宋_GB2312"' in r._element.xml or 'w:ascii="楷体_GB2312"' in r._element.xml
        for r in quote_runs
    )


def test_the_signature_follows_gb_t_9704() -> None:
    # The issuer 右空二字; the date starts two characters right of the issuer's first character.
    indents = signature_indents(["中共北京市海淀区城市管理委员会党组", "2023年11月3日"])
    assert indents == [2.0, 10.5]  # the date is 6.5 characters wide
    assert signature_indents(["2023年11月3日"]) == [4.0]
    assert signature_indents(["某局", "2023年11月3日"]) == [2.0, 2.0]


def test_user_text_cannot_inject_markdown() -> None:
    ledger = haidian_ledger(
        organisation=(TextBlock("标题", "**假粗体** # 不是标题 <script>x</script> a_b"),)
    )
    text = render_markdown(haidian(ledger))
    assert r"\*\*假粗体\*\* \# 不是标题 \<script\>x\</script\> a\_b" in text
    blocks = parse_blocks(text)
    organisation = next(b for b in blocks if "假粗体" in "".join(t for t, _ in b.runs))
    assert "".join(t for t, _ in organisation.runs).endswith(
        "**假粗体** # 不是标题 <script>x</script> a_b"
    )
    assert md_escape(None) == ""


def test_parse_blocks_reads_the_subset() -> None:
    blocks = parse_blocks(
        "# 标题\n\n## 一、节\n\n### （一）小节\n\n#### 1.条\n\n**粗**正文\n续行\n\n"
        '<p align="right">机关<br>2023年1月2日</p>\n'
    )
    assert [b.kind for b in blocks] == ["title", "h1", "h2", "h3", "body", "right", "right"]
    assert blocks[4].runs == (("粗", True), ("正文续行", False))


def test_a_custom_template_is_used_for_both_formats() -> None:
    template = (
        "# {{ title }}\n\n共{{ counts.problems }}个问题，已完成{{ counts.problems_done }}个。\n"
    )
    md = render_markdown(haidian(), template)
    assert md.endswith("共37个问题，已完成28个。\n")
    docx, media = render(haidian(), "docx", template)
    assert media.endswith("wordprocessingml.document")
    paragraphs = [p.text for p in Document(io.BytesIO(docx)).paragraphs]
    assert paragraphs[1] == "共37个问题，已完成28个。"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ nonexistent }}", "unknown variable"),
        ("{% for x in %}", "syntax error on line 1"),
        ("{{ title.__class__.__mro__ }}", "not allowed"),
    ],
)
def test_a_broken_or_unsafe_template_is_one_clear_error(template: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        render_markdown(haidian(), template)
    assert message in err.value.message
    assert err.value.field == "template"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInput):
        render(haidian(), "pdf")


@pytest.mark.parametrize("kind", list(LedgerKind))
def test_every_kind_ships_a_default_template(kind: LedgerKind) -> None:
    assert "{{ title | md }}" in default_template_text(kind)


def test_the_hazard_bulletin_states_the_seed_numbers() -> None:
    snapshot = hazard_survey()
    ledger = LedgerFacts(
        id=2,
        kind=LedgerKind.HAZARD,
        title="安全生产隐患排查治理台账",
        as_of=dt.date(2023, 5, 21),
        issued_on=dt.date(2023, 5, 22),
    )
    text = render_markdown(LedgerSnapshot(ledger, snapshot.groups, snapshot.items))
    assert (
        "截至5月21日，累计开展检查213次，发现一般安全隐患182项，已整改166项，整改率91.2%。" in text
    )
    assert "### （一）2023年4月19日，企业1" in text
    assert "整改中。\n\n### （一百八十二）2023年4月20日，企业182\n\n" in text
    assert "企业183" not in text  # inspections that found nothing are counted, not listed
    assert "1.隐患1（燃气），一般隐患，已销号。" in text


def test_the_checklist_bulletin_counts_items() -> None:
    ledger = LedgerFacts(id=5, kind=LedgerKind.CHECKLIST, title="合同审查清单")
    groups = (GroupFacts(1, None, 1, 1, "合同"),)
    items = (
        ItemFacts(1, 1, 1, "审查合同甲", state=SignoffState.SIGNED_OFF),
        ItemFacts(2, 1, 2, "审查合同乙"),
    )
    text = render_markdown(LedgerSnapshot(ledger, groups, items))
    assert "清单共1类2项，已完成销号1项，其余1项正在持续推进。" in text
    assert "## 一、合同" in text
    assert "1.审查合同甲。（已销号）" in text
