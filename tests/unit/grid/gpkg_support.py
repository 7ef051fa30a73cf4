"""A minimal GeoPackage writer for tests (sqlite3 + WKB with the GeoPackage binary header)."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path
from typing import Any

import shapely


def gpkg_blob(geometry: shapely.Geometry, srs_id: int = 4326, envelope: bool = True) -> bytes:
    """GeoPackage binary: 'GP', version 0, flags (little endian, XY envelope), srs id, WKB."""
    flags = 0b0000_0001 | (0b0000_0010 if envelope else 0)
    header = b"GP" + bytes([0, flags]) + struct.pack("<i", srs_id)
    if envelope:
        xmin, ymin, xmax, ymax = geometry.bounds
        header += struct.pack("<4d", xmin, xmax, ymin, ymax)
    return header + shapely.to_wkb(geometry)


def write_gpkg(
    path: Path,
    rows: list[tuple[dict[str, Any], shapely.Geometry]],
    *,
    layer: str = "cells",
    srs_id: int = 4326,
    srs_definition: str = "",
    extra_layers: tuple[str, ...] = (),
) -> Path:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT, srs_id INTEGER PRIMARY KEY,
            organization TEXT, organization_coordsys_id INTEGER, definition TEXT,
            description TEXT);
        CREATE TABLE gpkg_contents (table_name TEXT PRIMARY KEY, data_type TEXT,
            identifier TEXT, srs_id INTEGER);
        CREATE TABLE gpkg_geometry_columns (table_name TEXT, column_name TEXT,
            geometry_type_name TEXT, srs_id INTEGER, z INTEGER, m INTEGER);
        """
    )
    con.execute("INSERT INTO gpkg_spatial_ref_sys VALUES ('WGS 84', 4326, 'EPSG', 4326, '', '')")
    if srs_id != 4326:
        con.execute(
            "INSERT INTO gpkg_spatial_ref_sys VALUES ('custom', ?, 'EPSG', ?, ?, '')",
            (srs_id, srs_id, srs_definition),
        )
    keys = sorted({k for props, _geom in rows for k in props})
    for name in (layer, *extra_layers):
        columns = ", ".join(f'"{k}" TEXT' for k in keys)
        con.execute(
            f'CREATE TABLE "{name}" (fid INTEGER PRIMARY KEY, geom BLOB'
            + (f", {columns})" if columns else ")")
        )
        con.execute("INSERT INTO gpkg_contents VALUES (?, 'features', ?, ?)", (name, name, srs_id))
        con.execute(
            "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'GEOMETRY', ?, 0, 0)",
            (name, srs_id),
        )
    for props, geom in rows:
        names = ["geom", *props]
        marks = ", ".join("?" for _ in names)
        quoted = ", ".join(f'"{n}"' for n in names)
        con.execute(
            f'INSERT INTO "{layer}" ({quoted}) VALUES ({marks})',
            [gpkg_blob(geom, srs_id), *props.values()],
        )
    con.commit()
    con.close()
    return path
