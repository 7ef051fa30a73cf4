"""`cityloop catalog ...`: import, export and inspect the catalog and its filing standard.

Commands act as the system actor (an admin), like the other administration commands: whoever
can run them on the server already controls the database.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import typer

from cityloop.catalog import service
from cityloop.catalog.domain import DEFAULT_EXTENSION_FLOOR, Family, parse_family, parse_unit_map
from cityloop.catalog.schemas import FamilyChanges, FamilyCounts, ImportReport
from cityloop.catalog.workbook import DEFAULT_TITLE
from cityloop.cli_support import open_database
from cityloop.errors import InvalidInput
from cityloop.org.domain import SYSTEM_ACTOR
from cityloop.workcal.domain import DEFAULT_UNIT_MAP, UnitMeaning

app = typer.Typer(
    help="Component and event classes and the filing standard (立结案标准).",
    no_args_is_help=True,
)

IMPORT_HELP = (
    "Import a city's filing-standard workbook (.xlsx, one sheet per family: 部件, 事件).\n\n"
    "The workbook replaces the catalog of each family it has a sheet for; a family without a "
    "sheet is left alone. Classes whose codes persist keep their ids; classes and criterion "
    "rows the workbook no longer lists are retired, not deleted, so existing cases stay valid. "
    "If any row cannot be understood, every such row is listed and nothing is imported."
)


def _family_option(value: str | None) -> Family | None:
    return parse_family(value) if value is not None else None


def _read_unit_map(path: Path) -> dict[str, UnitMeaning]:
    if not path.is_file():
        raise InvalidInput(f"unit mapping file not found: {path}", field="units")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name} is not valid TOML: {exc}", field="units") from None
    return parse_unit_map(data, DEFAULT_UNIT_MAP)


def _counts_line(counts: FamilyCounts | FamilyChanges) -> str:
    return (
        f"{counts.family.label_zh} ({counts.family.value}): "
        f"{counts.major_classes} major classes, {counts.minor_classes} minor classes, "
        f"{counts.criterion_rows} criterion rows"
    )


def _changes_line(changes: FamilyChanges) -> str:
    if not changes.changed:
        return "  no changes"
    return (
        f"  classes: {changes.classes_added} added, {changes.classes_updated} updated, "
        f"{changes.classes_retired} retired; criterion rows: {changes.rows_added} added, "
        f"{changes.rows_updated} updated, {changes.rows_retired} retired, "
        f"{changes.rows_unchanged} unchanged"
    )


def _print_report(report: ImportReport) -> None:
    for changes in report.families:
        typer.echo(_counts_line(changes))
        typer.echo(_changes_line(changes))


@app.command("import", help=IMPORT_HELP)
def import_command(
    file: Annotated[Path, typer.Argument(help="The workbook, e.g. yuncheng-case-standard.xlsx.")],
    units: Annotated[
        Path | None,
        typer.Option(
            help="TOML file whose units table maps written units to clocks, over the "
            'defaults, e.g. "小时" = { clock = "urgent", unit = "hour" }.'
        ),
    ] = None,
    extension_floor: Annotated[
        int,
        typer.Option(min=1, max=99, help="Codes at or above this are flagged as city extensions."),
    ] = DEFAULT_EXTENSION_FLOOR,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report, change nothing.")
    ] = False,
) -> None:
    unit_map = _read_unit_map(units) if units is not None else None
    report = service.import_workbook(
        open_database().uow(),
        SYSTEM_ACTOR,
        path=file,
        unit_map=unit_map,
        extension_floor=extension_floor,
        dry_run=dry_run,
    )
    what = "would import" if dry_run else "imported"
    typer.echo(f"{what} {report.source}:")
    _print_report(report)
    if dry_run:
        typer.echo("dry run: nothing was changed")


@app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="The .xlsx file to write (replaced if present).")],
    family: Annotated[
        str | None, typer.Option(help="component (部件) or event (事件); default both.")
    ] = None,
    title: Annotated[str, typer.Option(help="Title row text.")] = DEFAULT_TITLE,
) -> None:
    """Write the active catalog as a workbook that `catalog import` reads back unchanged."""
    counts = service.export_workbook(
        open_database().uow(), path=file, family=_family_option(family), title=title
    )
    typer.echo(f"exported to {file}:")
    for line in counts:
        typer.echo(_counts_line(line))


@app.command("load-defaults")
def load_defaults_command(
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Overwrite a family that holds a city's own catalog."),
    ] = False,
) -> None:
    """Load the built-in catalog (national major classes, common minor classes)."""
    report = service.load_defaults(open_database().uow(), SYSTEM_ACTOR, replace=replace)
    if not report.changed:
        typer.echo("the default catalog is already loaded; nothing changed")
        return
    typer.echo("loaded the default catalog:")
    _print_report(report)


@app.command("list")
def list_command(
    family: Annotated[
        str | None, typer.Option(help="component (部件) or event (事件); default both.")
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="Code prefix or part of a name, e.g. 01 or 井盖.")
    ] = None,
    retired: Annotated[bool, typer.Option("--retired", help="Include retired classes.")] = False,
) -> None:
    """List minor classes: family, code, name, major class, number of criterion rows."""
    classes = service.list_classes(
        open_database().uow(),
        family=_family_option(family),
        query=query,
        include_retired=retired,
    )
    if not classes:
        typer.echo("no classes match" if query else "the catalog is empty")
        return
    for c in classes:
        flags = "".join(
            [" [extension]" if c.is_extension else "", "" if c.active else " [retired]"]
        )
        typer.echo(
            f"{c.family.label_zh}\t{c.code}\t{c.name}\t{c.major_code} {c.major_name}"
            f"\t{c.standard_count} rows{flags}"
        )


@app.command("show")
def show_command(
    code: Annotated[str, typer.Argument(help="4-digit minor class code, e.g. 0101.")],
    family: Annotated[str, typer.Option(help="component (部件) or event (事件).")],
) -> None:
    """Show a minor class and its filing standard."""
    minor = service.get_minor(open_database().uow(), family=parse_family(family), code=code)
    flags = " (city extension)" if minor.is_extension else ""
    flags += "" if minor.active else " (retired)"
    typer.echo(
        f"{minor.family.label_zh} {minor.code} {minor.name}{flags}"
        f" — major class {minor.major_code} {minor.major_name}"
    )
    for row in minor.standards:
        limit = row.limit_text or "(no time limit)"
        typer.echo(f"  {row.position}. 立案条件: {row.filing_criterion}")
        typer.echo(f"     结案条件: {row.closing_criterion or '-'}    处置时限: {limit}")
        typer.echo(f"     处置单位: {row.handling_units or '-'}")
        typer.echo(f"     主管部门: {row.supervising_authority or '-'}")
