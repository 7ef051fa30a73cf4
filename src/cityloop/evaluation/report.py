"""The monthly evaluation report (月考评) as a Word document and as an HTML page.

Both are rendered from one ``MonthlyReport`` (service.monthly_report), so the page, the document
and the API always show the same numbers and the same "—" for nothing due.

Deterministic for the same data: no "generated at" clock anywhere (the date shown is the
period's end), fixed document core properties, stable ordering everywhere, charts drawn by
Pillow with fixed sizes, and the .docx zip written with fixed member timestamps, so the same data
gives the same bytes and a report can be checked by its hash.

Charts are drawn with a CJK font found on the machine (``ReportSettings.cjk_font`` or the usual
Debian paths; Debian package ``fonts-noto-cjk``). Without such a font the charts are left out with
a note, never drawn as boxes of missing glyphs.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Cm, Pt, RGBColor
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image, ImageDraw, ImageFont

from cityloop.evaluation.domain import DASH, fmt_pct, fmt_score
from cityloop.evaluation.schemas import MonthlyReport, SubjectKpis

FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)

GRADE_COLOURS: dict[str, tuple[int, int, int]] = {
    "A": (46, 125, 50),
    "B": (21, 101, 192),
    "C": (249, 168, 37),
    "D": (239, 108, 0),
    "E": (198, 40, 40),
}
NEUTRAL = (96, 125, 139)

# The document's fonts: 宋体 for text and 黑体 for headings, the convention of Chinese official
# documents; a machine without them substitutes its own CJK face (fontconfig, Word).
BODY_FONT = "宋体"
HEADING_FONT = "黑体"
LATIN_FONT = "Times New Roman"


# --------------------------------------------------------------------------------------------
# Fonts and charts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CjkFont:
    path: str
    index: int

    def at(self, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(self.path, size, index=self.index)


def find_cjk_font(configured: str = "") -> CjkFont | None:
    """A font file with Chinese glyphs: the configured one, $CITYLOOP_CJK_FONT, or a known path.

    In a collection (.ttc) the Simplified Chinese face is preferred, so 综/处/置 take their
    mainland forms.
    """
    paths = [p for p in (configured, os.environ.get("CITYLOOP_CJK_FONT", "")) if p]
    paths += list(FONT_CANDIDATES)
    for path in paths:
        if not Path(path).is_file():
            continue
        best: CjkFont | None = None
        for index in range(12):
            try:
                face = ImageFont.truetype(path, 20, index=index)
            except OSError:
                break
            family = face.getname()[0] or ""
            if _has_cjk(face):
                if best is None:
                    best = CjkFont(path, index)
                if " SC" in family or family.endswith("SC") or "Micro Hei" in family:
                    return CjkFont(path, index)
            if not path.endswith((".ttc", ".otc")):
                break
        if best is not None:
            return best
    return None


def _has_cjk(face: ImageFont.FreeTypeFont) -> bool:
    """True when the face draws 综 as something other than its missing-glyph box."""
    sample = face.getmask("综").getbbox()
    missing = face.getmask("\U000f0000").getbbox()  # private use: surely the .notdef box
    return sample is not None and sample != missing


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    colour: tuple[int, int, int] = NEUTRAL


def bar_chart(
    title: str, bars: Sequence[Bar], font: CjkFont, *, max_value: float | None = None
) -> bytes:
    """A horizontal bar chart as PNG bytes (deterministic for the same input)."""
    scale = 2  # drawn at twice the size for a crisp print
    width = 900 * scale
    row = 34 * scale
    top = 70 * scale
    label_w = 260 * scale
    height = top + row * max(1, len(bars)) + 30 * scale
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    f_title = font.at(22 * scale)
    f_text = font.at(15 * scale)
    draw.text((20 * scale, 18 * scale), title, font=f_title, fill=(33, 33, 33))
    top_value = max_value or max((b.value for b in bars), default=0.0) or 1.0
    plot_w = width - label_w - 120 * scale
    for i, bar in enumerate(bars):
        y = top + i * row
        label = bar.label if len(bar.label) <= 14 else bar.label[:13] + "…"
        lw = draw.textlength(label, font=f_text)
        draw.text((label_w - 12 * scale - lw, y + 6 * scale), label, font=f_text, fill=(33, 33, 33))
        length = int(plot_w * max(0.0, min(1.0, bar.value / top_value)))
        draw.rectangle(
            (label_w, y + 6 * scale, label_w + max(length, 2), y + row - 6 * scale),
            fill=bar.colour,
        )
        draw.text(
            (label_w + length + 8 * scale, y + 6 * scale), bar.text, font=f_text, fill=(66, 66, 66)
        )
    draw.line((label_w, top - 4 * scale, label_w, height - 24 * scale), fill=(120, 120, 120))
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _score_bars(subjects: Sequence[SubjectKpis]) -> list[Bar]:
    return [
        Bar(s.name, s.composite or 0.0, f"{fmt_score(s.composite)}  {s.grade}", _grade_colour(s))
        for s in subjects
        if s.composite is not None
    ]


def _grade_colour(s: SubjectKpis) -> tuple[int, int, int]:
    return GRADE_COLOURS.get(s.grade, NEUTRAL)


@dataclass(frozen=True)
class Charts:
    departments: bytes | None
    subdistricts: bytes | None
    classes: bytes | None
    note: str | None  # why charts are missing, if they are


def make_charts(report: MonthlyReport, configured_font: str = "") -> Charts:
    font = find_cjk_font(configured_font)
    if font is None:
        return Charts(
            None,
            None,
            None,
            "未找到中文字体，图表从略（安装 fonts-noto-cjk 或配置 report.cjk_font）。",
        )
    k = report.kpis
    dept_bars = _score_bars(k.departments)
    sub_bars = _score_bars(k.subdistricts)
    class_bars = [Bar(c.name, float(c.count), f"{c.count} 件") for c in report.top_classes]
    return Charts(
        departments=bar_chart("专业部门综合指标值", dept_bars, font, max_value=100)
        if dept_bars
        else None,
        subdistricts=bar_chart("街道综合指标值", sub_bars, font, max_value=100)
        if sub_bars
        else None,
        classes=bar_chart("高发问题类别（立案数）", class_bars, font) if class_bars else None,
        note=None,
    )


# --------------------------------------------------------------------------------------------
# Tables shared by both formats
# --------------------------------------------------------------------------------------------

Table = tuple[list[str], list[list[str]]]


def _d(subject: SubjectKpis, key: str) -> str:
    return subject.display.get(key, DASH)


def _rank(s: SubjectKpis) -> str:
    return DASH if s.rank is None else str(s.rank)


def _count(s: SubjectKpis, key: str) -> str:
    return str(int(s.counts.get(key, 0)))


def headline_table(r: MonthlyReport) -> Table:
    h = r.kpis.headline
    return (
        ["立案数", "处置率", "按期处置率", "结案率", "返工率", "满意率"],
        [
            [
                str(h.filed),
                h.display["disposal_rate"],
                h.display["on_time_disposal_rate"],
                h.display["closing_rate"],
                h.display["rework_rate"],
                h.display["satisfaction_rate"],
            ]
        ],
    )


def headline_sentence(r: MonthlyReport) -> str:
    h = r.kpis.headline.display
    return (
        f"本月立案{r.kpis.headline.filed}件，案件处置率{h['disposal_rate']}、"
        f"按期处置率{h['on_time_disposal_rate']}、结案率{h['closing_rate']}、"
        f"返工率{h['rework_rate']}，群众满意率{h['satisfaction_rate']}。"
    )


def department_table(r: MonthlyReport) -> Table:
    return (
        [
            "排名",
            "部门",
            "应处置",
            "处置率",
            "按期处置率",
            "结案率",
            "返工率",
            "抽查通过率",
            "综合指标值",
            "等级",
            "环比",
            "同比",
        ],
        [
            [
                _rank(s),
                s.name,
                _count(s, "due_disposal"),
                _d(s, "disposal_rate"),
                _d(s, "on_time_disposal_rate"),
                _d(s, "closing_rate"),
                _d(s, "rework_rate"),
                _d(s, "audit_pass_rate"),
                s.composite_display,
                s.grade,
                s.delta_prev_month_display,
                s.delta_last_year_display,
            ]
            for s in r.kpis.departments
        ],
    )


def territory_table(subjects: Sequence[SubjectKpis], label: str) -> Table:
    return (
        [
            "排名",
            label,
            "立案数",
            "处置率",
            "按期处置率",
            "结案率",
            "返工率",
            "综合指标值",
            "等级",
            "环比",
            "同比",
        ],
        [
            [
                _rank(s),
                s.name,
                _count(s, "filed"),
                _d(s, "disposal_rate"),
                _d(s, "on_time_disposal_rate"),
                _d(s, "closing_rate"),
                _d(s, "rework_rate"),
                s.composite_display,
                s.grade,
                s.delta_prev_month_display,
                s.delta_last_year_display,
            ]
            for s in subjects
        ],
    )


ROLE_TABLES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "inspectors",
        "监督员",
        (
            ("上报数", "#reports"),
            ("有效上报率", "valid_report_rate"),
            ("漏报率", "missed_report_rate"),
            ("按时核实率", "on_time_verify_rate"),
            ("按时核查率", "on_time_check_rate"),
        ),
    ),
    (
        "intake_operators",
        "受理员",
        (
            ("派发核实", "#verify_sends"),
            ("按时派发核实率", "on_time_send_verify_rate"),
            ("派发核查", "#check_sends"),
            ("按时派发核查率", "on_time_send_check_rate"),
            ("回访数", "#callbacks"),
        ),
    ),
    (
        "shift_supervisors",
        "值班长",
        (
            ("立案数", "#filings"),
            ("按时立案率", "on_time_filing_rate"),
            ("准确立案率", "accurate_filing_rate"),
            ("按时结案率", "on_time_close_rate"),
        ),
    ),
    (
        "dispatchers",
        "派遣员",
        (
            ("派遣数", "#dispatches"),
            ("按时派遣率", "on_time_dispatch_rate"),
            ("准确派遣率", "accurate_dispatch_rate"),
        ),
    ),
)


def role_table(r: MonthlyReport, attr: str, label: str, cols: Sequence[tuple[str, str]]) -> Table:
    subjects: list[SubjectKpis] = getattr(r.kpis, attr)
    rows = []
    for s in subjects:
        cells = [_rank(s), s.name]
        for _, key in cols:
            cells.append(_count(s, key[1:]) if key.startswith("#") else _d(s, key))
        cells += [s.composite_display, s.grade]
        rows.append(cells)
    return (["排名", label, *(c[0] for c in cols), "综合指标值", "等级"], rows)


def hotline_table(r: MonthlyReport) -> Table:
    h = r.kpis.hotline
    rows = [
        [
            x.name,
            str(x.owed),
            x.display["response_rate"],
            x.display["resolution_rate"],
            x.display["satisfaction_rate"],
            x.display["composite"],
        ]
        for x in [h.city, *h.departments]
    ]
    return (["单位", "应回访", "响应率", "解决率", "满意率", "三率综合"], rows)


def class_table(r: MonthlyReport) -> Table:
    return (
        ["序号", "小类代码", "小类名称", "立案数"],
        [
            [str(i), c.code or DASH, c.name, str(c.count)]
            for i, c in enumerate(r.top_classes, start=1)
        ],
    )


def hotspot_tables(r: MonthlyReport) -> tuple[Table, Table]:
    cells = (
        ["序号", "单元网格", "立案数"],
        [[str(i), c.cell_code, str(c.count)] for i, c in enumerate(r.hotspot_cells, start=1)],
    )
    subs = (
        ["序号", "街道", "立案数"],
        [[str(i), s.name, str(s.count)] for i, s in enumerate(r.hotspot_subdistricts, start=1)],
    )
    return cells, subs


def repeat_table(r: MonthlyReport) -> Table:
    return (
        ["单元网格", "小类", "次数", "案卷号"],
        [
            [
                p.cell_code,
                f"{p.minor_code or ''} {p.minor_name}".strip(),
                str(p.count),
                "、".join(p.case_codes) + ("等" if p.count > len(p.case_codes) else ""),
            ]
            for p in r.repeats
        ],
    )


def repeat_sentence(r: MonthlyReport) -> str:
    more = f"，列出最多的 {len(r.repeats)} 个" if len(r.repeats) < r.repeat_total else ""
    return (
        f"同一单元网格、同一小类本月立案 {r.repeat_threshold} 次及以上的问题共 "
        f"{r.repeat_total} 个{more}："
    )


def _local_text(value: dt.datetime | None) -> str:
    return "未处置" if value is None else value.strftime("%Y-%m-%d %H:%M")


def overdue_table(r: MonthlyReport) -> Table:
    return (
        ["案卷号", "处置单位", "处置时限", "处置时间", "超期（小时）"],
        [
            [
                o.code,
                o.department_name,
                _local_text(o.deadline),
                _local_text(o.disposed_at),
                f"{o.overdue_hours:.1f}",
            ]
            for o in r.overdue
        ],
    )


def audit_tables(r: MonthlyReport) -> tuple[Table, Table]:
    summary = (
        ["部门", "抽取", "通过", "不通过", "待审", "抽查通过率"],
        [
            [
                a.department_name,
                str(a.drawn),
                str(a.passed),
                str(a.failed),
                str(a.pending),
                a.pass_rate_display,
            ]
            for a in r.audits
        ],
    )
    failures = (
        ["案卷号", "部门", "抽查人", "原因"],
        [
            [f.case_code, f.department_name, f.auditor_name or DASH, f.reason or ""]
            for f in r.audit_failures
        ],
    )
    return summary, failures


DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("处置率", "处置数 ÷ 应处置数；应处置 = 本月到期或本月完成的处置任务（不含回退、作废）"),
    ("按期处置率", "按期处置数 ÷ 应处置数；按期 = 处置反馈不晚于当时有效的处置时限"),
    ("结案率", "应处置任务所属案件中，月末前已结案的比例"),
    ("返工率", "本月处置反馈中核查不通过（返工）的比例"),
    ("满意率", "（满意 + 0.9 × 基本满意）÷ 回访评价数"),
    ("综合指标值", "按配置的权重加权各项指标得分（0–100），A ≥ 90，B ≥ 75，C ≥ 60，D ≥ 40，其余 E"),
    ("—", "分母为零（本期无应考核事项），不计分、不排名"),
)


def period_text(r: MonthlyReport) -> str:
    k = r.kpis
    last = k.period_end - dt.timedelta(days=1)
    return f"{k.period_start:%Y年%m月%d日}至{last:%Y年%m月%d日}"


def hotline_period_text(r: MonthlyReport) -> str:
    h = r.kpis.hotline
    last = h.period_end - dt.timedelta(days=1)
    return f"{h.period_start:%Y年%m月%d日}至{last:%Y年%m月%d日}"


def month_title(r: MonthlyReport) -> str:
    year, month = r.month.split("-")
    return f"{r.title}（{int(year)}年{int(month)}月）"


# --------------------------------------------------------------------------------------------
# Word
# --------------------------------------------------------------------------------------------


def _set_fonts(document: object) -> None:
    styles = document.styles  # type: ignore[attr-defined]
    for name, east in (
        ("Normal", BODY_FONT),
        ("Title", HEADING_FONT),
        ("Heading 1", HEADING_FONT),
        ("Heading 2", HEADING_FONT),
        ("Caption", BODY_FONT),
    ):
        style = styles[name]
        style.font.name = LATIN_FONT
        rpr = style.element.get_or_add_rPr()
        fonts = rpr.find(qn("w:rFonts"))
        if fonts is None:
            fonts = rpr.makeelement(qn("w:rFonts"), {})
            rpr.append(fonts)
        fonts.set(qn("w:eastAsia"), east)
        fonts.set(qn("w:ascii"), LATIN_FONT)
        fonts.set(qn("w:hAnsi"), LATIN_FONT)
        if name != "Normal":
            style.font.color.rgb = RGBColor(0, 0, 0)
    styles["Normal"].font.size = Pt(10.5)


TEXT_WIDTH_CM = 17.4  # A4 less 1.8 cm margins


def _display_len(text: str) -> int:
    """Printed width in half-width units: a CJK character is two, a digit or letter a bit more
    than one (Latin text sets wider than half a CJK cell at the same size)."""
    return round(sum(2 if ord(ch) > 0x2E7F else 1.2 for ch in text))


def column_widths(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, total_cm: float
) -> list[float]:
    """Column widths in cm, proportional to the longest value (long headers may wrap)."""
    weights = []
    for i, head in enumerate(header):
        longest = max((_display_len(r[i]) for r in rows), default=0)
        # +2: cell padding, so "100.00%" stays on one line in a narrow column
        weights.append(float(max(5, min(40, max(longest, min(_display_len(head), 8)))) + 2))
    total = sum(weights)
    return [total_cm * w / total for w in weights]


def _table(document: object, table: Table, *, font_size: float = 9) -> None:
    """A bordered, centred table with fixed column widths.

    Written as one WordprocessingML string and parsed once: python-docx's cell-by-cell API costs
    about a millisecond per cell (and ``table.cell``/``row.cells`` walk the whole grid on every
    call), which made the people's tables of a large city take a minute.
    """
    header, rows = table
    if not rows:
        document.add_paragraph("（无）")  # type: ignore[attr-defined]
        return
    widths = [int(Cm(w).twips) for w in column_widths(header, rows, total_cm=TEXT_WIDTH_CM)]
    size = round(font_size * 2)  # half-points
    style = document.styles["Table Grid"].style_id  # type: ignore[attr-defined]
    parts = [
        f'<w:tbl {nsdecls("w")}><w:tblPr><w:tblStyle w:val="{style}"/>'
        '<w:tblW w:w="0" w:type="auto"/><w:jc w:val="center"/>'
        '<w:tblLayout w:type="fixed"/></w:tblPr><w:tblGrid>',
        *(f'<w:gridCol w:w="{w}"/>' for w in widths),  # what LibreOffice lays out by
        "</w:tblGrid>",
    ]
    for r_i, values in enumerate([header, *rows]):
        bold = "<w:b/>" if r_i == 0 else ""
        parts.append("<w:tr>")
        for c_i, value in enumerate(values):
            parts.append(
                f'<w:tc><w:tcPr><w:tcW w:w="{widths[c_i]}" w:type="dxa"/></w:tcPr>'
                '<w:p><w:pPr><w:jc w:val="center"/></w:pPr>'
                f'<w:r><w:rPr>{bold}<w:sz w:val="{size}"/><w:szCs w:val="{size}"/></w:rPr>'
                f'<w:t xml:space="preserve">{xml_escape(value)}</w:t></w:r></w:p></w:tc>'
            )
        parts.append("</w:tr>")
    parts.append("</w:tbl>")
    body = document.element.body  # type: ignore[attr-defined]
    body.insert(len(body) - 1, parse_xml("".join(parts)))  # before the final sectPr


def _picture(document: object, png: bytes | None, width_cm: float = 16.0) -> None:
    if png is None:
        return
    document.add_picture(io.BytesIO(png), width=Cm(width_cm))  # type: ignore[attr-defined]
    document.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER  # type: ignore[attr-defined]


FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite the .docx zip with fixed member times so equal content gives equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def to_docx(report: MonthlyReport, charts: Charts) -> bytes:
    """The report as .docx bytes."""
    document = Document()
    _set_fonts(document)
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(1.8))
    section.top_margin = section.bottom_margin = Cm(2.0)

    props = document.core_properties
    fixed = report.kpis.period_end.astimezone(dt.UTC).replace(tzinfo=None)
    props.title = month_title(report)
    props.subject = "数字城管月度考评"
    props.author = "cityloop"
    props.last_modified_by = "cityloop"
    props.comments = ""
    props.keywords = "综合评价;月考评"
    props.category = "evaluation"
    props.revision = 1
    props.created = fixed
    props.modified = fixed
    props.last_printed = fixed

    title = document.add_heading(month_title(report), level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.add_paragraph(
        f"考评周期：{period_text(report)}；12345 三率考核周期：{hotline_period_text(report)}。"
        "数据截至考评周期结束时刻，由案件事件记录计算。"
    )

    document.add_heading("一、总体情况", level=1)
    document.add_paragraph(headline_sentence(report))
    _table(document, headline_table(report), font_size=10.5)

    document.add_heading("二、专业部门考评排名", level=1)
    _table(document, department_table(report), font_size=7.5)
    _picture(document, charts.departments)

    document.add_heading("三、街道、社区考评排名", level=1)
    _table(document, territory_table(report.kpis.subdistricts, "街道"), font_size=7.5)
    _picture(document, charts.subdistricts)
    if report.kpis.communities:
        document.add_heading("社区", level=2)
        _table(document, territory_table(report.kpis.communities, "社区"), font_size=7.5)

    document.add_heading("四、岗位考评", level=1)
    for attr, label, cols in ROLE_TABLES:
        document.add_heading(label, level=2)
        _table(document, role_table(report, attr, label, cols), font_size=8)

    document.add_heading("五、12345 热线“三率”", level=1)
    w = report.kpis.hotline.weights
    document.add_paragraph(
        f"三率综合 = {w[0]:g} × 响应率 + {w[1]:g} × 解决率 + {w[2]:g} × 满意率（百分制）。"
    )
    _table(document, hotline_table(report))

    document.add_heading("六、高发问题与热点区域", level=1)
    _table(document, class_table(report))
    _picture(document, charts.classes)
    cells, subs = hotspot_tables(report)
    document.add_heading("热点单元网格", level=2)
    _table(document, cells)
    document.add_heading("热点街道", level=2)
    _table(document, subs)

    document.add_heading("七、重复发生问题", level=1)
    document.add_paragraph(repeat_sentence(report))
    _table(document, repeat_table(report))

    document.add_heading("八、超期案件", level=1)
    shown = len(report.overdue)
    more = f"（列出前 {shown} 件）" if shown < report.overdue_total else ""
    document.add_paragraph(f"本月应处置任务中超期 {report.overdue_total} 件{more}。")
    _table(document, overdue_table(report))

    document.add_heading("九、“双随机”抽查结果", level=1)
    summary, failures = audit_tables(report)
    _table(document, summary)
    if failures[1]:
        document.add_heading("未通过案件", level=2)
        _table(document, failures)

    if charts.note:
        document.add_paragraph(charts.note)
    document.add_heading("附：指标口径", level=1)
    for name, text in DEFINITIONS:
        document.add_paragraph(f"{name}：{text}")

    out = io.BytesIO()
    document.save(out)
    return _normalise_zip(out.getvalue())


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_env = Environment(
    loader=PackageLoader("cityloop.evaluation", "templates"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def to_html(report: MonthlyReport, charts: Charts) -> str:
    """The report as one self-contained HTML page (charts inline)."""
    cells, subs = hotspot_tables(report)
    summary, failures = audit_tables(report)
    shown = len(report.overdue)
    return _env.get_template("monthly.html").render(
        title=month_title(report),
        period=period_text(report),
        hotline_period=hotline_period_text(report),
        sentence=headline_sentence(report),
        headline=headline_table(report),
        departments=department_table(report),
        subdistricts=territory_table(report.kpis.subdistricts, "街道"),
        communities=territory_table(report.kpis.communities, "社区"),
        roles=[(label, role_table(report, attr, label, cols)) for attr, label, cols in ROLE_TABLES],
        hotline=hotline_table(report),
        weights=report.kpis.hotline.weights,
        classes=class_table(report),
        cells=cells,
        subs=subs,
        repeats=repeat_table(report),
        repeat_sentence=repeat_sentence(report),
        overdue=overdue_table(report),
        overdue_total=report.overdue_total,
        overdue_more=shown < report.overdue_total,
        overdue_shown=shown,
        audit_summary=summary,
        audit_failures=failures,
        chart_departments=_data_uri(charts.departments),
        chart_subdistricts=_data_uri(charts.subdistricts),
        chart_classes=_data_uri(charts.classes),
        chart_note=charts.note,
        definitions=DEFINITIONS,
    )


def render(report: MonthlyReport, fmt: str, configured_font: str = "") -> bytes:
    """``docx`` or ``html`` bytes of the report."""
    charts = make_charts(report, configured_font)
    if fmt == "docx":
        return to_docx(report, charts)
    if fmt == "html":
        return to_html(report, charts).encode("utf-8")
    raise ValueError(f"unknown report format {fmt!r}")


__all__ = [
    "Bar",
    "Charts",
    "CjkFont",
    "bar_chart",
    "find_cjk_font",
    "fmt_pct",
    "make_charts",
    "render",
    "to_docx",
    "to_html",
]
