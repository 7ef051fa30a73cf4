"""The public progress bulletin (通报) of a ledger, as Markdown and as .docx.

The wording lives in a Jinja2 template (``templates/<kind>_bulletin.md``) that follows the
seed bulletins: the opening paragraph with the inspection's dates and the feedback date; 一、how
the rectification was organised; 二、each aspect with its problems and what was done, after the
counts ("针对巡察反馈的3个方面37个问题，共细化了100条整改措施，……已完成问题整改28个，其余9个
正在持续推进"); 三、next steps; the contact block; the issuer and date. Offices copy the template
(``cityloop ledger template``), edit it and pass it back with ``--template``.

The template renders a small Markdown subset, which is both the Markdown output and the source
of the .docx, so one template drives both formats:

- ``# text`` title; ``## text`` heading 1 (黑体); ``### text`` heading 2 (楷体); ``#### text``
  heading 3 (仿宋 bold); any other block is a body paragraph (仿宋, first line indented two
  characters); ``**text**`` inside a paragraph is bold;
- ``<p align="right">line<br>line</p>`` is a right-aligned block (the 落款 issuer and date);
- blocks are separated by blank lines; ``\\`` escapes a Markdown character.

Deterministic: no clock is read. The same ledger gives the same Markdown bytes and the same
.docx bytes (fixed core properties and fixed timestamps inside the ZIP).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from docx import Document
from docx.enum.section import WD_SECTION
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from jinja2.sandbox import SandboxedEnvironment

from cityloop.errors import InvalidInput
from cityloop.ledgers.cn import cn_date, cn_date_range, cn_numeral, heading_number, ordinal_phrase
from cityloop.ledgers.domain import (
    SHAPES,
    STATE_LABELS_ZH,
    STATUS_LABELS_ZH,
    ItemFacts,
    LedgerKind,
    LedgerSnapshot,
    hazard_stats,
    problem_done,
)
from cityloop.ledgers.workbook import normalise_zip

TEMPLATE_MAX = 200_000
FIXED_DOC_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


FORMATS = ("md", "docx")


# --------------------------------------------------------------------------------------------
# The context: every variable a template can use (documented in docs/ledgers.md)
# --------------------------------------------------------------------------------------------


def _sentence(text: str) -> str:
    """Text ending in exactly one full stop (。), whatever punctuation the user typed."""
    cleaned = re.sub(r"[。．.;；,，、\s]+$", "", text.strip())
    return f"{cleaned}。" if cleaned else ""


def _bare(text: str) -> str:
    """Text without its closing punctuation, to continue the sentence after it."""
    return re.sub(r"[。．.;；,，、\s]+$", "", text.strip())


def _short_problem(title: str) -> str:
    """ "公车管理混亂问题" -> "公车管理混亂": the bulletin writes 关于“…”问题."""
    cleaned = re.sub(r"[。．.;；,，、\s]+$", "", title.strip())
    cleaned = cleaned.strip("“”\"'「」")
    for suffix in ("的问题", "问题"):
        if cleaned.endswith(suffix) and len(cleaned) > len(suffix):
            return cleaned[: -len(suffix)].strip("“”\"'「」")
    return cleaned


def measures_summary(items: list[ItemFacts]) -> str:
    """What was done for a problem: each measure's 完成情况 (or, while it has none, the measure
    itself), as "一是……。二是……。" when there are several, as the seeds write it."""
    texts = [_sentence(i.completion or i.content) for i in items]
    texts = [t for t in texts if t]
    if len(texts) == 1:
        return texts[0]
    return "".join(f"{ordinal_phrase(n)}{t}" for n, t in enumerate(texts, start=1))


@dataclass(frozen=True, slots=True)
class Counts:
    aspects: int
    problems: int
    measures: int
    problems_done: int
    problems_remaining: int
    measures_signed_off: int


def counts_of(snapshot: LedgerSnapshot) -> Counts:
    leafs = snapshot.leaf_groups()
    items = snapshot.ordered_items()
    done = sum(1 for g in leafs if problem_done(snapshot.items_of(g.id)))
    return Counts(
        aspects=len(snapshot.top_groups()),
        problems=len(leafs),
        measures=len(items),
        problems_done=done,
        problems_remaining=len(leafs) - done,
        measures_signed_off=sum(1 for i in items if i.signed_off),
    )


def counts_sentence(snapshot: LedgerSnapshot) -> str:
    """ "针对巡察反馈的3个方面37个问题，共细化了100条整改措施，截至5月21日，已完成问题整改28个，
    其余9个正在持续推进。" (the year of 截至 is dropped when it is the feedback's year)."""
    c = counts_of(snapshot)
    ledger = snapshot.ledger
    if ledger.kind is LedgerKind.HAZARD:
        return _sentence(hazard_stats(snapshot).sentence())
    reference = ledger.issued_on or ledger.feedback_on
    as_of = f"截至{cn_date(ledger.as_of, omit_year_of=reference)}，" if ledger.as_of else ""
    if ledger.kind is LedgerKind.CHECKLIST:
        head = f"清单共{c.aspects}类{c.measures}项，"
        done = f"已完成销号{c.measures_signed_off}项"
        rest = c.measures - c.measures_signed_off
    else:
        head = (
            f"针对巡察反馈的{c.aspects}个方面{c.problems}个问题，共细化了{c.measures}条整改措施，"
        )
        done = f"已完成问题整改{c.problems_done}个"
        rest = c.problems_remaining
    tail = f"，其余{rest}个正在持续推进" if rest else "，全部完成整改"
    if ledger.kind is LedgerKind.CHECKLIST and rest:
        tail = f"，其余{rest}项正在持续推进"
    return f"{head}{as_of}{done}{tail}。"


def bulletin_context(snapshot: LedgerSnapshot) -> dict[str, Any]:
    """Everything a bulletin template may use. Plain dicts, lists, strings and numbers only."""
    ledger = snapshot.ledger
    shape = SHAPES[ledger.kind]
    onsite = ""
    if ledger.onsite_start and ledger.onsite_end:
        onsite = cn_date_range(ledger.onsite_start, ledger.onsite_end)
    elif ledger.onsite_start:
        onsite = cn_date(ledger.onsite_start)
    feedback = ""
    if ledger.feedback_on:
        feedback = cn_date(ledger.feedback_on, omit_year_of=ledger.onsite_end)
    c = counts_of(snapshot)
    aspects = []
    problem_no = 0
    for a_no, top in enumerate(snapshot.top_groups(), start=1):
        problems = []
        leafs = [top] if shape.item_level == 1 else snapshot.children(top.id)
        for leaf in leafs:
            problem_no += 1
            items = snapshot.items_of(leaf.id)
            problems.append(
                {
                    "number": heading_number(3, problem_no),
                    "title": leaf.title,
                    "short": _short_problem(leaf.title),
                    "done": problem_done(items),
                    "summary": measures_summary(items),
                    "measures": [_item_dict(i, n) for n, i in enumerate(items, start=1)],
                    "held_on": cn_date(leaf.held_on) if leaf.held_on else "",
                    "place": leaf.place,
                    "inspector": leaf.inspector,
                    "found": len(items),
                    "rectified": sum(1 for i in items if i.signed_off),
                }
            )
        aspects.append(
            {
                "number": heading_number(2, a_no),
                "title": top.title,
                "problems": problems,
                "held_on": cn_date(top.held_on) if top.held_on else "",
                "place": top.place,
                "inspector": top.inspector,
            }
        )
    hazard = None
    if ledger.kind is LedgerKind.HAZARD:
        stats = hazard_stats(snapshot)
        hazard = {
            "inspections": stats.inspections,
            "found": stats.found,
            "rectified": stats.rectified,
            "rate": stats.rate,
            "by_level": dict(stats.by_level),
            "sentence": stats.sentence(),
        }
    reference = ledger.issued_on or ledger.feedback_on
    return {
        "kind": ledger.kind.value,
        "title": ledger.bulletin_title or _default_title(snapshot),
        "ledger_title": ledger.title,
        "subject": ledger.subject,
        "authority": ledger.authority,
        "inspection_group": ledger.inspection_group,
        "onsite_text": onsite,
        "feedback_text": feedback,
        "as_of_text": cn_date(ledger.as_of, omit_year_of=reference) if ledger.as_of else "",
        "counts": {
            "aspects": c.aspects,
            "problems": c.problems,
            "measures": c.measures,
            "problems_done": c.problems_done,
            "problems_remaining": c.problems_remaining,
            "measures_signed_off": c.measures_signed_off,
        },
        "counts_sentence": counts_sentence(snapshot),
        "organisation": _blocks(ledger.organisation),
        "aspects": aspects,
        "next_steps": _blocks(ledger.next_steps),
        "contact": {
            "phone": ledger.contact_phone,
            "mailbox": ledger.contact_mailbox,
            "postcode": ledger.contact_postcode,
            "email": ledger.contact_email,
        },
        "contact_text": _contact_text(snapshot),
        "issuer": ledger.issuer,
        "issued_on_text": cn_date(ledger.issued_on) if ledger.issued_on else "",
        "hazard": hazard,
    }


def _item_dict(item: ItemFacts, n: int) -> dict[str, Any]:
    return {
        "number": heading_number(4, n),
        "ordinal": ordinal_phrase(n),
        "content": item.content,
        "completion": item.completion,
        "text": _sentence(item.completion or item.content),
        "signed_off": item.signed_off,
        "status": STATUS_LABELS_ZH[item.status],
        "state": STATE_LABELS_ZH[item.state],
        "unit": item.unit_name,
        "deadline": item.deadline_text,
        "hazard_class": item.hazard_class,
        "hazard_level": item.hazard_level,
        "location": item.location,
    }


def _blocks(blocks: Any) -> list[dict[str, str]]:
    return [
        {
            "number": heading_number(2, n),
            "heading": _sentence(b.heading) if b.heading else "",
            "text": b.text.strip(),
        }
        for n, b in enumerate(blocks, start=1)
    ]


def _default_title(snapshot: LedgerSnapshot) -> str:
    ledger = snapshot.ledger
    if ledger.kind is LedgerKind.RECTIFICATION:
        who = ledger.subject or ""
        return f"{who}关于巡察整改进展情况的通报"
    return f"{ledger.title}进展情况的通报"


def _contact_text(snapshot: LedgerSnapshot) -> str:
    ledger = snapshot.ledger
    parts = []
    if ledger.contact_phone:
        parts.append(f"电话{ledger.contact_phone}")
    if ledger.contact_mailbox:
        parts.append(f"邮政信箱：{ledger.contact_mailbox}")
    if ledger.contact_postcode:
        parts.append(f"邮政编码：{ledger.contact_postcode}")
    if ledger.contact_email:
        parts.append(f"电子邮箱：{ledger.contact_email}")
    return f"联系方式：{'；'.join(parts)}。" if parts else ""


# --------------------------------------------------------------------------------------------
# Rendering the template
# --------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md_escape(value: object) -> str:
    """Escape Markdown syntax in user text, so a ledger's "*" or "#" stays a character."""
    return _MD_SPECIAL.sub(r"\\\1", "" if value is None else str(value))


def default_template_text(kind: LedgerKind) -> str:
    return (
        resources.files("cityloop.ledgers")
        .joinpath("templates", f"{kind.value}_bulletin.md")
        .read_text(encoding="utf-8")
    )


def _environment() -> SandboxedEnvironment:
    # Sandboxed: a template is user-editable text and must not reach Python internals.
    env = SandboxedEnvironment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["sentence"] = _sentence
    env.filters["bare"] = _bare
    env.globals["heading"] = heading_number
    env.globals["cn_numeral"] = cn_numeral
    env.globals["ordinal"] = ordinal_phrase
    return env


def render_markdown(snapshot: LedgerSnapshot, template_text: str | None = None) -> str:
    """The bulletin as Markdown text (the template's output, tidied: trailing spaces removed,
    at most one blank line between blocks, one final newline)."""
    text = (
        template_text if template_text is not None else default_template_text(snapshot.ledger.kind)
    )
    if len(text) > TEMPLATE_MAX:
        raise InvalidInput("the template is too large (over 200,000 characters)", field="template")
    env = _environment()
    try:
        template = env.from_string(text)
        output = template.render(**bulletin_context(snapshot))
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidInput(
            f"the template has a syntax error on line {exc.lineno}: {exc.message}",
            field="template",
        ) from None
    except jinja2.UndefinedError as exc:
        raise InvalidInput(
            f"the template uses an unknown variable: {exc.message}", field="template"
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise InvalidInput(f"the template is not allowed: {exc}", field="template") from None
    lines: list[str] = []
    for line in (raw.rstrip() for raw in output.replace("\r\n", "\n").split("\n")):
        # A heading is a block of its own even when a template forgot the blank lines.
        previous = lines[-1] if lines else ""
        if previous and line and (line.startswith("#") or previous.startswith("#")):
            lines.append("")
        lines.append(line)
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return tidy + "\n"


# --------------------------------------------------------------------------------------------
# Markdown subset -> .docx
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    kind: str  # title | h1 | h2 | h3 | body | right
    runs: tuple[tuple[str, bool], ...]  # (text, bold)


_SHARED_PUNCT = re.compile(r"([“”‘’—…]+)")
_UNESCAPE = re.compile(r"\\([\\`*_\[\]<>#|])")
_RIGHT_RE = re.compile(r'^<p\s+align="right">(.*)</p>$', re.DOTALL)


def _runs(text: str) -> tuple[tuple[str, bool], ...]:
    """Split on unescaped ``**`` into alternating plain and bold runs, then unescape."""
    parts = re.split(r"(?<!\\)\*\*", text)
    runs = []
    for index, part in enumerate(parts):
        if part:
            runs.append((_UNESCAPE.sub(r"\1", part), index % 2 == 1))
    return tuple(runs)


def parse_blocks(markdown: str) -> list[Block]:
    """The Markdown subset the templates use, as blocks (see the module docstring)."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", markdown.strip()):
        text = "".join(line.strip() for line in chunk.splitlines())
        if not text:
            continue
        if m := _RIGHT_RE.match(text):
            for line in re.split(r"<br\s*/?>", m[1]):
                blocks.append(Block("right", _runs(line.strip())))
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", text)
        if heading:
            kind = {1: "title", 2: "h1", 3: "h2", 4: "h3"}[len(heading[1])]
            blocks.append(Block(kind, _runs(heading[2])))
        else:
            blocks.append(Block("body", _runs(text)))
    return blocks


@dataclass(frozen=True, slots=True)
class DocxStyle:
    """Fonts and sizes after GB/T 9704 (党政机关公文格式): 二号小标宋 title, 三号 body in 仿宋,
    黑体 / 楷体 headings, 28.95 pt lines (22 lines a page), A4 with 37/35/28/26 mm margins."""

    title_font: str = "方正小标宋简体"
    h1_font: str = "黑体"
    h2_font: str = "楷体_GB2312"
    body_font: str = "仿宋_GB2312"
    latin_font: str = "Times New Roman"
    title_size: float = 22
    body_size: float = 16
    line_spacing: float = 28.95
    page_number_font: str = "宋体"


def _set_font(run: Any, east_asian: str, latin: str, size: float, bold: bool = False) -> None:
    run.font.name = latin
    run.font.size = Pt(size)
    run.font.bold = bold
    r_pr = run._element.get_or_add_rPr()
    fonts = r_pr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        r_pr.insert(0, fonts)
    fonts.set(qn("w:eastAsia"), east_asian)
    fonts.set(qn("w:ascii"), latin)
    fonts.set(qn("w:hAnsi"), latin)
    # Characters both scripts use (“” ‘’ — …) take the East Asian font: full-width quotes, as
    # Chinese documents print them, instead of narrow Latin ones.
    fonts.set(qn("w:hint"), "eastAsia")


def text_width(text: str) -> float:
    """Width in characters of the body font: CJK and full-width 1, ASCII 0.5."""
    return sum(0.5 if ord(ch) < 0x2E80 and ch not in "“”‘’—…" else 1.0 for ch in text)


def signature_indents(lines: list[str]) -> list[float]:
    """Right indents (in characters) of the 落款 lines, after GB/T 9704-2012 7.3.5.2: the issuer
    右空二字, the date on the next line starting two characters right of the issuer's first
    character; a date alone 右空四字."""
    if len(lines) == 1:
        return [4.0]
    issuer, date = text_width(lines[0]), text_width(lines[1])
    indents = [2.0, max(2.0, 2.0 + issuer - 2.0 - date)]
    return indents + [2.0] * (len(lines) - 2)


def render_docx(
    snapshot: LedgerSnapshot,
    template_text: str | None = None,
    style: DocxStyle | None = None,
) -> bytes:
    """The bulletin as a .docx built from the rendered Markdown (same template, same words)."""
    return markdown_to_docx(render_markdown(snapshot, template_text), snapshot, style)


def markdown_to_docx(
    markdown: str, snapshot: LedgerSnapshot, style: DocxStyle | None = None
) -> bytes:
    st = style or DocxStyle()
    document = Document()
    section = document.sections[0]
    section.start_type = WD_SECTION.NEW_PAGE
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
    section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)
    normal = document.styles["Normal"]
    normal.font.name = st.latin_font
    normal.font.size = Pt(st.body_size)
    normal_rpr = normal.element.get_or_add_rPr()
    normal_rpr.get_or_add_rFonts().set(qn("w:eastAsia"), st.body_font)
    # Simplified-Chinese glyphs and punctuation (a renderer otherwise may pick Japanese forms).
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")
    normal_rpr.append(lang)
    indent = Pt(st.body_size * 2)
    fonts = {
        "title": (st.title_font, st.title_size),
        "h1": (st.h1_font, st.body_size),
        "h2": (st.h2_font, st.body_size),
        "h3": (st.body_font, st.body_size),
        "body": (st.body_font, st.body_size),
        "right": (st.body_font, st.body_size),
    }
    blocks = parse_blocks(markdown)
    right_indent: dict[int, float] = {}
    index = 0
    while index < len(blocks):
        if blocks[index].kind != "right":
            index += 1
            continue
        end = index
        while end < len(blocks) and blocks[end].kind == "right":
            end += 1
        lines = ["".join(text for text, _ in b.runs) for b in blocks[index:end]]
        for offset, chars in enumerate(signature_indents(lines)):
            right_indent[index + offset] = chars
        index = end
    for index, block in enumerate(blocks):
        paragraph = document.add_paragraph()
        fmt = paragraph.paragraph_format
        fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        fmt.line_spacing = Pt(st.line_spacing)
        fmt.space_before = Pt(0)
        fmt.space_after = Pt(0)
        font, size = fonts[block.kind]
        if block.kind in ("title", "h1", "h2", "h3"):
            fmt.keep_with_next = True  # never a heading alone at the foot of a page
        if block.kind == "title":
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            fmt.line_spacing = Pt(st.title_size * 1.6)
            fmt.space_after = Pt(st.line_spacing)
        elif block.kind == "right":
            paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            fmt.right_indent = Pt(st.body_size * right_indent[index])
            if index > 0 and blocks[index - 1].kind != "right":
                fmt.space_before = Pt(st.line_spacing * 2)
        else:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
            fmt.first_line_indent = indent
        for text, bold in block.runs:
            # Quotes and dashes get the Chinese font for every script, so they print
            # full-width in any word processor (Word honours w:hint, LibreOffice does not).
            for part in _SHARED_PUNCT.split(text):
                if part:
                    latin = font if _SHARED_PUNCT.fullmatch(part) else st.latin_font
                    run = paragraph.add_run(part)
                    _set_font(run, font, latin, size, bold or block.kind == "h3")
    _page_number_footer(section, st)
    _fixed_properties(document, snapshot)
    buffer = io.BytesIO()
    document.save(buffer)
    return normalise_zip(buffer.getvalue())


def _page_number_footer(section: Any, st: DocxStyle) -> None:
    """ "— 1 —" centred at the foot of every page (公文 page numbers)."""
    paragraph = section.footer.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _set_font(paragraph.add_run("— "), st.page_number_font, st.latin_font, 14)
    run = paragraph.add_run()
    _set_font(run, st.page_number_font, st.latin_font, 14)
    for kind, text in (("begin", None), (None, " PAGE "), ("separate", None), ("end", None)):
        if kind is None:
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._element.append(instr)
        else:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._element.append(char)
    _set_font(paragraph.add_run(" —"), st.page_number_font, st.latin_font, 14)


def _fixed_properties(document: Any, snapshot: LedgerSnapshot) -> None:
    """Core properties from the data only, so the document XML never depends on the clock."""
    ledger = snapshot.ledger
    when = FIXED_DOC_TIME
    if ledger.issued_on is not None:
        when = dt.datetime.combine(ledger.issued_on, dt.time(0, 0), tzinfo=dt.UTC)
    props = document.core_properties
    props.author = ledger.issuer or "cityloop"
    props.last_modified_by = "cityloop"
    props.title = ledger.bulletin_title or _default_title(snapshot)
    props.subject = ledger.title
    props.comments = ""
    props.keywords = "通报"
    props.revision = 1
    props.created = when.replace(tzinfo=None)
    props.modified = when.replace(tzinfo=None)
    props.last_printed = when.replace(tzinfo=None)


def render(
    snapshot: LedgerSnapshot, fmt: str, template_text: str | None = None
) -> tuple[bytes, str]:
    """(bytes, media type) of the bulletin in ``fmt`` ("md" or "docx")."""
    if fmt == "md":
        return render_markdown(snapshot, template_text).encode("utf-8"), "text/markdown"
    if fmt == "docx":
        media = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        return render_docx(snapshot, template_text), media
    raise InvalidInput(f"unknown bulletin format {fmt!r}: use md or docx", field="format")


def template_names() -> Mapping[LedgerKind, str]:
    return {kind: f"{kind.value}_bulletin.md" for kind in LedgerKind}
