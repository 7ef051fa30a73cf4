"""`cityloop report ...`: the monthly report, KPIs, evaluation settings, audits, Parquet export.

The lead mounts ``app`` as ``cityloop report``; commands act as the system administrator, like
the other capability CLIs (whoever runs the CLI on the server already holds the database).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cityloop.cli_support import open_database
from cityloop.errors import InvalidInput
from cityloop.evaluation import audit, report, service
from cityloop.evaluation.domain import parse_month_label
from cityloop.evaluation.engine import export_parquet
from cityloop.org.domain import SYSTEM_ACTOR

app = typer.Typer(
    help="Evaluation: the monthly report (月考评), KPIs, settings, 双随机 audits.",
    no_args_is_help=True,
)

MonthOption = Annotated[str, typer.Option("--month", help="The month, YYYY-MM (e.g. 2026-10).")]


@app.command("monthly")
def monthly(
    month: MonthOption,
    out: Annotated[Path, typer.Option("--out", help="Output file (.docx or .html).")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="docx or html (default: from the file's suffix)."),
    ] = None,
    parquet: Annotated[
        Path | None,
        typer.Option(help="Read events from this Parquet export instead of the database."),
    ] = None,
) -> None:
    """Write the monthly evaluation report."""
    kind = fmt or out.suffix.lstrip(".").lower() or "docx"
    if kind not in ("docx", "html"):
        raise InvalidInput(f"cannot write a report as {kind!r}: use docx or html", field="format")
    database = open_database()
    data = service.monthly_report(database.uow(), parse_month_label(month), parquet=parquet)
    settings = service.get_settings(database.uow())
    out.write_bytes(report.render(data, kind, settings.report.cjk_font))
    h = data.kpis.headline
    typer.echo(
        f"wrote {out} ({kind}): 立案 {h.filed}, 处置率 {h.display['disposal_rate']}, "
        f"按期处置率 {h.display['on_time_disposal_rate']}, 结案率 {h.display['closing_rate']}, "
        f"返工率 {h.display['rework_rate']}, 满意率 {h.display['satisfaction_rate']}"
    )


@app.command("kpis")
def kpis(
    month: MonthOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print every KPI as JSON.")] = False,
) -> None:
    """Print the month's headline and the department ranking (or everything as JSON)."""
    data = service.monthly_kpis(open_database().uow(), parse_month_label(month))
    if as_json:
        typer.echo(data.model_dump_json(indent=2))
        return
    h = data.headline.display
    typer.echo(
        f"{data.month}: 立案 {h['filed']}  处置率 {h['disposal_rate']}  "
        f"按期处置率 {h['on_time_disposal_rate']}  结案率 {h['closing_rate']}  "
        f"返工率 {h['rework_rate']}  满意率 {h['satisfaction_rate']}"
    )
    for s in data.departments:
        typer.echo(
            f"{s.rank or '—':>3}  {s.name}  {s.composite_display}  {s.grade}  "
            f"环比 {s.delta_prev_month_display}  同比 {s.delta_last_year_display}"
        )


@app.command("settings-export")
def settings_export(
    out: Annotated[Path, typer.Option("--out", help="A .toml or .json file.")],
) -> None:
    """Write the evaluation settings in force to a file."""
    fmt = "json" if out.suffix.lower() == ".json" else "toml"
    out.write_text(service.export_settings(open_database().uow(), fmt), encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command("settings-import")
def settings_import(
    path: Annotated[Path, typer.Argument(help="A .toml or .json settings file.")],
) -> None:
    """Validate and store evaluation settings from a file (omitted fields: defaults)."""
    service.import_settings(open_database().uow(), SYSTEM_ACTOR, path)
    typer.echo(f"imported evaluation settings from {path}")


@app.command("audit-draw")
def audit_draw(
    month: MonthOption,
    seed: Annotated[int | None, typer.Option(help="Reproduce a draw with its seed.")] = None,
) -> None:
    """双随机: draw the month's closed cases to audit, with random uninvolved auditors."""
    result = audit.draw(open_database().uow(), SYSTEM_ACTOR, parse_month_label(month), seed=seed)
    typer.echo(f"draw {result.id} of {result.month}: seed {result.seed}, {len(result.items)} cases")
    for item in result.items:
        typer.echo(f"  {item.case_code}  {item.department_name}  → {item.auditor_name or '（无）'}")


@app.command("export-parquet")
def parquet_export(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for cases/events.parquet and steps/.")
    ],
) -> None:
    """Export the history as Parquet with the derived step segments (the engine's input)."""
    uow = open_database().uow()
    with uow.read():
        # The rollup of the people counts is by the city's days.
        timezone = service.settings_in(uow.session).timezone
        counts = export_parquet(uow.session, out, timezone=timezone)
    typer.echo(json.dumps(counts))
