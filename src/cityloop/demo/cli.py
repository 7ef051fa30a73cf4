"""`cityloop demo`: build the demo city (or reuse it)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cityloop.cli_support import open_database
from cityloop.demo import city


def demo(
    cases: Annotated[int, typer.Option(min=0, max=5_000_000, help="Cases of history.")] = 200_000,
    days: Annotated[int, typer.Option(min=30, max=3650, help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same city).")] = 20261122,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Reuse an existing demo city instead of failing.")
    ] = False,
) -> None:
    """Build the demo city: Haidian's grid, demo staff, catalog and a year of cases."""
    database = open_database()
    if city.is_built(database):
        if if_empty:
            typer.echo("demo city already built: reusing the database")
            _print_logins()
            return
        raise typer.BadParameter("a demo city is already built in this database")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>7}/{task.total}"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("demo city", total=cases)

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "case history":
                bar.update(task, description=stage, completed=done, total=total)
            else:
                bar.update(task, description=stage)

        report = city.build(database, cases=cases, days=days, seed=seed, progress=progress)
    typer.echo(
        f"demo city built: {report.cells} cells, {report.cases} cases, {report.events} events "
        f"in {report.seconds:.0f} s"
    )
    _print_logins()


def _print_logins() -> None:
    typer.echo("demo logins (password for all: " + city.DEMO_PASSWORD + "):")
    for role, username, _password in city.demo_credentials():
        typer.echo(f"  {role:<20} {username}")
