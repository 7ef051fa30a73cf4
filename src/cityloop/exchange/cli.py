"""`cityloop exchange ...`: import, export, the upward push, partners and settings.

Import and the administration commands act as the system actor (an admin) unless ``--as``
names a user, like the other administration commands: whoever can run them on the server
already controls the database. Export always acts as a named user, because what a user may
export depends on who they are.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import IO, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from cityloop.cases.domain import CaseState, Channel
from cityloop.cases.schemas import CaseFilters
from cityloop.cli_support import fail, open_database
from cityloop.config import get_settings
from cityloop.errors import InvalidInput
from cityloop.exchange import pusher, service
from cityloop.exchange.exporting import format_for
from cityloop.exchange.schemas import ExchangeSettings, ImportRejection
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, Actor

app = typer.Typer(
    help="Bulk import and export of cases; upward exchange with a higher-level platform.",
    no_args_is_help=True,
)
partner_app = typer.Typer(help="Cities allowed to push here (province side).", no_args_is_help=True)
config_app = typer.Typer(help="Exchange settings (city code, upstream...).", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
app.add_typer(config_app, name="config")

AsUser = Annotated[str, typer.Option("--as", help="Act as this user (trusted local access).")]


def _actor(username: str | None) -> Actor:
    if username is None:
        return SYSTEM_ACTOR
    return org.actor_by_username(open_database().uow(), username)


# --------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------


class _Bar:
    """A rich progress bar fed by the importer (rows, against the file's line count)."""

    def __init__(self, label: str, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout keeps only the result line
            disable=not enabled,
        )
        self.label = label
        self.task: Any = None

    def start(self, total: int | None) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=total)

    def advance(self, rows: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, rows)

    def stop(self) -> None:
        self.progress.stop()


class _RejectsFile:
    def __init__(self, path: Path) -> None:
        self.fh: IO[str] = path.open("w", encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.fh)
        self.writer.writerow(["row", "field", "value", "reason"])

    def __call__(self, rejection: ImportRejection) -> None:
        self.writer.writerow([rejection.row, rejection.field, rejection.value, rejection.reason])

    def close(self) -> None:
        self.fh.close()


@app.command("import")
def import_cases(
    file: Annotated[Path, typer.Argument(help="The CSV or .xlsx file of historical cases.")],
    mapping: Annotated[Path, typer.Option(help="The column-mapping file (.toml or .json).")],
    partial: Annotated[
        bool, typer.Option(help="Import the good rows even if some are rejected.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Write every rejection to this CSV file.")
    ] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Act as this admin.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    show: Annotated[int, typer.Option(help="Rejections listed on screen.")] = 20,
) -> None:
    """Import historical cases. All-or-nothing unless --partial; a re-run adds nothing twice."""
    parsed = service.load_mapping(mapping)
    actor = _actor(as_user)
    database = open_database()
    bar = _Bar(f"import {file.name}", enabled=not quiet)
    sink = _RejectsFile(rejects) if rejects is not None else None
    try:
        report = service.import_file(
            database.uow(), actor, file, parsed, partial=partial, progress=bar, on_reject=sink
        )
    finally:
        bar.stop()
        if sink is not None:
            sink.close()
    for r in report.rejections[:show]:
        value = f" ({r.value})" if r.value else ""
        typer.echo(f"row {r.row}: {r.field}{value}: {r.reason}", err=True)
    if report.rejected > show:
        where = f"; all in {rejects}" if rejects else "; --rejects FILE lists them all"
        typer.echo(f"... {report.rejected - show} more rejection(s){where}", err=True)
    if not report.committed:
        fail(
            f"{report.rejected} row(s) rejected; nothing was imported ({report.rows_read} rows "
            "read). Fix them, or use --partial to import the good rows."
        )
    rate = report.rows_read / report.seconds if report.seconds else 0.0
    typer.echo(f"{report.summary} in {report.seconds:.1f} s ({rate:,.0f} rows/s)")
    if report.without_deadline:
        typer.echo(
            f"note: {report.without_deadline} dispatched case(s) got no disposal deadline "
            "(the working calendar does not cover their year)"
        )


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


def _instant(text: str | None, name: str) -> dt.datetime | None:
    """A date or date-time as typed; naive values are in the city's time zone."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--{name}: '{text}' is not a date (YYYY-MM-DD[THH:MM])") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return value


@app.command("export")
def export_cases(
    as_user: AsUser,
    out: Annotated[Path, typer.Option(help="The file to write (replaced).")],
    format: Annotated[
        str | None, typer.Option(help="csv, xlsx, geojson or parquet (default: from --out).")
    ] = None,
    status: Annotated[list[CaseState] | None, typer.Option(help="Repeat for several.")] = None,
    department: Annotated[str | None, typer.Option(help="Department code.")] = None,
    family: Annotated[str | None, typer.Option(help="component or event")] = None,
    minor_code: Annotated[str | None, typer.Option()] = None,
    channel: Annotated[Channel | None, typer.Option()] = None,
    overdue: Annotated[bool | None, typer.Option("--overdue/--not-overdue")] = None,
    reported_from: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD")] = None,
    reported_to: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (exclusive)")] = None,
    q: Annotated[str | None, typer.Option(help="Text in the code, description or address.")] = None,
) -> None:
    """Export the cases you may see that match the filters (no reporter contact details)."""
    fmt = format_for(out, format)
    filters = CaseFilters(
        status=status or None,
        department_code=department,
        family=family,
        minor_code=minor_code,
        channel=channel,
        overdue=overdue,
        reported_from=_instant(reported_from, "from"),
        reported_to=_instant(reported_to, "to"),
        q=q,
    )
    actor = _actor(as_user)
    report = service.export_cases(open_database().uow(), actor, filters, fmt, out)
    typer.echo(f"wrote {report.rows} case(s) to {report.path} ({report.format.value})")


# --------------------------------------------------------------------------------------------
# upward exchange
# --------------------------------------------------------------------------------------------


@app.command("push")
def push(
    once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
    interval: Annotated[float, typer.Option(min=1, help="Seconds between passes.")] = 30.0,
) -> None:
    """Send pending outbox rows to the configured higher-level platform."""
    database = open_database()
    if not once:
        typer.echo(f"pushing every {interval:g} s (Ctrl-C stops)")
        try:
            pusher.run_forever(database, interval=interval)
        except KeyboardInterrupt:
            return
        return
    report = pusher.push_once(database)
    if not report.configured:
        fail(f"{report.error} (`cityloop exchange config set ...`); {report.pending} pending")
    typer.echo(f"sent {report.sent}, failed {report.failed}, {report.pending} pending")
    if report.error:
        fail(f"the last attempt failed: {report.error}", code=1)


@app.command("status")
def status() -> None:
    """The outbox: pending, sent, failing rows and the last error."""
    s = service.outbox_status(open_database().uow())
    typer.echo(f"upstream: {s.upstream_url or '(not configured)'}")
    typer.echo(f"pending {s.pending}  sent {s.sent}  failing {s.failing}")
    if s.oldest_pending_at:
        typer.echo(f"oldest pending since {s.oldest_pending_at.isoformat(timespec='seconds')}")
    if s.next_attempt_at:
        typer.echo(f"next attempt at {s.next_attempt_at.isoformat(timespec='seconds')}")
    if s.last_error:
        typer.echo(f"last error: {s.last_error}")


@app.command("retry")
def retry() -> None:
    """Make every pending row due now (after the upstream was fixed)."""
    n = service.retry_now(open_database().uow(), SYSTEM_ACTOR)
    typer.echo(f"{n} pending row(s) due now")


# --------------------------------------------------------------------------------------------
# partners (province side)
# --------------------------------------------------------------------------------------------


@partner_app.command("add")
def partner_add(
    city_code: Annotated[str, typer.Argument(help="The city's 6-digit adcode.")],
    name: Annotated[str, typer.Option(help="e.g. 徐州市")],
) -> None:
    """Allow a city to push here and print its token (shown this once only)."""
    created = service.add_partner(open_database().uow(), SYSTEM_ACTOR, city_code, name)
    typer.echo(f"partner {created.partner.city_code} {created.partner.name}")
    typer.echo(f"token: {created.token}")
    typer.echo("Give it to the city (CITYLOOP_EXCHANGE_TOKEN); only its hash is kept.")


@partner_app.command("list")
def partner_list() -> None:
    for p in service.list_partners(open_database().uow()):
        seen = p.last_seen_at.isoformat(timespec="seconds") if p.last_seen_at else "never"
        state = "active" if p.active else "disabled"
        typer.echo(f"{p.city_code}\t{p.name}\t{p.token_hint}…\t{state}\tlast seen {seen}")


@partner_app.command("disable")
def partner_disable(city_code: str) -> None:
    """Refuse the city's token from now on (what it sent stays)."""
    service.set_partner_active(open_database().uow(), SYSTEM_ACTOR, city_code, active=False)
    typer.echo(f"disabled partner {city_code}")


@partner_app.command("enable")
def partner_enable(city_code: str) -> None:
    service.set_partner_active(open_database().uow(), SYSTEM_ACTOR, city_code, active=True)
    typer.echo(f"enabled partner {city_code}")


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------


@config_app.command("show")
def config_show() -> None:
    """The settings in force (the token is never printed)."""
    current = service.settings(open_database().uow())
    typer.echo(json.dumps(current.public(), ensure_ascii=False, indent=2))


@config_app.command("set")
def config_set(
    name: Annotated[str, typer.Argument(help="e.g. city_code, upstream_url, batch_size")],
    value: Annotated[str, typer.Argument(help="The value; 'null' clears it.")],
) -> None:
    """Change one setting; the others keep their values."""
    if name not in ExchangeSettings.model_fields:
        known = ", ".join(ExchangeSettings.model_fields)
        raise InvalidInput(f"unknown setting '{name}'; known: {known}", field=name)
    parsed: Any = None if value == "null" else value
    updated = service.update_settings(open_database().uow(), SYSTEM_ACTOR, {name: parsed})
    typer.echo(f"exchange.{name} = {json.dumps(updated.public()[name], ensure_ascii=False)}")
