"""The `cityloop` command: one sub-command group per capability."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cityloop import __version__
from cityloop.cli_support import open_database, run_with_friendly_errors
from cityloop.config import get_settings
from cityloop.db.migrate import current_revision, head_revision, upgrade
from cityloop.org.cli import dept_app, user_app

app = typer.Typer(
    name="cityloop",
    help="cityloop: closed-loop urban management.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(dept_app, name="dept")


_mounted = False


def _mount_optional() -> None:
    """Mount capability CLIs. Each package exposes `app` in its cli.py."""
    global _mounted
    if _mounted:
        return
    _mounted = True
    from cityloop.cases.cli import app as case_app
    from cityloop.cases.cli import worker
    from cityloop.catalog.cli import app as catalog_app
    from cityloop.workcal.cli import app as calendar_app

    app.add_typer(case_app, name="case", help="Cases: report, show, act, list.")
    app.command("worker")(worker)
    from cityloop.demo.cli import demo
    from cityloop.evaluation.cli import app as report_app
    from cityloop.exchange.cli import app as exchange_app

    app.add_typer(exchange_app, name="exchange", help="Bulk import/export; upward exchange.")
    from cityloop.grid.cli import app as grid_app

    app.add_typer(report_app, name="report", help="Evaluation: KPIs, audits, monthly report.")
    from cityloop.ledgers.cli import app as ledger_app

    app.add_typer(ledger_app, name="ledger", help="Rectification and hazard ledgers, bulletins.")

    app.add_typer(grid_app, name="grid", help="Unit grid, territory, routing rules, components.")
    from cityloop.open311.cli import app as open311_app

    app.add_typer(
        open311_app, name="open311", help="Open311 GeoReport v2: client keys, settings, queue."
    )

    app.command("demo")(demo)

    app.add_typer(catalog_app, name="catalog", help="Component and event classes; filing standard.")
    app.add_typer(calendar_app, name="calendar", help="Working-time calendar and deadlines.")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def init() -> None:
    """Create the database, or upgrade it to the current schema."""
    url = get_settings().database_url
    database = open_database(migrate=False)
    before = current_revision(database.engine)
    upgrade(database.engine)
    after = current_revision(database.engine)
    if before == after:
        typer.echo(f"database is up to date (revision {after}): {_redact(url)}")
    else:
        typer.echo(f"database upgraded {before or 'empty'} -> {after}: {_redact(url)}")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to a revision."""
    database = open_database(migrate=False)
    upgrade(database.engine, revision)
    typer.echo(f"database at revision {current_revision(database.engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the code's head revision."""
    database = open_database(migrate=False)
    typer.echo(f"database: {current_revision(database.engine)}  code head: {head_revision()}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (the app is stateless).")
    ] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = False,
    proxy_headers: Annotated[
        bool,
        typer.Option(help="Trust X-Forwarded-For from a reverse proxy (rate limits per client)."),
    ] = False,
) -> None:
    """Serve the web UI and API."""
    import uvicorn

    settings = get_settings()
    open_database()  # migrate before the first request
    uvicorn.run(
        "cityloop.web.app:create_served_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        access_log=access_log,
        proxy_headers=proxy_headers,
    )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> None:
    _mount_optional()
    args = sys.argv[1:] if argv is None else argv
    run_with_friendly_errors(lambda: app(args=args, prog_name="cityloop"))
