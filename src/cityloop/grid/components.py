"""Components (部件): the 16-digit id, statuses, and reading a registry's rows. Pure.

A component instance id (部件标识码) is county adcode (6) + major class (2) + minor class (2) +
serial (6), e.g. ``3205080101000001`` is 上水井盖 (0101) number 1 in 320508 [L]. Digits 7-10
are the catalog's component minor-class code, so an import can check every id against the
catalog before writing anything.

Registries come from city asset systems as CSV (often written by Excel in GB18030) or GeoJSON
points. Column names vary, so the common Chinese and English headers are accepted
(:data:`FIELD_ALIASES`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cityloop.errors import InvalidInput

CODE_RE = re.compile(r"^\d{16}$")
EARTH_RADIUS_M = 6_371_008.8  # mean radius: haversine is within 0.5 % of the ellipsoid


class ComponentStatus(StrEnum):
    """A component's condition in the registry [U: the names vary by city; these five cover the
    usual 完好/破损/丢失/占用/废弃 columns]."""

    NORMAL = "normal"  # 完好
    DAMAGED = "damaged"  # 破损
    MISSING = "missing"  # 丢失
    OCCUPIED = "occupied"  # 占用
    RETIRED = "retired"  # 废弃/停用


_STATUS_WORDS: dict[str, ComponentStatus] = {
    "normal": ComponentStatus.NORMAL,
    "ok": ComponentStatus.NORMAL,
    "完好": ComponentStatus.NORMAL,
    "正常": ComponentStatus.NORMAL,
    "damaged": ComponentStatus.DAMAGED,
    "破损": ComponentStatus.DAMAGED,
    "损坏": ComponentStatus.DAMAGED,
    "missing": ComponentStatus.MISSING,
    "丢失": ComponentStatus.MISSING,
    "缺失": ComponentStatus.MISSING,
    "occupied": ComponentStatus.OCCUPIED,
    "占用": ComponentStatus.OCCUPIED,
    "retired": ComponentStatus.RETIRED,
    "废弃": ComponentStatus.RETIRED,
    "停用": ComponentStatus.RETIRED,
}

# Canonical field -> header spellings seen in registries (compared case-insensitively).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("code", "id", "component_id", "标识码", "部件标识码", "部件编码", "编码"),
    "minor_code": ("minor_code", "class", "class_code", "小类", "小类代码", "小类编码"),
    "name": ("name", "名称", "部件名称"),
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "system": ("system", "coord_system", "crs", "坐标系"),
    "owner": ("owner", "owner_department", "department", "权属单位", "主管部门", "养护单位"),
    "status": ("status", "state", "状态", "部件状态"),
    "address": ("address", "地址", "位置"),
}


def parse_status(value: object) -> ComponentStatus:
    """A status as registries write it; empty means normal (完好)."""
    text = str(value or "").strip().lower()
    if not text:
        return ComponentStatus.NORMAL
    try:
        return _STATUS_WORDS[text]
    except KeyError:
        names = ", ".join(s.value for s in ComponentStatus)
        raise InvalidInput(
            f"unknown status {value!r}: use one of {names} (or 完好/破损/丢失/占用/废弃)",
            field="status",
        ) from None


def split_code(code: str) -> tuple[str, str, str]:
    """(county adcode, 4-digit minor-class code, serial) of a 16-digit component id."""
    code = code.strip()
    if not CODE_RE.match(code):
        raise InvalidInput(
            f"a component id is 16 digits (county 6 + major 2 + minor 2 + serial 6); got {code!r}",
            field="code",
        )
    return code[:6], code[6:10], code[10:]


@dataclass(frozen=True, slots=True)
class ComponentRow:
    """One registry row, normalised but not yet checked against the database."""

    line: int  # 1-based data row (CSV) or feature number (GeoJSON)
    code: str
    minor_code: str
    name: str
    lon: float
    lat: float
    system: str | None  # the row's own coordinate system, when the file has that column
    owner: str | None  # department code
    status: ComponentStatus
    address: str


def canonical_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """Map a row's headers to canonical field names (unknown headers are dropped)."""
    lowered = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    out: dict[str, Any] = {}
    for canonical, aliases in FIELD_ALIASES.items():
        for alias in aliases:
            if alias.lower() in lowered:
                out[canonical] = lowered[alias.lower()]
                break
    return out


def _number(value: object, name: str) -> float:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} {value!r} is not a number", field=name) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{name} {value!r} is not a finite number", field=name)
    return number


def parse_row(line: int, record: Mapping[str, Any]) -> ComponentRow:
    """Normalise one row; raises InvalidInput naming what is wrong (the caller adds the line)."""
    fields = canonical_fields(record)
    raw_code = str(fields.get("code") or "").strip()
    _county, minor, _serial = split_code(raw_code)
    given_minor = str(fields.get("minor_code") or "").strip()
    if given_minor and given_minor != minor:
        raise InvalidInput(
            f"the class column says {given_minor} but the id {raw_code} says {minor}",
            field="minor_code",
        )
    if "lon" not in fields or "lat" not in fields:
        raise InvalidInput("the row has no lon/lat (经度/纬度)", field="lon")
    lon = _number(fields["lon"], "lon")
    lat = _number(fields["lat"], "lat")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"({lon}, {lat}) is not a lon/lat position", field="lon")
    system = str(fields.get("system") or "").strip() or None
    owner = str(fields.get("owner") or "").strip() or None
    return ComponentRow(
        line=line,
        code=raw_code,
        minor_code=minor,
        name=str(fields.get("name") or "").strip()[:128],
        lon=lon,
        lat=lat,
        system=system,
        owner=owner,
        status=parse_status(fields.get("status")),
        address=str(fields.get("address") or "").strip()[:255],
    )


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres: within 0.5 % of the ellipsoid, plenty for "near"."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def degree_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box holding every point within ``radius_m`` (for an indexed pre-filter)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.01
    cos_lat = max(math.cos(math.radians(min(abs(lat) + dlat, 89.9))), 1e-6)
    dlon = dlat / cos_lat
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat
