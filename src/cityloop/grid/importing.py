"""Reading cells, areas and components from GeoJSON, GeoPackage and CSV files. No database.

**GeoPackage without GDAL.** A GeoPackage (OGC 12-128r18) is an SQLite database: the feature
tables are listed in ``gpkg_contents``, the geometry column and its spatial reference in
``gpkg_geometry_columns`` / ``gpkg_spatial_ref_sys``, and each geometry is a "GeoPackage binary"
blob: ``'GP'``, a version byte, a flags byte, a 4-byte srs id, an optional envelope (0, 32, 48
or 64 bytes, said by flag bits 1-3) and then plain WKB. :func:`read_geopackage` strips that
header and hands the WKB to shapely, so neither pyogrio nor fiona (and their GDAL) is needed.
A layer in a projected CRS is brought to lon/lat with pyproj from the srs the file declares.

**Coordinate systems.** Every file's lon/lat is stated by the caller (``system``): WGS-84,
GCJ-02, BD-09 or CGCS2000 (see :mod:`cityloop.grid.coords`). :func:`geometries_to_wgs84`
converts all vertices in one vectorised call; a vertex shared by two cells converts to the same
point, so cells that tiled before conversion still tile after it.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import shape

from cityloop.errors import InvalidInput
from cityloop.grid.coords import CoordSystem, parse_coord_system, to_wgs84_array

GeomArray = npt.NDArray[np.object_]

# Envelope sizes by the GeoPackage binary flags' bits 1-3.
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
# Geographic CRSs whose lon/lat the caller's ``system`` describes as is.
_LONLAT_EPSG = {4326, 4490, 4214, 4610}


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature: its properties and WGS-84-or-stated-system geometry (None when empty)."""

    number: int  # 1-based position in the file
    properties: dict[str, Any]
    geometry: shapely.Geometry | None


def read_features(path: Path, *, layer: str | None = None) -> list[Feature]:
    """Features of a GeoJSON (``.geojson``/``.json``) or GeoPackage (``.gpkg``) file."""
    suffix = path.suffix.lower()
    if suffix == ".gpkg":
        return read_geopackage(path, layer=layer)
    if suffix in (".geojson", ".json"):
        return read_geojson(path.read_bytes())
    raise InvalidInput(
        f"{path.name}: unknown format; give a .geojson, .json or .gpkg file", field="file"
    )


def read_geojson(data: bytes | str) -> list[Feature]:
    """A FeatureCollection, a single Feature or a bare geometry."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the file is not valid JSON: {exc}", field="file") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the GeoJSON is not an object", field="file")
    if doc.get("type") == "FeatureCollection":
        items = doc.get("features") or []
    elif doc.get("type") == "Feature":
        items = [doc]
    elif "coordinates" in doc or doc.get("type") == "GeometryCollection":
        items = [{"type": "Feature", "properties": {}, "geometry": doc}]
    else:
        raise InvalidInput("the GeoJSON is neither a FeatureCollection nor a Feature", field="file")
    out: list[Feature] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidInput(f"feature #{number} is not an object", field="file")
        geometry = item.get("geometry")
        try:
            geom = shape(geometry) if geometry else None
        except Exception as exc:  # shapely raises several types for malformed coordinates
            raise InvalidInput(f"feature #{number}: bad geometry ({exc})", field="file") from None
        props = item.get("properties") or {}
        if "id" in item and "id" not in props:
            props = {**props, "id": item["id"]}
        out.append(Feature(number, dict(props), geom))
    return out


def gpkg_wkb(blob: bytes) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob (None for an empty geometry)."""
    if len(blob) < 8 or blob[:2] != b"GP":
        raise InvalidInput("a geometry blob is not GeoPackage binary (no 'GP' magic)", field="file")
    flags = blob[3]
    if flags & 0b0010_0000:
        raise InvalidInput("GeoPackage extended geometry types are not supported", field="file")
    envelope = (flags >> 1) & 0b111
    if envelope not in _ENVELOPE_BYTES:
        raise InvalidInput(f"bad GeoPackage envelope indicator {envelope}", field="file")
    if flags & 0b0001_0000:
        return None
    return blob[8 + _ENVELOPE_BYTES[envelope] :]


def gpkg_srs_id(blob: bytes) -> int:
    """The srs id written in a GeoPackage geometry header (flag bit 0: byte order)."""
    order = "<" if blob[3] & 1 else ">"
    return int(struct.unpack(f"{order}i", blob[4:8])[0])


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def read_geopackage(path: Path, *, layer: str | None = None) -> list[Feature]:
    """Features of one layer of a GeoPackage (the only feature layer, or ``layer``)."""
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInput(f"{path.name} cannot be opened: {exc}", field="file") from None
    try:
        try:
            layers = [
                str(r[0])
                for r in con.execute(
                    "SELECT table_name FROM gpkg_contents WHERE data_type = 'features' "
                    "ORDER BY table_name"
                )
            ]
        except sqlite3.DatabaseError:
            raise InvalidInput(f"{path.name} is not a GeoPackage", field="file") from None
        if layer is None:
            if len(layers) != 1:
                raise InvalidInput(
                    f"{path.name} has {len(layers)} feature layers ({', '.join(layers)}): "
                    "name one with --layer",
                    field="layer",
                )
            layer = layers[0]
        elif layer not in layers:
            raise InvalidInput(
                f"{path.name} has no feature layer {layer!r} (it has {', '.join(layers)})",
                field="layer",
            )
        found = con.execute(
            "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        if found is None:
            raise InvalidInput(f"layer {layer!r} has no geometry column", field="layer")
        column, srs_id = str(found[0]), int(found[1])
        transformer = _to_lonlat(con, srs_id)
        cursor = con.execute(f"SELECT * FROM {_quote(layer)}")
        names = [d[0] for d in cursor.description]
        geom_at = names.index(column)
        out: list[Feature] = []
        for number, row in enumerate(cursor, start=1):
            props = {n: v for i, (n, v) in enumerate(zip(names, row, strict=True)) if i != geom_at}
            blob = row[geom_at]
            geom = None
            if blob is not None:
                wkb = gpkg_wkb(bytes(blob))
                geom = shapely.from_wkb(wkb) if wkb else None
            if geom is not None and transformer is not None:
                geom = _transform(geom, transformer)
            out.append(Feature(number, props, geom))
        return out
    finally:
        con.close()


def _to_lonlat(con: sqlite3.Connection, srs_id: int) -> Transformer | None:
    """A transformer to WGS-84 lon/lat for a projected layer; None for a lon/lat layer."""
    if srs_id in _LONLAT_EPSG or srs_id in (0, -1):  # 0/-1: undefined geographic/cartesian
        return None
    row = con.execute(
        "SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys "
        "WHERE srs_id = ?",
        (srs_id,),
    ).fetchone()
    if row is None:
        raise InvalidInput(f"the layer's srs {srs_id} is not described in the file", field="file")
    organization, org_id, definition = row
    try:
        if str(organization).upper() == "EPSG":
            crs = CRS.from_epsg(int(org_id))
        else:
            crs = CRS.from_wkt(str(definition))
    except Exception as exc:  # pyproj raises CRSError and friends
        raise InvalidInput(f"the layer's srs {srs_id} is unknown ({exc})", field="file") from None
    if crs.is_geographic:
        return None
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def _transform(geometry: shapely.Geometry, transformer: Transformer) -> shapely.Geometry:
    def _apply(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([np.asarray(x), np.asarray(y)])

    return shapely.transform(geometry, _apply)


def geometries_to_wgs84(geometries: GeomArray, system: CoordSystem | str) -> GeomArray:
    """Convert lon/lat geometries stated in ``system`` to WGS-84 (all vertices at once)."""
    system = parse_coord_system(system)
    if system in (CoordSystem.WGS84, CoordSystem.CGCS2000) or len(geometries) == 0:
        return geometries

    def _apply(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = to_wgs84_array(coords[:, 0], coords[:, 1], system)
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(geometries, _apply), dtype=object)


def read_records(path: Path, *, layer: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a component registry: CSV rows, or point features with lon/lat added.

    CSV is read as UTF-8 (with or without BOM) and, failing that, GB18030, the encoding Excel
    uses for Chinese CSV.
    """
    if path.suffix.lower() == ".csv":
        return list(_csv_rows(path.read_bytes()))
    rows: list[tuple[int, dict[str, Any]]] = []
    for feature in read_features(path, layer=layer):
        props = dict(feature.properties)
        geom = feature.geometry
        if geom is not None:
            if geom.geom_type != "Point":
                raise InvalidInput(
                    f"feature #{feature.number} is a {geom.geom_type}; components are points",
                    field="file",
                )
            props["lon"], props["lat"] = float(geom.x), float(geom.y)
        rows.append((feature.number, props))
    return rows


def _csv_rows(data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise InvalidInput("the CSV is neither UTF-8 nor GB18030", field="file")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InvalidInput("the CSV has no header row", field="file")
    for number, row in enumerate(reader, start=1):
        yield number, dict(row)
