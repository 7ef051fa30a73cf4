"""Tables of the grid: districts' grids, cells, areas, responsibility grids, routing rules,
components. Every table name starts with ``grid_``.

Geometry is stored as WKB (``LargeBinary``) in WGS-84 lon/lat, the storage system: WKB keeps
every coordinate bit for bit, so cells rebuilt from the database tile exactly as they were built,
and shapely decodes 43,000 polygons in about 60 ms. No spatial extension (PostGIS, SpatiaLite) is
needed: point assignment runs in process (:mod:`cityloop.grid.domain`), which is faster than a
spatial database for this job and works the same on SQLite and PostgreSQL.

Cells, responsibility grids and routing rules refer to cells by their 15-digit *code*, not by row
id: a grid rebuilt with the same lattice gets new rows but the same codes, and when codes do
change (new community boundaries) the service remaps the references spatially.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db.base import Base, BigIntPK, UTCDateTime, utcnow


class GridRecord(Base):
    """One district's grid: how it was made, its lattice (when it has one) and its boundary.

    ``kind`` is ``lattice`` (built from the boundary: square cells indexed by arithmetic) or
    ``polygons`` (imported cells of any shape, indexed by an STRtree). ``revision`` is a random
    token renewed by every change to the cells: processes cache the in-memory index under it, so
    checking that a cache is current costs one small query and never a reload.
    """

    __tablename__ = "grid_grid"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    adcode: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # lattice | polygons
    crs: Mapped[str | None] = mapped_column(String(255))  # metric CRS of the lattice
    cell_size: Mapped[float | None] = mapped_column(Float)  # metres
    lattice_x0: Mapped[float | None] = mapped_column(Float)
    lattice_y0: Mapped[float | None] = mapped_column(Float)
    lattice_rows: Mapped[int | None] = mapped_column(Integer)
    lattice_cols: Mapped[int | None] = mapped_column(Integer)
    boundary_wkb: Mapped[bytes] = mapped_column(LargeBinary)  # the district, WGS-84
    cell_count: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(255), default="")
    revision: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)  # counts changes, for people
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GridCell(Base):
    """A unit grid cell (单元网格): 15-digit code, lattice square, polygon, territory.

    ``row``/``col`` are the lattice square (NULL for imported polygon cells); ``cut`` says the
    district boundary cuts the square. ``subdistrict_id``/``community_id`` are the territorial
    departments whose ``grid_code`` matches the code's digits 7-9 and 10-12, bound when the grid
    is stored and again by ``cityloop grid bind`` (NULL until such a department exists).
    """

    __tablename__ = "grid_cell"
    __table_args__ = (Index("ix_grid_cell_grid_id_code", "grid_id", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid_grid.id"))
    code: Mapped[str] = mapped_column(String(15), unique=True)
    row: Mapped[int | None] = mapped_column(Integer)
    col: Mapped[int | None] = mapped_column(Integer)
    cut: Mapped[bool] = mapped_column(Boolean, default=False)
    geometry_wkb: Mapped[bytes] = mapped_column(LargeBinary)  # WGS-84 (Multi)Polygon
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float)
    subdistrict_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))


class GridArea(Base):
    """A subdistrict (街道) or community (社区) boundary of a district, when the city has them.

    Keyed by the district's adcode, not by a grid row, because areas outlive grid rebuilds: a
    build reads them to code its cells. ``parent_code`` is the subdistrict's 3 digits for a
    community and '' for a subdistrict. ``department_id`` is the territorial department bound
    by ``grid_code``.
    """

    __tablename__ = "grid_area"
    __table_args__ = (UniqueConstraint("adcode", "level", "parent_code", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    adcode: Mapped[str] = mapped_column(String(6), index=True)
    level: Mapped[str] = mapped_column(String(16))  # subdistrict | community
    code: Mapped[str] = mapped_column(String(3))
    parent_code: Mapped[str] = mapped_column(String(3), default="")
    name: Mapped[str] = mapped_column(String(128), default="")
    geometry_wkb: Mapped[bytes] = mapped_column(LargeBinary)  # WGS-84
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Responsibility(Base):
    """A responsibility grid (责任网格): a named set of cells patrolled by one inspector."""

    __tablename__ = "grid_responsibility"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    inspector_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResponsibilityCell(Base):
    """Membership of a cell in a responsibility grid. A cell has at most one inspector, so the
    cell code is unique across all responsibility grids."""

    __tablename__ = "grid_responsibility_cell"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    responsibility_id: Mapped[int] = mapped_column(ForeignKey("grid_responsibility.id"), index=True)
    cell_code: Mapped[str] = mapped_column(String(15), unique=True)


class RoutingRule(Base):
    """Minor class x area -> handling department, with a priority (higher wins).

    ``minor_id`` NULL means every class of ``family``. ``scope`` is ``cells`` (the rule's own
    cell list), ``community`` or ``subdistrict`` (``area_department_id``: every cell bound to
    that territorial department) or ``district`` (every cell whose code starts with ``adcode``;
    NULL adcode: every district).
    """

    __tablename__ = "grid_routing_rule"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    family: Mapped[str] = mapped_column(String(16))  # component | event
    minor_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_minor_class.id"), index=True)
    scope: Mapped[str] = mapped_column(String(16))  # cells | community | subdistrict | district
    area_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    adcode: Mapped[str | None] = mapped_column(String(6))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingRuleCell(Base):
    """A cell of a ``cells``-scoped routing rule."""

    __tablename__ = "grid_routing_rule_cell"
    __table_args__ = (UniqueConstraint("rule_id", "cell_code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("grid_routing_rule.id"))
    cell_code: Mapped[str] = mapped_column(String(15), index=True)


class Component(Base):
    """A component (部件) instance: 16-digit id, class, location, owner, status.

    ``code`` = county adcode (6) + major (2) + minor (2) + serial (6); digits 7-10 are the
    catalog's component minor class ``minor_id`` points to. ``lon``/``lat`` are WGS-84; the
    system the source used is kept in ``coord_system``. ``cell_code`` is the cell holding the
    point when it was imported (NULL outside every stored grid).
    """

    __tablename__ = "grid_component"
    __table_args__ = (Index("ix_grid_component_lat_lon", "lat", "lon"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    minor_id: Mapped[int] = mapped_column(ForeignKey("catalog_minor_class.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    coord_system: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(255), default="")
    cell_code: Mapped[str | None] = mapped_column(String(15), index=True)
    owner_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
