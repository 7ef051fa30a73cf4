"""Benchmark: import 1,000,000 historical cases from a CSV file into a fresh SQLite database.

The target (issue 8, section 4): a million rows in under five minutes on SQLite.

Set-up (not timed): a fresh database with the built-in catalog, five handling departments and
Haidian's 100 m grid (~43,900 cells, so every case is located to its cell); a generated CSV in
the shape of a typical eGova export (Chinese headers, local times, channel and state names in
Chinese, GCJ-02 coordinates, 2019-2025), and its TOML mapping.

Timed:

* **import**: ``cityloop.exchange.service.import_file`` as the CLI runs it (parse, check, map,
  convert coordinates, locate cells, compute disposal deadlines on the working calendar, write
  cases, their synthetic events and the re-run keys, in one transaction);
* **re-run**: the same file again (every row "already imported", nothing written);
* **baseline**: the same rows, already in storage form, inserted with plain executemany into a
  second fresh database (the pure cost of writing them; reading them back is not timed).

The ratio import / baseline says how much the import adds to the unavoidable writing.

    python bench/bulk_import.py [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

from cityloop.catalog import service as catalog
from cityloop.db.engine import Database
from cityloop.db.migrate import upgrade
from cityloop.exchange import service
from cityloop.exchange.importing import SQLITE_CACHE_KIB
from cityloop.grid import service as grid
from cityloop.grid.boundaries import load_boundary
from cityloop.grid.coords import from_wgs84_array
from cityloop.org import service as org
from cityloop.org.domain import SYSTEM_ACTOR, DepartmentKind
from cityloop.org.schemas import DepartmentCreate

TARGET_S = 300.0
ADCODE = "110108"

DEPARTMENTS = {
    "drainage": "区排水管理所",
    "sanitation": "区环境卫生服务中心",
    "greening": "区园林绿化局",
    "roads": "区公路分局",
    "urban": "区城管执法局",
}
CHANNELS = {
    "监督员上报": ("inspector", 0.5),
    "12345热线": ("hotline_12345", 0.3),
    "公众上报": ("public_web", 0.1),
    "视频发现": ("sensor", 0.1),
}
CLASSES = [f"C{c}" for c in ("0101", "0102", "0103", "0104", "0106")] + [
    f"E{c}" for c in ("0101", "0102", "0103", "0104", "0105", "0107", "0110")
]

MAPPING = """
source = "egova-bench"
encoding = "utf-8"
timezone = "Asia/Shanghai"
date_formats = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"]
coord_system = "gcj02"

[columns]
"案卷号" = "code"
"上报时间" = "reported_at"
"立案时间" = "filed_at"
"派遣时间" = "dispatched_at"
"处置时间" = "disposed_at"
"结案时间" = "closed_at"
"来源" = "channel"
"案卷状态" = "state"
"小类编码" = "minor_code"
"处置部门" = "department"
"问题描述" = "description"
"地址" = "address"
"经度" = "lon"
"纬度" = "lat"

[values.channel]
"监督员上报" = "inspector"
"12345热线" = "hotline_12345"
"公众上报" = "public_web"
"视频发现" = "sensor"

[values.state]
"已结案" = "closed"
"不予立案" = "declined"
"已作废" = "voided"
"处置中" = "dispatched"

[values.department]
"区排水管理所" = "drainage"
"区环境卫生服务中心" = "sanitation"
"区园林绿化局" = "greening"
"区公路分局" = "roads"
"区城管执法局" = "urban"
"""


def setup(url: str, *, with_grid: bool) -> Database:
    database = Database.from_url(url)
    upgrade(database.engine)
    catalog.load_defaults(database.uow(), SYSTEM_ACTOR)
    org.create_department(
        database.uow(),
        SYSTEM_ACTOR,
        DepartmentCreate(code="centre", name="监督指挥中心", kind=DepartmentKind.CENTRE),
    )
    for code, name in DEPARTMENTS.items():
        org.create_department(
            database.uow(),
            SYSTEM_ACTOR,
            DepartmentCreate(code=code, name=name, kind=DepartmentKind.HANDLING),
        )
    if with_grid:
        grid.build(database.uow(), SYSTEM_ACTOR, adcode=ADCODE, cell_size=100.0)
    return database


def inside_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 points inside Haidian (sampled in WGS-84 inside the boundary, then offset)."""
    boundary = load_boundary(ADCODE).geometry
    xmin, ymin, xmax, ymax = boundary.bounds
    lons: list[np.ndarray] = []
    lats: list[np.ndarray] = []
    got = 0
    shrunk = boundary.buffer(-0.002)  # away from the edge: the GCJ round trip moves ~1 m
    while got < n:
        x = rng.uniform(xmin, xmax, n)
        y = rng.uniform(ymin, ymax, n)
        keep = shapely.contains_xy(shrunk, x, y)
        lons.append(x[keep])
        lats.append(y[keep])
        got += int(keep.sum())
    wx = np.concatenate(lons)[:n]
    wy = np.concatenate(lats)[:n]
    return from_wgs84_array(wx, wy, "gcj02")


def _stamps(epochs: np.ndarray, *, slashes: bool = False) -> list[str]:
    """Local wall-clock times as text, vectorised (strftime per value would dominate)."""
    if slashes:
        text = np.datetime_as_string(epochs.astype("datetime64[s]"), unit="m")
        text = np.char.replace(np.char.replace(text, "-", "/"), "T", " ")
    else:
        text = np.char.replace(
            np.datetime_as_string(epochs.astype("datetime64[s]"), unit="s"), "T", " "
        )
    return text.tolist()  # type: ignore[no-any-return]


def generate_csv(path: Path, rows: int, seed: int = 8) -> None:
    """A CSV in the shape of an eGova export: 90 % closed, 4 % declined, 2 % voided, 4 % still
    being disposed; times in local wall-clock text, dispatch times in a second format."""
    rng = np.random.default_rng(seed)
    lons, lats = inside_points(rows, rng)
    start = 1546300800  # 2019-01-01
    span = 6 * 365 * 86400
    t0 = rng.integers(start, start + span, rows)
    t1 = t0 + rng.integers(600, 7200, rows)
    t2 = t1 + rng.integers(300, 3600, rows)
    t3 = t2 + rng.integers(3600, 4 * 86400, rows)
    t4 = t3 + rng.integers(1800, 86400, rows)
    s0, s1, s3, s4 = _stamps(t0), _stamps(t1), _stamps(t3), _stamps(t4)
    s2 = _stamps(t2, slashes=True)
    kind = rng.random(rows)
    names = list(CHANNELS)
    weights = np.array([w for _, w in CHANNELS.values()])
    channel = rng.choice(len(names), size=rows, p=weights / weights.sum())
    depts = list(DEPARTMENTS.values())
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "案卷号",
                "上报时间",
                "立案时间",
                "派遣时间",
                "处置时间",
                "结案时间",
                "来源",
                "案卷状态",
                "小类编码",
                "处置部门",
                "问题描述",
                "地址",
                "经度",
                "纬度",
            ]
        )
        for i in range(rows):
            r = kind[i]
            dept = depts[i % len(depts)]
            if r < 0.90:
                state, times = "已结案", (s1[i], s2[i], s3[i], s4[i])
            elif r < 0.94:
                state, times, dept = "不予立案", ("", "", "", s1[i]), ""
            elif r < 0.96:
                state, times = "已作废", (s1[i], "", "", s2[i].replace("/", "-") + ":00")
            else:
                state, times = "处置中", (s1[i], s2[i], "", "")
            w.writerow(
                (
                    f"HD{i:011d}",
                    s0[i],
                    *times,
                    names[channel[i]],
                    state,
                    CLASSES[i % len(CLASSES)],
                    dept,
                    "现场发现问题，请尽快处置(演示)",
                    f"海淀区某路{i % 997}号附近",
                    f"{lons[i]:.6f}",
                    f"{lats[i]:.6f}",
                )
            )


def baseline(source_db: Path, target_url: str) -> tuple[float, int]:
    """Plain executemany of the imported rows into a fresh database (inserts timed only)."""
    target = setup(target_url, with_grid=False)
    target.engine.dispose()
    src = sqlite3.connect(source_db)
    dst = sqlite3.connect(target_url.removeprefix("sqlite:///"), isolation_level=None)
    dst.execute("PRAGMA journal_mode = WAL")
    dst.execute("PRAGMA synchronous = FULL")
    dst.execute("PRAGMA foreign_keys = ON")
    dst.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")  # the importer's setting too
    dst.execute("BEGIN IMMEDIATE")
    timed = 0.0
    total = 0
    for table in ("exchange_import_run", "case_file", "case_event", "exchange_imported_case"):
        cur = src.execute(f"SELECT * FROM {table}")
        width = len(cur.description)
        sql = f"INSERT INTO {table} VALUES ({', '.join(['?'] * width)})"
        while rows := cur.fetchmany(50_000):
            t0 = time.perf_counter()
            dst.executemany(sql, rows)
            timed += time.perf_counter() - t0
            total += len(rows)
    t0 = time.perf_counter()
    dst.execute("COMMIT")
    timed += time.perf_counter() - t0
    return timed, total


class _Quiet:
    def start(self, total: int | None) -> None:
        self.total = total

    def advance(self, rows: int) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep the files")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cityloop-bulk-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "import.db"
    for stale in work.glob("*.db*"):
        stale.unlink()

    t0 = time.perf_counter()
    csv_path = work / "cases.csv"
    generate_csv(csv_path, args.rows)
    gen_s = time.perf_counter() - t0
    mapping_path = work / "mapping.toml"
    mapping_path.write_text(MAPPING, encoding="utf-8")
    mapping = service.load_mapping(mapping_path)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"generated {args.rows:,} rows ({size_mb:.0f} MB) in {gen_s:.1f} s")

    database = setup(f"sqlite:///{db_path}", with_grid=True)
    t0 = time.perf_counter()
    report = service.import_file(database.uow(), SYSTEM_ACTOR, csv_path, mapping, progress=_Quiet())
    import_s = time.perf_counter() - t0
    if not report.committed:
        print(f"import refused: {report.rejected} rejected, e.g. {report.rejections[:3]}")
        return 1
    with database.engine.connect() as conn:
        events = conn.exec_driver_sql("SELECT count(*) FROM case_event").scalar_one()
        located = conn.exec_driver_sql(
            "SELECT count(*) FROM case_file WHERE cell_code IS NOT NULL"
        ).scalar_one()
    print(
        f"import:   {report.created:,} cases, {events:,} events, {located:,} located to a cell, "
        f"in {import_s:.1f} s ({report.rows_read / import_s:,.0f} rows/s)"
    )

    t0 = time.perf_counter()
    again = service.import_file(database.uow(), SYSTEM_ACTOR, csv_path, mapping)
    rerun_s = time.perf_counter() - t0
    print(f"re-run:   {again.summary} in {rerun_s:.1f} s")
    database.engine.dispose()

    base_s, base_rows = baseline(db_path, f"sqlite:///{work / 'baseline.db'}")
    print(
        f"baseline: executemany of the same {base_rows:,} stored rows in {base_s:.1f} s "
        f"({args.rows / base_s:,.0f} cases/s)"
    )
    ratio = import_s / base_s
    verdict = "OK" if import_s < TARGET_S * args.rows / 1_000_000 else "TOO SLOW"
    print(
        f"ratio import/baseline = {ratio:.2f}x; target {TARGET_S:.0f} s per million rows: {verdict}"
    )
    if again.created != 0 or again.already_imported != report.created:
        print("re-run was not idempotent")
        return 1
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
