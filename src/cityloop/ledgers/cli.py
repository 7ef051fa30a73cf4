"""`cityloop ledger ...`: list, create, edit, import, export, bulletin, template, stats, overdue
and chart.

Commands act as the system actor (an administrator at the console). Bad input raises a
``CityloopError``; the top-level CLI prints it as one ``error: ...`` line with exit code 2.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cityloop.cli_support import open_database, validation_sentence
from cityloop.errors import InvalidInput
from cityloop.ledgers import bulletin, service
from cityloop.ledgers.domain import LedgerKind
from cityloop.ledgers.schemas import LedgerCreate, LedgerUpdate, StatsPublic
from cityloop.org.domain import SYSTEM_ACTOR

app = typer.Typer(
    help="Rectification, hazard and checklist ledgers (整改台账): Excel, bulletins, statistics.",
    no_args_is_help=True,
)


def parse_date(text: str | None, *, option: str) -> dt.date | None:
    """ "2023-02-03" (or 2023/2/3, 2023年2月3日) as a date; None stays None."""
    if text is None:
        return None
    cleaned = text.strip()
    for sep in ("年", "月", "/", "."):
        cleaned = cleaned.replace(sep, "-")
    cleaned = cleaned.rstrip("日").strip("-")
    try:
        year, month, day = (int(p) for p in cleaned.split("-"))
        return dt.date(year, month, day)
    except ValueError:
        raise InvalidInput(
            f"cannot read {option} {text!r}: expected a date such as 2023-02-03", field=option
        ) from None


def _write(out: Path, data: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)


@app.command("list")
def list_ledgers(
    kind: Annotated[LedgerKind | None, typer.Option(help="Only ledgers of this kind.")] = None,
) -> None:
    """List ledgers with their item, signed-off and overdue counts."""
    for s in service.list_ledgers(open_database().uow(), SYSTEM_ACTOR, kind=kind):
        typer.echo(
            f"{s.id}\t{s.kind.value}\t{s.title}\titems={s.items}\tsigned_off={s.signed_off}"
            f"\toverdue={s.overdue}"
        )


def _create(
    kind: LedgerKind,
    title: str,
    subject: str,
    group: str,
    authority: str,
    onsite_start: str | None,
    onsite_end: str | None,
    feedback_date: str | None,
) -> int:
    try:
        data = LedgerCreate(
            kind=kind,
            title=title,
            subject=subject,
            inspection_group=group,
            authority=authority,
            onsite_start=parse_date(onsite_start, option="onsite-start"),
            onsite_end=parse_date(onsite_end, option="onsite-end"),
            feedback_on=parse_date(feedback_date, option="feedback-date"),
        )
    except ValidationError as exc:
        raise InvalidInput(validation_sentence(exc)) from None
    return service.create_ledger(open_database().uow(), SYSTEM_ACTOR, data).id


KindOpt = Annotated[LedgerKind, typer.Option(help="rectification | hazard | checklist")]
TitleOpt = Annotated[str | None, typer.Option(help="Ledger title.")]
SubjectOpt = Annotated[str, typer.Option(help="被巡察单位, e.g. 区城市管理委党组.")]
GroupOpt = Annotated[str, typer.Option(help="巡察组, e.g. 区委第四巡察组.")]
AuthorityOpt = Annotated[str, typer.Option(help="统一部署 by, e.g. 海淀区委.")]
DateOpt = Annotated[str | None, typer.Option(help="A date, e.g. 2023-02-03.")]


@app.command("create")
def create(
    title: Annotated[str, typer.Option(help="Ledger title.")],
    kind: KindOpt = LedgerKind.RECTIFICATION,
    subject: SubjectOpt = "",
    group: GroupOpt = "",
    authority: AuthorityOpt = "",
    onsite_start: DateOpt = None,
    onsite_end: DateOpt = None,
    feedback_date: DateOpt = None,
) -> None:
    """Create an empty ledger."""
    ledger_id = _create(
        kind, title, subject, group, authority, onsite_start, onsite_end, feedback_date
    )
    typer.echo(f"created ledger {ledger_id}")


@app.command("edit")
def edit(
    ledger_id: int,
    from_json: Annotated[
        Path | None,
        typer.Option(
            "--from-json",
            help="A JSON object of header/bulletin fields (organisation, next_steps, contact_*…).",
        ),
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="截至 date of the counts.")] = None,
    issuer: Annotated[str | None, typer.Option(help="落款 (issuer).")] = None,
    issued_on: Annotated[str | None, typer.Option(help="Date of the bulletin.")] = None,
    feedback_date: Annotated[str | None, typer.Option(help="Feedback date.")] = None,
) -> None:
    """Change a ledger's header and bulletin fields."""
    values: dict[str, object] = {}
    if from_json is not None:
        try:
            loaded = json.loads(from_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{from_json} is not valid JSON: {exc.msg}") from None
        if not isinstance(loaded, dict):
            raise InvalidInput(f"{from_json} must hold a JSON object")
        values.update(loaded)
    if as_of is not None:
        values["as_of"] = parse_date(as_of, option="as-of")
    if issuer is not None:
        values["issuer"] = issuer
    if issued_on is not None:
        values["issued_on"] = parse_date(issued_on, option="issued-on")
    if feedback_date is not None:
        values["feedback_on"] = parse_date(feedback_date, option="feedback-date")
    try:
        data = LedgerUpdate.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(validation_sentence(exc)) from None
    ledger = service.update_ledger(open_database().uow(), SYSTEM_ACTOR, ledger_id, data)
    typer.echo(f"ledger {ledger.id} updated (version {ledger.version})")


@app.command("import")
def import_workbook(
    file: Annotated[Path, typer.Argument(help="An .xlsx ledger.")],
    ledger: Annotated[
        int | None, typer.Option(help="Add to this ledger; without it a new one is created.")
    ] = None,
    kind: KindOpt = LedgerKind.RECTIFICATION,
    title: TitleOpt = None,
    subject: SubjectOpt = "",
    group: GroupOpt = "",
    authority: AuthorityOpt = "",
    onsite_start: DateOpt = None,
    onsite_end: DateOpt = None,
    feedback_date: DateOpt = None,
) -> None:
    """Import an Excel ledger, all or nothing (every error is listed with its row number)."""
    data = file.read_bytes()
    database = open_database()
    ledger_id = ledger
    if ledger_id is None:
        ledger_id = _create(
            kind,
            title or file.stem,
            subject,
            group,
            authority,
            onsite_start,
            onsite_end,
            feedback_date,
        )
    report = service.import_xlsx(database.uow(), SYSTEM_ACTOR, ledger_id, data)
    typer.echo(
        f"imported {report.rows} rows into ledger {report.ledger_id}: "
        f"{report.groups_created} groups, {report.items_created} items"
    )


@app.command("export")
def export(
    ledger_id: int,
    out: Annotated[Path, typer.Option(help="The .xlsx file to write.")],
) -> None:
    """Export a ledger to Excel (the same columns the import reads)."""
    _write(out, service.export_xlsx(open_database().uow(), SYSTEM_ACTOR, ledger_id))
    typer.echo(f"wrote {out}")


@app.command("bulletin")
def make_bulletin(
    ledger_id: int,
    out: Annotated[Path, typer.Option(help="The file to write.")],
    format: Annotated[str, typer.Option("--format", help="docx or md.")] = "docx",
    template: Annotated[
        Path | None, typer.Option(help="An edited template (see `cityloop ledger template`).")
    ] = None,
) -> None:
    """Generate the public progress bulletin (通报) as .docx or Markdown."""
    text = template.read_text(encoding="utf-8-sig") if template is not None else None
    data, _ = service.render_bulletin(
        open_database().uow(), SYSTEM_ACTOR, ledger_id, format, template_text=text
    )
    _write(out, data)
    typer.echo(f"wrote {out}")


@app.command("template")
def template(
    kind: Annotated[LedgerKind, typer.Argument(help="rectification | hazard | checklist")],
    out: Annotated[Path, typer.Option(help="Where to write the copy.")],
) -> None:
    """Write the default bulletin template of a kind, to edit and pass to --template."""
    _write(out, bulletin.default_template_text(kind).encode("utf-8"))
    typer.echo(f"wrote {out}")


def format_stats(stats: StatsPublic) -> str:
    """Statistics as a few plain-text tables."""
    t = stats.totals
    lines = [
        stats.counts_sentence,
        f"总计: {t.items} 项, 已销号 {t.signed_off} ({t.signoff_rate}), 待审 {t.pending}, "
        f"超期 {t.overdue}, 反弹 {t.relapses} 次 / {t.items_relapsed} 项 (当前 {t.relapsed_now})",
    ]
    if stats.hazard is not None:
        lines.append(stats.hazard.sentence)
    for title, rows in (
        ("按方面", stats.by_group),
        ("按责任单位", stats.by_unit),
        ("按阶段", stats.by_stage),
    ):
        lines.append(f"\n{title}:")
        for r in rows:
            lines.append(
                f"  {r.label}\t{r.signed_off}/{r.items}\t{r.signoff_rate}\t超期 {r.overdue}"
                f"\t反弹 {r.relapses}"
            )
    return "\n".join(lines)


@app.command("stats")
def stats(
    ledger_id: int,
    since: Annotated[str | None, typer.Option(help="Hazard counts from this date.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Progress by aspect, unit and stage; overdue; relapses; hazard numbers."""
    result = service.ledger_stats(
        open_database().uow(),
        SYSTEM_ACTOR,
        ledger_id,
        since=parse_date(since, option="since"),
    )
    typer.echo(result.model_dump_json(indent=2) if as_json else format_stats(result))


@app.command("overdue")
def overdue(ledger_id: int) -> None:
    """Items past their deadline and not signed off."""
    for item in service.list_overdue(open_database().uow(), SYSTEM_ACTOR, ledger_id):
        typer.echo(
            f"{item.id}\t{item.due_on}\t{item.unit_name}\t{item.state_label}\t{item.content[:40]}"
        )


@app.command("chart")
def chart(
    ledger_id: int,
    out: Annotated[Path, typer.Option(help="The .svg file to write.")],
) -> None:
    """Write the progress chart (挂图作战) as SVG."""
    svg = service.chart_svg(open_database().uow(), SYSTEM_ACTOR, ledger_id, until=None)
    _write(out, svg.encode("utf-8"))
    typer.echo(f"wrote {out}")
