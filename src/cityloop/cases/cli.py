"""`cityloop case ...` and `cityloop worker`: the same rules and errors as the API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from cityloop.cases import attachments, service
from cityloop.cases.domain import CaseAction, CaseState, Channel, Satisfaction
from cityloop.cases.notify import LogNotifier, Notifier, WebhookNotifier
from cityloop.cases.schemas import (
    CaseActionRequest,
    CaseCreate,
    CaseFilters,
    CasePublic,
    Location,
    Reporter,
)
from cityloop.cases.worker import run_forever, run_once
from cityloop.cli_support import open_database
from cityloop.errors import InvalidInput
from cityloop.grid.coords import CoordSystem
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, Actor

app = typer.Typer(help="Cases: report, show, act, list.", no_args_is_help=True)

AsUser = Annotated[str, typer.Option("--as", help="Act as this user (trusted local access).")]


def _actor(username: str) -> Actor:
    return org.actor_by_username(open_database().uow(), username)


def _case_id(actor: Actor, ref: str) -> int:
    """A case given by its code (13+ digits) or its numeric id."""
    if ref.isdigit() and len(ref) < 13:
        return int(ref)
    return service.get_case_by_code(open_database().uow(), actor, ref).id


def _print_case(case: CasePublic, as_json: bool) -> None:
    if as_json:
        typer.echo(case.model_dump_json(indent=2))
        return
    deadline = case.step_deadline.isoformat(timespec="minutes") if case.step_deadline else "-"
    typer.echo(
        f"{case.code}  id={case.id}  v{case.version}  {case.status.value} ({case.status_label})  "
        f"step={case.step.value if case.step else '-'} deadline={deadline} "
        f"light={case.light.value if case.light else '-'}"
    )
    typer.echo(f"  {case.description}")
    if case.allowed_actions:
        typer.echo("  next: " + ", ".join(a.value for a in case.allowed_actions))


@app.command("create")
def create(
    as_user: AsUser,
    channel: Annotated[Channel, typer.Option()],
    description: Annotated[str, typer.Option()],
    address: Annotated[str | None, typer.Option()] = None,
    lon: Annotated[float | None, typer.Option()] = None,
    lat: Annotated[float | None, typer.Option()] = None,
    system: Annotated[CoordSystem, typer.Option(help="Coordinate system of lon/lat.")] = (
        CoordSystem.WGS84
    ),
    family: Annotated[str | None, typer.Option(help="component or event")] = None,
    minor_code: Annotated[str | None, typer.Option()] = None,
    reporter_name: Annotated[str | None, typer.Option()] = None,
    reporter_phone: Annotated[str | None, typer.Option()] = None,
    idempotency_key: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Report a case."""
    if (lon is None) != (lat is None):
        raise InvalidInput("give both --lon and --lat, or neither", field="lon")
    actor = _actor(as_user)
    data = CaseCreate(
        channel=channel,
        description=description,
        address=address,
        location=Location(lon=lon, lat=lat, system=system)
        if lon is not None and lat is not None
        else None,
        family=family,
        minor_code=minor_code,
        reporter=Reporter(name=reporter_name, phone=reporter_phone)
        if reporter_name or reporter_phone
        else None,
    )
    reported = service.report(open_database().uow(), actor, data, idempotency_key=idempotency_key)
    assert reported.view is not None
    _print_case(reported.view, as_json)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="Case code or id.")],
    as_user: AsUser,
    events: Annotated[bool, typer.Option(help="Also print the timeline.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a case (and its timeline)."""
    actor = _actor(as_user)
    case = service.get_case(open_database().uow(), actor, _case_id(actor, ref))
    _print_case(case, as_json)
    if events:
        for e in service.events(open_database().uow(), actor, case.id):
            typer.echo(
                f"  {e.at.isoformat(timespec='seconds')}  {e.actor_name:<12} {e.action:<18} "
                f"{e.from_state or '-'} -> {e.to_state}  {e.reason or ''}"
            )


@app.command("act")
def act(
    ref: Annotated[str, typer.Argument(help="Case code or id.")],
    action: Annotated[CaseAction, typer.Argument()],
    as_user: AsUser,
    version: Annotated[
        int | None, typer.Option(help="The version you read (default: the current one).")
    ] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    department: Annotated[str | None, typer.Option(help="Department code (dispatch).")] = None,
    inspector: Annotated[str | None, typer.Option(help="Inspector username.")] = None,
    standard_id: Annotated[int | None, typer.Option(help="Filing-standard row (file).")] = None,
    satisfaction: Annotated[Satisfaction | None, typer.Option()] = None,
    attach: Annotated[list[Path] | None, typer.Option(help="Photo file (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Take an action on a case."""
    actor = _actor(as_user)
    case_id = _case_id(actor, ref)
    if version is None:
        version = service.get_case(open_database().uow(), actor, case_id).version
    attachment_ids = [
        attachments.upload(
            open_database().uow(),
            actor,
            filename=path.name,
            content=path.read_bytes(),
            stage="other",
        ).id
        for path in attach or []
    ]
    req = CaseActionRequest(
        action=action,
        version=version,
        reason=reason,
        department_code=department,
        inspector=inspector,
        standard_id=standard_id,
        satisfaction=satisfaction,
        attachment_ids=attachment_ids,
    )
    _print_case(service.act(open_database().uow(), actor, case_id, req), as_json)


@app.command("list")
def list_(
    as_user: AsUser,
    status: Annotated[list[CaseState] | None, typer.Option()] = None,
    department: Annotated[str | None, typer.Option()] = None,
    channel: Annotated[Channel | None, typer.Option()] = None,
    overdue: Annotated[bool | None, typer.Option("--overdue/--not-overdue")] = None,
    q: Annotated[str | None, typer.Option(help="Search code, description, address.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the cases the user may see, newest first."""
    actor = _actor(as_user)
    page = service.list_cases(
        open_database().uow(),
        actor,
        CaseFilters(
            status=status,
            department_code=department,
            channel=channel,
            overdue=overdue,
            q=q,
            page_size=limit,
        ),
    )
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
        return
    for c in page.items:
        typer.echo(
            f"{c.code}\t{c.status.value}\t{c.light.value if c.light else '-'}\t{c.description[:40]}"
        )
    typer.echo(f"{len(page.items)} of {page.total}")


@app.command("recompute-deadlines")
def recompute_deadlines() -> None:
    """Recompute running deadlines after the calendar or the step limits changed."""
    changed = service.recompute_open_deadlines(open_database().uow(), SYSTEM_ACTOR)
    typer.echo(f"{changed} running deadline(s) moved")


def worker(
    once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between passes.")] = 30.0,
    webhook: Annotated[str | None, typer.Option(help="POST notifications to this URL.")] = None,
) -> None:
    """Mark yellow/red steps, escalate, notify. Several workers may run at once."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    notifier: Notifier = WebhookNotifier(webhook) if webhook else LogNotifier()
    database = open_database()
    if once:
        report = run_once(database, notifier)
        typer.echo(
            json.dumps(
                {
                    "overdue": len(report.overdue),
                    "warned": len(report.warned),
                    "urged": len(report.urged),
                }
            )
        )
        return
    run_forever(database, notifier, interval=interval)
