"""Benchmark: store Haidian's grid (~43,900 cells of 100 m) and load it back from the database.

Times, on a fresh database (SQLite in a temporary directory unless --url is given):

* build + store: ``grid.service.build`` (build the lattice from the boundary, write every cell);
* load: rebuilding the in-memory index from the stored cells, as a process does the first time
  it locates a point after a start or a grid change (``service.load_grid``);
* a cached lookup's overhead: ``service.loaded_grids`` when the revision is current;

and, as the baseline measured in the same run, building the grid from the boundary in memory
(what a process would have to do without storage). Checks that the loaded grid gives the same
cell as the built one for 100,000 random points.

    python bench/grid_db.py [--adcode 110108] [--cell 100] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cityloop.db.engine import Database
from cityloop.db.migrate import upgrade
from cityloop.db.registry import load_all_models
from cityloop.grid import models as _grid_models  # noqa: F401  (tables for create_all)
from cityloop.grid import service
from cityloop.grid.boundaries import load_boundary
from cityloop.grid.domain import build_grid
from cityloop.org.domain import SYSTEM_ACTOR

LOAD_TARGET_S = 5.0  # "seconds at most"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adcode", default="110108")
    parser.add_argument("--cell", type=float, default=100.0)
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'grid-bench.db'}"
    database = Database.from_url(url)
    upgrade(database.engine)
    load_all_models().metadata.create_all(database.engine)  # until the migration has the tables

    boundary = load_boundary(args.adcode)
    t0 = time.perf_counter()
    built = build_grid(boundary, args.cell)
    baseline_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    summary = service.build(database.uow(), SYSTEM_ACTOR, adcode=args.adcode, cell_size=args.cell)
    store_s = time.perf_counter() - t0

    loads = []
    uow = database.uow()
    for _ in range(args.runs):
        with uow.read():
            grid_id = service.loaded_grids(uow.session)[0].id
            t0 = time.perf_counter()
            loaded = service.load_grid(uow.session, grid_id)
            loads.append(time.perf_counter() - t0)
    load_s = statistics.median(loads)

    checks = []
    for _ in range(200):
        with uow.read():
            t0 = time.perf_counter()
            service.loaded_grids(uow.session)
            checks.append(time.perf_counter() - t0)
    check_ms = statistics.median(checks) * 1000

    rng = np.random.default_rng(3)
    xmin, ymin, xmax, ymax = boundary.geometry.bounds
    lons = rng.uniform(xmin, xmax, 100_000)
    lats = rng.uniform(ymin, ymax, 100_000)
    same = bool(np.array_equal(loaded.index.locate_many(lons, lats), built.locate_many(lons, lats)))

    print(f"database      {database.dialect} ({url.split('://')[0]})")
    cells = f"{summary.cells} cells of {args.cell:g} m"
    print(f"district      {boundary.full_name} {args.adcode}: {cells}")
    print(f"build+store   {store_s:.2f} s (service.build: build, write every cell, audit)")
    print(f"load          {load_s:.2f} s median of {args.runs} (stored cells -> in-memory index)")
    print(f"baseline      {baseline_s:.2f} s building the grid from the boundary in memory")
    print(f"ratio         load takes {load_s / baseline_s:.2f}x the in-memory build")
    print(f"cached check  {check_ms:.2f} ms per lookup when the revision is current")
    print(f"agreement     {'identical' if same else 'DIFFERENT'} cells for 100,000 random points")
    ok = same and load_s < LOAD_TARGET_S
    print("result        " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
