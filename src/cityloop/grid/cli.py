"""`cityloop grid ...`: build, import, locate, stats, areas, components, responsibility, rules.

Commands that read coordinates require ``--system`` (wgs84, gcj02, bd09, cgcs2000): the same
street corner has numbers 300-700 m apart in these systems, so guessing is never safe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cityloop.cli_support import open_database
from cityloop.errors import InvalidInput
from cityloop.grid import service
from cityloop.grid.boundaries import Boundary
from cityloop.grid.coords import CoordSystem
from cityloop.grid.domain import DEFAULT_CELL_SIZE
from cityloop.grid.irregular import DEFAULT_OUTSIDE_TOLERANCE_M2, DEFAULT_OVERLAP_TOLERANCE_M2
from cityloop.grid.routing import Scope
from cityloop.grid.schemas import (
    GridSummary,
    LocateRequest,
    Point,
    ResponsibilityCreate,
    RuleCreate,
)
from cityloop.org.domain import SYSTEM_ACTOR

app = typer.Typer(help="Unit grid, territory, routing rules and components.", no_args_is_help=True)
areas_app = typer.Typer(help="Subdistrict and community boundaries.", no_args_is_help=True)
components_app = typer.Typer(help="The components (部件) registry.", no_args_is_help=True)
responsibility_app = typer.Typer(help="Responsibility grids (责任网格).", no_args_is_help=True)
rule_app = typer.Typer(help="Routing rules (class x area -> department).", no_args_is_help=True)
app.add_typer(areas_app, name="areas")
app.add_typer(components_app, name="components")
app.add_typer(responsibility_app, name="responsibility")
app.add_typer(rule_app, name="rule")

SystemOpt = Annotated[
    CoordSystem, typer.Option("--system", help="Coordinate system of the input: wgs84, gcj02...")
]
LayerOpt = Annotated[str | None, typer.Option(help="GeoPackage layer (when it has several).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _boundary(path: Path | None, system: CoordSystem | None, adcode: str) -> Boundary | None:
    if path is None:
        return None
    if system is None:
        raise InvalidInput("--boundary needs --boundary-system", field="boundary_system")
    return service.boundary_from_file(path, adcode=adcode, system=system)


def _print_summary(summary: GridSummary, verb: str) -> None:
    size = f"{summary.cell_size:g} m " if summary.cell_size else ""
    typer.echo(
        f"{verb} {summary.adcode} {summary.name}: {summary.cells} {size}cells "
        f"({summary.cut_cells} cut by the boundary), {summary.area_km2:.1f} km², "
        f"{summary.subdistricts} subdistrict and {summary.communities} community segments, "
        f"version {summary.version}"
        + (f", {summary.seconds:.1f} s" if summary.seconds is not None else "")
    )
    typer.echo(
        f"bound to departments: {summary.bound_subdistrict_cells} cells to a subdistrict, "
        f"{summary.bound_community_cells} to a community"
    )
    if summary.remapped or summary.dropped:
        typer.echo(
            f"cell references moved to the new cells: {summary.remapped}; "
            f"dropped (no cell there any more): {summary.dropped}"
        )


@app.command("build")
def build(
    adcode: Annotated[str, typer.Option(help="District adcode, e.g. 110108 (Haidian).")],
    cell: Annotated[float, typer.Option(help="Cell side in metres.")] = DEFAULT_CELL_SIZE,
    crs: Annotated[
        str | None, typer.Option(help="Metric CRS (default: the CGCS2000 3° Gauss-Krüger zone).")
    ] = None,
    boundary: Annotated[
        Path | None, typer.Option(help="District boundary file, when the adcode is not shipped.")
    ] = None,
    boundary_system: Annotated[CoordSystem | None, typer.Option()] = None,
) -> None:
    """Build a district's square grid from its boundary and store it (replacing the old one)."""
    summary = service.build(
        open_database().uow(),
        SYSTEM_ACTOR,
        adcode=adcode,
        cell_size=cell,
        crs=crs,
        boundary=_boundary(boundary, boundary_system, adcode),
    )
    _print_summary(summary, "built")


@app.command("import")
def import_cells(
    file: Annotated[Path, typer.Argument(help="GeoJSON or GeoPackage of cell polygons.")],
    adcode: Annotated[str, typer.Option(help="District adcode.")],
    system: SystemOpt,
    code_field: Annotated[str, typer.Option(help="Property holding the 15-digit code.")] = "code",
    layer: LayerOpt = None,
    boundary: Annotated[Path | None, typer.Option(help="District boundary file.")] = None,
    boundary_system: Annotated[CoordSystem | None, typer.Option()] = None,
    overlap_tolerance: Annotated[
        float, typer.Option(help="Overlap area (m²) still accepted between two cells.")
    ] = DEFAULT_OVERLAP_TOLERANCE_M2,
    outside_tolerance: Annotated[
        float, typer.Option(help="Area (m²) a cell may reach outside the district.")
    ] = DEFAULT_OUTSIDE_TOLERANCE_M2,
    dry_run: Annotated[bool, typer.Option(help="Check only; change nothing.")] = False,
) -> None:
    """Import a district's cells, all or nothing (overlaps and cells outside are refused)."""
    summary = service.import_cells(
        open_database().uow(),
        SYSTEM_ACTOR,
        file,
        adcode=adcode,
        system=system,
        code_field=code_field,
        layer=layer,
        boundary=_boundary(boundary, boundary_system, adcode),
        overlap_tolerance_m2=overlap_tolerance,
        outside_tolerance_m2=outside_tolerance,
        dry_run=dry_run,
    )
    _print_summary(summary, "checked (dry run: nothing was changed)" if dry_run else "imported")


@app.command("locate")
def locate(
    lon: float,
    lat: float,
    system: SystemOpt,
    family: Annotated[str | None, typer.Option(help="component or event")] = None,
    minor: Annotated[str | None, typer.Option(help="4-digit minor class code.")] = None,
    component: Annotated[str | None, typer.Option(help="16-digit component id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which cell, community, subdistrict, inspector (and department) a point belongs to."""
    request = LocateRequest(
        points=[Point(lon=lon, lat=lat)],
        system=system,
        family=family,
        minor_code=minor,
        component_code=component,
    )
    result = service.locate(open_database().uow(), request).results[0]
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    if not result.inside:
        typer.echo(f"({result.lon:.6f}, {result.lat:.6f} WGS-84) is outside every stored grid")
        raise typer.Exit(1)
    typer.echo(
        f"cell {result.cell_code} (subdistrict {result.subdistrict_code}, community "
        f"{result.community_code}) at {result.lon:.6f}, {result.lat:.6f} WGS-84"
    )
    typer.echo(
        f"departments: subdistrict id {result.subdistrict_id}, community id {result.community_id}"
    )
    if result.responsibility_code:
        typer.echo(
            f"responsibility grid {result.responsibility_code}, inspector id {result.inspector_id}"
        )
    if result.route is not None:
        typer.echo(
            f"suggested department: {result.route.department_code or 'none'} "
            f"({result.route.basis.value})"
        )


@app.command("stats")
def stats(
    adcode: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """The stored grids and their counts."""
    rows = service.stats(open_database().uow(), adcode=adcode)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False))
        return
    if not rows:
        typer.echo("no grid is stored: run `cityloop grid build --adcode ...` or `grid import`")
        return
    for row in rows:
        _print_summary(row, "grid")
        typer.echo(
            f"areas: {row.areas_subdistrict} subdistricts, {row.areas_community} communities; "
            f"{row.components} components; {row.responsibilities} responsibility grids; "
            f"{row.rules} routing rules"
        )


@app.command("bind")
def bind(adcode: Annotated[str | None, typer.Option()] = None) -> None:
    """Bind cells to subdistrict/community departments by grid_code (after adding them)."""
    for result in service.bind_departments(open_database().uow(), SYSTEM_ACTOR, adcode=adcode):
        typer.echo(
            f"{result.adcode}: {result.subdistrict_cells} cells bound to a subdistrict, "
            f"{result.community_cells} to a community, {result.areas} areas bound"
        )
        if result.unmatched_segments:
            shown = ", ".join(result.unmatched_segments[:20])
            typer.echo(f"segments with no department: {shown}")


@areas_app.command("import")
def areas_import(
    file: Annotated[Path, typer.Argument(help="GeoJSON or GeoPackage of area polygons.")],
    level: Annotated[str, typer.Option(help="subdistrict or community")],
    system: SystemOpt,
    adcode: Annotated[str | None, typer.Option(help="District (default: the only grid).")] = None,
    code_field: Annotated[str, typer.Option()] = "code",
    name_field: Annotated[str, typer.Option()] = "name",
    parent_field: Annotated[str, typer.Option(help="A community's subdistrict code.")] = "parent",
    layer: LayerOpt = None,
    rebuild: Annotated[
        bool, typer.Option(help="Rebuild the district's lattice grid so codes follow the areas.")
    ] = False,
) -> None:
    """Replace a district's subdistrict or community boundaries."""
    database = open_database()
    result = service.import_areas(
        database.uow(),
        SYSTEM_ACTOR,
        file,
        level=level,
        system=system,
        adcode=adcode,
        code_field=code_field,
        name_field=name_field,
        parent_field=parent_field,
        layer=layer,
    )
    typer.echo(
        f"{result.adcode}: {result.imported} {result.level} areas imported (replacing "
        f"{result.replaced}), {result.bound} bound to departments"
    )
    if not rebuild:
        typer.echo(
            f"cell codes follow the areas after `cityloop grid build --adcode {result.adcode}`"
        )
        return
    current = service.stats(database.uow(), adcode=result.adcode)[0]
    if current.kind != "lattice" or current.cell_size is None:
        raise InvalidInput(
            "only a built (lattice) grid can be rebuilt; re-import the cells instead",
            field="rebuild",
        )
    summary = service.build(
        database.uow(),
        SYSTEM_ACTOR,
        adcode=result.adcode,
        cell_size=current.cell_size,
        crs=current.crs,
    )
    _print_summary(summary, "rebuilt")


@components_app.command("import")
def components_import(
    file: Annotated[Path, typer.Argument(help="CSV or GeoJSON points.")],
    system: SystemOpt,
    layer: LayerOpt = None,
) -> None:
    """Add or update components (16-digit id, class, location, owner, status)."""
    result = service.import_components(
        open_database().uow(), SYSTEM_ACTOR, file, system=system, layer=layer
    )
    typer.echo(
        f"{result.rows} components: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged; {result.outside_grid} outside every stored grid"
    )


@components_app.command("near")
def components_near(
    lon: float,
    lat: float,
    system: SystemOpt,
    radius: Annotated[float, typer.Option(help="Metres.")] = 50.0,
    minor: Annotated[str | None, typer.Option(help="Only this minor class.")] = None,
) -> None:
    """Components within a radius of a point, nearest first."""
    found = service.components_near(
        open_database().uow(), lon=lon, lat=lat, system=system, radius_m=radius, minor_code=minor
    )
    if not found:
        typer.echo(f"no component within {radius:g} m")
    for c in found:
        typer.echo(
            f"{c.code}\t{c.minor_name}\t{c.distance_m:.1f} m\t{c.status.value}\t"
            f"{c.owner_department_code or '-'}"
        )


@responsibility_app.command("add")
def responsibility_add(
    code: str,
    name: Annotated[str, typer.Option()],
    inspector: Annotated[str, typer.Option(help="Username of the inspector.")],
    cell: Annotated[
        list[str], typer.Option(help="Cell code or 6/9/12-digit prefix; repeat for more.")
    ],
) -> None:
    """Create a responsibility grid, or add cells to one."""
    data = ResponsibilityCreate(code=code, name=name, inspector=inspector, cells=cell)
    result = service.add_responsibility(open_database().uow(), SYSTEM_ACTOR, data)
    typer.echo(
        f"responsibility grid {result.code} ({result.name}): {result.cells} cells, inspector "
        f"{result.inspector_username}"
    )


@responsibility_app.command("list")
def responsibility_list() -> None:
    for r in service.list_responsibilities(open_database().uow()):
        state = "" if r.active else " (inactive)"
        typer.echo(f"{r.code}\t{r.name}\t{r.inspector_username}\t{r.cells} cells{state}")


@rule_app.command("add")
def rule_add(
    family: Annotated[str, typer.Option(help="component or event")],
    scope: Annotated[Scope, typer.Option(help="cells, community, subdistrict or district")],
    department: Annotated[str, typer.Option(help="Code of the handling department.")],
    minor: Annotated[str | None, typer.Option(help="4-digit minor class (default: all).")] = None,
    area: Annotated[
        str | None, typer.Option(help="Community/subdistrict department code (that scope).")
    ] = None,
    adcode: Annotated[str | None, typer.Option(help="District (district scope).")] = None,
    cell: Annotated[list[str] | None, typer.Option(help="Cells or prefixes (cells scope).")] = None,
    priority: Annotated[int, typer.Option(help="Higher wins.")] = 0,
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Add a routing rule: a class (or family) in an area goes to a department."""
    data = RuleCreate(
        name=name,
        family=family,
        minor_code=minor,
        scope=scope,
        area=area,
        adcode=adcode,
        cells=cell or [],
        department=department,
        priority=priority,
    )
    rule = service.add_rule(open_database().uow(), SYSTEM_ACTOR, data)
    typer.echo(
        f"rule {rule.id}: {rule.family} {rule.minor_code or '(all classes)'} in {rule.scope.value}"
        f" -> {rule.department_code} (priority {rule.priority})"
    )


@rule_app.command("list")
def rule_list() -> None:
    for r in service.list_rules(open_database().uow()):
        where = r.area_department_code or r.adcode or (f"{r.cells} cells" if r.cells else "all")
        typer.echo(
            f"{r.id}\t{r.family}\t{r.minor_code or '*'}\t{r.scope.value}:{where}\t"
            f"{r.department_code}\tpriority {r.priority}"
        )
