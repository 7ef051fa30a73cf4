"""`cityloop open311 ...`: clients and their api_keys, settings, the queue.

Commands act as the system actor (an admin), like the other administration commands: whoever
can run them on the server already controls the database.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cityloop.cli_support import open_database
from cityloop.errors import InvalidInput
from cityloop.open311 import service
from cityloop.open311.schemas import Open311Settings
from cityloop.org.domain import SYSTEM_ACTOR

app = typer.Typer(
    help="Open311 GeoReport v2: client api_keys, settings, queued submissions.",
    no_args_is_help=True,
)
client_app = typer.Typer(
    help="Registered Open311 clients and their api_keys.", no_args_is_help=True
)
config_app = typer.Typer(
    help="Open311 settings (jurisdiction_id, queued mode...).", no_args_is_help=True
)
queue_app = typer.Typer(help="Submissions accepted in queued mode.", no_args_is_help=True)

app.add_typer(client_app, name="client")
app.add_typer(config_app, name="config")
app.add_typer(queue_app, name="queue")


@client_app.command("add")
def client_add(name: Annotated[str, typer.Argument(help="e.g. FixMyStreet")]) -> None:
    """Register a client and print its api_key. The key is shown this once only."""
    created = service.add_client(open_database().uow(), SYSTEM_ACTOR, name)
    typer.echo(f"created Open311 client {created.client.name} (id {created.client.id})")
    typer.echo(f"api_key: {created.api_key}")
    typer.echo("Store it now: only its hash is kept, it cannot be shown again.")


@client_app.command("list")
def client_list() -> None:
    """List clients with the first characters of their keys."""
    clients = service.list_clients(open_database().uow())
    if not clients:
        typer.echo("no Open311 clients; add one with `cityloop open311 client add NAME`")
    for client in clients:
        state = "active" if client.active else "disabled"
        typer.echo(f"{client.name}\tkey {client.key_hint}…\t{state}\tsince {client.created_at}")


@client_app.command("disable")
def client_disable(name: str) -> None:
    """Refuse the client's api_key from now on (its requests stay)."""
    service.set_client_active(open_database().uow(), SYSTEM_ACTOR, name, active=False)
    typer.echo(f"disabled Open311 client {name}")


@client_app.command("enable")
def client_enable(name: str) -> None:
    service.set_client_active(open_database().uow(), SYSTEM_ACTOR, name, active=True)
    typer.echo(f"enabled Open311 client {name}")


@config_app.command("show")
def config_show() -> None:
    """Print the settings in force (defaults included)."""
    settings = service.current_settings(open_database().uow())
    typer.echo(json.dumps(settings.model_dump(mode="json"), ensure_ascii=False, indent=2))


def _setting_value(name: str, text: str) -> Any:
    """A value as typed on the command line: true/false, null, a number, a JSON list, or a
    comma-separated list for ``listed_channels``; anything else is a string."""
    if name not in Open311Settings.model_fields:
        known = ", ".join(Open311Settings.model_fields)
        raise InvalidInput(f"unknown setting '{name}'; known: {known}", field=name)
    if name == "listed_channels" and not text.lstrip().startswith("["):
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, bool | list) or value is None else text


@config_app.command("set")
def config_set(
    name: Annotated[str, typer.Argument(help="e.g. jurisdiction_id, queued, listed_channels")],
    value: Annotated[str, typer.Argument(help="e.g. suzhou.gov.cn, true, open311,public_web")],
) -> None:
    """Change one setting; the others keep their values."""
    updated = service.update_settings(
        open_database().uow(), SYSTEM_ACTOR, {name: _setting_value(name, value)}
    )
    shown = json.dumps(
        getattr(updated, name)
        if name != "listed_channels"
        else [c.value for c in updated.listed_channels],
        ensure_ascii=False,
    )
    typer.echo(f"open311.{name} = {shown}")


@queue_app.command("process")
def queue_process(
    limit: Annotated[int, typer.Option(min=1, help="At most this many submissions.")] = 500,
) -> None:
    """Turn pending queued submissions into cases (run from cron or a worker)."""
    database = open_database()
    report = service.process_queue(database.uow, limit=limit)
    typer.echo(
        f"created {report.created} case(s), rejected {report.rejected}, {report.left} still pending"
    )


@queue_app.command("status")
def queue_status() -> None:
    """How many queued submissions wait."""
    typer.echo(f"{service.pending_tokens(open_database().uow())} pending")
