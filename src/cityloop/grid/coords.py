"""Coordinate systems used by Chinese map services, and exact conversions to and from WGS-84.

Every coordinate that enters cityloop states its system, because the same street corner has
different numbers in each (GPS and 天地图 versus AMap/Tencent versus Baidu differ by 300-700 m
in a Chinese city). Storage is always WGS-84; these functions are the only place where the
offsets are applied.

* **WGS-84** — GPS. The storage system.
* **CGCS2000** — the national geodetic system (天地图, surveying). Its ellipsoid and frame agree
  with WGS-84 to a few centimetres, far below the precision of a city-management case location,
  so it is treated as WGS-84 (identity conversion). Say CGCS2000 when that is what the source
  uses: if a future version models the centimetre-level frame difference, only this module moves.
* **GCJ-02** ("Mars coordinates", 国测局坐标) — AMap, Tencent, Apple in China. WGS-84 plus a
  deliberately obfuscated offset. The forward formula is the widely published one (the
  constants of the open-source ``coordtransform`` and ``gcoord`` libraries: Krasovsky
  semi-major axis 6378245 m, eccentricity² 0.00669342162296594323). There is no closed-form
  inverse; the common one-step inverse is off by up to ~5 m (0.4 m typical), so
  :func:`gcj02_to_wgs84` iterates the forward formula (a fixed-point/Newton step whose Jacobian
  is within ~0.01 of the identity) until the residual is below 1e-12 degrees (~0.1 micrometre).
* **BD-09** — Baidu. A further rotation/scaling of GCJ-02. The published inverse formula is also
  approximate (centimetres), so it is refined by the same iteration.

The "in China" rule: outside China, map services do not apply the offset, so GCJ-02 and BD-09
equal WGS-84 there. Like ``coordtransform``, a point counts as in China when, *as given* (in the
system it is stated in), ``73.66 < lon < 135.05`` and ``3.86 < lat < 53.55`` (open bounds). The
box is a coarse rule (it includes e.g. parts of Mongolia and Korea where AMap does not offset);
it is the rule the published libraries and most Chinese back ends use, and every seed city is
far inside it. Inverse conversions decide with the box on their own input, then iterate the pure
offset, so a round trip is exact except within ~700 m of the box edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from cityloop.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
_Forward = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]
_ArrayConversion = Callable[[npt.ArrayLike, npt.ArrayLike], tuple[FloatArray, FloatArray]]


class CoordSystem(StrEnum):
    """The coordinate system an input states. Values are what APIs and files spell."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"
    CGCS2000 = "cgcs2000"


# Constants of the published GCJ-02 / BD-09 algorithm (identical in coordtransform and most
# ports). They must not be "corrected": the point is to reproduce what the map services do.
_A = 6378245.0  # Krasovsky 1940 semi-major axis, metres
_EE = 0.00669342162296594323  # first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0

# The in-China box, open bounds (coordtransform's out_of_china, inverted).
CHINA_LON_MIN, CHINA_LON_MAX = 73.66, 135.05
CHINA_LAT_MIN, CHINA_LAT_MAX = 3.86, 53.55

_INVERSE_TOLERANCE_DEG = 1e-12  # ~0.1 micrometre: iteration stops below this residual
_INVERSE_MAX_ITERATIONS = 30  # linear convergence, factor ~0.007: 4-5 steps suffice


def parse_coord_system(value: str | CoordSystem) -> CoordSystem:
    """Read a coordinate-system name as users write it ("WGS-84", "gcj02", "BD09", "CGCS2000")."""
    if isinstance(value, CoordSystem):
        return value
    key = "".join(ch for ch in value.lower() if ch.isalnum())
    aliases = {
        "wgs84": CoordSystem.WGS84,
        "gps": CoordSystem.WGS84,
        "epsg4326": CoordSystem.WGS84,
        "gcj02": CoordSystem.GCJ02,
        "gcj": CoordSystem.GCJ02,
        "amap": CoordSystem.GCJ02,
        "bd09": CoordSystem.BD09,
        "bd09ll": CoordSystem.BD09,
        "baidu": CoordSystem.BD09,
        "cgcs2000": CoordSystem.CGCS2000,
        "epsg4490": CoordSystem.CGCS2000,
    }
    try:
        return aliases[key]
    except KeyError:
        raise InvalidInput(
            f"Unknown coordinate system {value!r}: use one of "
            + ", ".join(s.value for s in CoordSystem)
            + ".",
            field="coord_system",
        ) from None


def in_china(lon: float, lat: float) -> bool:
    """Whether the GCJ-02/BD-09 offset applies at this point (the box rule in the module doc)."""
    return CHINA_LON_MIN < lon < CHINA_LON_MAX and CHINA_LAT_MIN < lat < CHINA_LAT_MAX


def in_china_array(lons: npt.ArrayLike, lats: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Vectorised :func:`in_china`."""
    x = np.asarray(lons, dtype=np.float64)
    y = np.asarray(lats, dtype=np.float64)
    return (x > CHINA_LON_MIN) & (x < CHINA_LON_MAX) & (y > CHINA_LAT_MIN) & (y < CHINA_LAT_MAX)


# --------------------------------------------------------------------------------------------
# Core formulas, written once on numpy arrays (they also accept 0-d arrays). Scalar wrappers
# convert; the scalar path is not hot (a case location), the array path is (boundary import).


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 offset (dlon, dlat) in degrees at a WGS-84 point, ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat = dlat + common
    dlat = dlat + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon = dlon + common
    dlon = dlon + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * pi)
    return dlon, dlat


def _gcj_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _bd_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 -> BD-09, the published formula (Baidu's own, reproduced by coordtransform)."""
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_inverse_estimate(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """BD-09 -> GCJ-02, the published approximate inverse (centimetre-level error)."""
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: _Forward,
    target_lon: FloatArray,
    target_lat: FloatArray,
    start_lon: FloatArray,
    start_lat: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve forward(p) = target by fixed-point iteration p += target - forward(p).

    Both offsets are smooth with a Jacobian within ~0.01 of the identity, so each step gains
    about two digits. Each point stops on its own once its step is below 1e-12 degrees, so a
    point's result does not depend on the other points converted with it.
    """
    lon = start_lon.copy()
    lat = start_lat.copy()
    active = np.ones(lon.shape, dtype=bool)
    for _ in range(_INVERSE_MAX_ITERATIONS):
        f_lon, f_lat = forward(lon, lat)
        r_lon = np.where(active, target_lon - f_lon, 0.0)
        r_lat = np.where(active, target_lat - f_lat, 0.0)
        lon = lon + r_lon
        lat = lat + r_lat
        active &= (np.abs(r_lon) >= _INVERSE_TOLERANCE_DEG) | (
            np.abs(r_lat) >= _INVERSE_TOLERANCE_DEG
        )
        if not active.any():
            break
    return lon, lat


def _as_arrays(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(lons, dtype=np.float64)
    y = np.asarray(lats, dtype=np.float64)
    if x.shape != y.shape:
        raise InvalidInput(
            f"Longitudes and latitudes differ in shape: {x.shape} and {y.shape}.", field="lat"
        )
    return x, y


# --------------------------------------------------------------------------------------------
# Vectorised public conversions (numpy arrays in, new float64 arrays out).


def _inside_only(
    lons: npt.ArrayLike, lats: npt.ArrayLike, convert: _Forward
) -> tuple[FloatArray, FloatArray]:
    """Apply ``convert`` to the points inside the China box; copy the others unchanged."""
    x, y = _as_arrays(lons, lats)
    out_x = x.copy()
    out_y = y.copy()
    inside = in_china_array(x, y)
    if inside.any():
        cx, cy = convert(x[inside], y[inside])
        out_x[inside] = cx
        out_y[inside] = cy
    return out_x, out_y


def _gcj_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_offset(lon, lat)  # one-step estimate: the offset varies slowly
    return _invert(_gcj_forward, lon, lat, lon - dlon, lat - dlat)


def _bd_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    start_lon, start_lat = _bd_inverse_estimate(lon, lat)
    return _invert(_bd_forward, lon, lat, start_lon, start_lat)


def _wgs_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _bd_forward(*_gcj_forward(lon, lat))


def _bd_to_wgs(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _gcj_inverse(*_bd_inverse(lon, lat))


def wgs84_to_gcj02_array(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS-84 -> GCJ-02; points outside the China box are returned unchanged."""
    return _inside_only(lons, lats, _gcj_forward)


def gcj02_to_wgs84_array(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 -> WGS-84, iterated to ~0.1 micrometre; outside the China box unchanged."""
    return _inside_only(lons, lats, _gcj_inverse)


def gcj02_to_bd09_array(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 -> BD-09; outside the China box unchanged (Baidu shows WGS-84 abroad)."""
    return _inside_only(lons, lats, _bd_forward)


def bd09_to_gcj02_array(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 -> GCJ-02, the published inverse refined by iteration; outside the box unchanged."""
    return _inside_only(lons, lats, _bd_inverse)


def wgs84_to_bd09_array(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS-84 -> BD-09 (through GCJ-02, as Baidu defines it); the box is decided on the input."""
    return _inside_only(lons, lats, _wgs_to_bd)


def bd09_to_wgs84_array(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 -> WGS-84 (through GCJ-02), both steps iterated; the box is decided on the input."""
    return _inside_only(lons, lats, _bd_to_wgs)


def to_wgs84_array(
    lons: npt.ArrayLike, lats: npt.ArrayLike, system: CoordSystem | str
) -> tuple[FloatArray, FloatArray]:
    """Convert arrays stated in ``system`` to WGS-84 (new arrays; inputs are not modified)."""
    system = parse_coord_system(system)
    if system is CoordSystem.GCJ02:
        return gcj02_to_wgs84_array(lons, lats)
    if system is CoordSystem.BD09:
        return bd09_to_wgs84_array(lons, lats)
    x, y = _as_arrays(lons, lats)  # WGS-84, and CGCS2000 treated as WGS-84 (module doc)
    return x.copy(), y.copy()


def from_wgs84_array(
    lons: npt.ArrayLike, lats: npt.ArrayLike, system: CoordSystem | str
) -> tuple[FloatArray, FloatArray]:
    """Convert WGS-84 arrays to ``system`` (e.g. to draw on an AMap or Baidu base map)."""
    system = parse_coord_system(system)
    if system is CoordSystem.GCJ02:
        return wgs84_to_gcj02_array(lons, lats)
    if system is CoordSystem.BD09:
        return wgs84_to_bd09_array(lons, lats)
    x, y = _as_arrays(lons, lats)
    return x.copy(), y.copy()


# --------------------------------------------------------------------------------------------
# Scalar public conversions.


def _scalar(func: _ArrayConversion, lon: float, lat: float) -> tuple[float, float]:
    """Run an array conversion on one point: one implementation, so results agree bit for bit."""
    x, y = func(np.array([lon], dtype=np.float64), np.array([lat], dtype=np.float64))
    return float(x[0]), float(y[0])


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02 for one point, as (lon, lat)."""
    return _scalar(wgs84_to_gcj02_array, lon, lat)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84 for one point (iterated: round trip error ~0.1 micrometre)."""
    return _scalar(gcj02_to_wgs84_array, lon, lat)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 for one point."""
    return _scalar(gcj02_to_bd09_array, lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> GCJ-02 for one point (iterated)."""
    return _scalar(bd09_to_gcj02_array, lon, lat)


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> BD-09 for one point."""
    return _scalar(wgs84_to_bd09_array, lon, lat)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> WGS-84 for one point (iterated)."""
    return _scalar(bd09_to_wgs84_array, lon, lat)


def to_wgs84(lon: float, lat: float, system: CoordSystem | str) -> tuple[float, float]:
    """Convert one point stated in ``system`` to WGS-84, the storage system."""
    x, y = to_wgs84_array([lon], [lat], system)
    return float(x[0]), float(y[0])


def from_wgs84(lon: float, lat: float, system: CoordSystem | str) -> tuple[float, float]:
    """Convert one WGS-84 point to ``system``."""
    x, y = from_wgs84_array([lon], [lat], system)
    return float(x[0]), float(y[0])
