"""Benchmark: case intake through the HTTP API of a real server against raw inserts.

For each backend (SQLite, PostgreSQL) the benchmark makes a fresh database with the real CLI
(``cityloop init``, a centre department, an intake operator), starts ``cityloop serve`` on a
free loopback port, logs in and then runs, in one go:

1. sustained: open-loop intake at ``--rate`` cases/s for ``--seconds`` s. Request i is due at
   ``t0 + i/rate`` whatever happened to the earlier ones, and its latency is measured from that
   due time, so a stalled server shows up in p99 instead of silently slowing the client down
   (no coordinated omission). Target: the rate is achieved and p99 < 50 ms.
2. saturation: closed-loop intake, ``--clients`` connections each sending the next request as
   soon as the last one is answered, for ``--saturate-seconds`` s: the server's ceiling.
3. raw: the same rows inserted with plain SQL through the same driver (sqlite3 or psycopg) and
   the same connection settings (WAL, synchronous=FULL, BEGIN IMMEDIATE on SQLite), one case
   row plus its report event row per transaction, one connection, for ``--raw-seconds`` s.
   The rows are copies of a case the API made (only the code and the Idempotency-Key differ).
   Target: API throughput at saturation >= 25 % of the raw insert rate.

The server's CPU time per case (its process group, from /proc) is printed with each phase: on a
shared machine it is steadier than the rates. So are the load average and the disk's sync
latency, which bounds the raw rate (every raw commit waits for one).

The server runs as a bureau would run it on a 2-core machine: ``cityloop serve --workers 2``
(``--workers`` changes it; ``--serve-arg`` passes other options through). Two workers share
SQLite's single writer through the cross-process writer lock (``db/engine.py``), and inside
each worker API reports that arrive together share one commit (``cases/intake.py``).

Every request carries its own Idempotency-Key, as a hotline integration's would. The server is
killed and the database dropped at the end, also on failure (``--keep`` keeps the SQLite file
and the server log). Exit status: 0 when every target is met, 3 when one is missed, 1 when
the run itself failed (a request error, a server that does not start).

    .venv/bin/python bench/intake.py --backend sqlite|postgresql|both [--seconds 20] [--rate 200]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg.types.json import Json
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cityloop.db.engine import make_engine

HOST = "127.0.0.1"
CLI = Path(sys.executable).with_name("cityloop")
USERNAME = "bench_intake"
PASSWORD = "bench-intake-password"
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.25
SUSTAINED_TOLERANCE = 0.98  # achieved/offered rate that counts as "sustained"
PG_ADMIN_URL = os.environ.get(
    "CITYLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def case_body(n: int) -> bytes:
    return json.dumps(
        {
            "channel": "hotline_12345",
            "description": f"井盖缺失(压测) #{n}",
            "location": {"lon": 116.31 + (n % 100) * 1e-4, "lat": 39.99, "system": "wgs84"},
            "address": "海淀区中关村大街(压测)",
            "reporter": {"name": "压测", "phone": "13900000000"},
        },
        ensure_ascii=False,
    ).encode()


# --- databases and the server --------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, workdir: Path, keep: bool) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    name = f"cityloop_bench_{uuid.uuid4().hex[:10]}"
    admin = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cityloop {' '.join(args)}: {done.stderr.strip()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    env: dict[str, str], log_path: Path, extra: Sequence[str] = ()
) -> Iterator[tuple[int, int]]:
    """``cityloop serve`` in its own process group; yields (port, pid); always SIGKILLed."""
    port = free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--host", HOST, "--port", str(port), *extra],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited {proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /health; see {log_path}")
            try:
                if request(port, "GET", "/health", b"", {})[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def request(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def login(port: int) -> str:
    status, body = request(
        port,
        "POST",
        "/api/v1/auth/token",
        urlencode({"username": USERNAME, "password": PASSWORD}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body[:200]!r}")
    return str(json.loads(body)["access_token"])


def cpu_seconds(pgid: int) -> float:
    """User plus system CPU time so far of the server's process group (workers included)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:  # fields: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def load_average() -> str:
    """The machine's load, printed with the figures: on a shared box it explains outliers."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


# --- load ----------------------------------------------------------------------------------


@dataclass
class Client:
    """One keep-alive connection creating cases; reconnects after a transport error."""

    port: int
    token: str
    run_id: str
    conn: http.client.HTTPConnection | None = None

    def create(self, n: int) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"bench-{self.run_id}-{n}",
        }
        try:
            self.conn.request("POST", "/api/v1/cases", body=case_body(n), headers=headers)
            resp = self.conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@dataclass
class PhaseResult:
    name: str
    seconds: float
    ok: int
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds
    late_starts: int = 0  # open loop: requests sent > 10 ms after their due time
    dropped: int = 0  # open loop: requests never sent because the phase ran far over time
    server_cpu: float = 0.0  # fraction of one core

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        extra = f", {self.late_starts} sent > 10 ms late" if self.late_starts else ""
        extra += f", {self.dropped} never sent (over time)" if self.dropped else ""
        return (
            f"{self.ok} cases in {self.seconds:.1f} s = {self.rate:.1f} cases/s; "
            f"latency p50 {self.pct(0.50):.1f} ms, p99 {self.pct(0.99):.1f} ms, "
            f"max {self.pct(1.0):.1f} ms; {len(self.errors)} errors{extra}; "
            f"server CPU {self.server_cpu * 100:.0f} % of one core, "
            f"{self.cpu_per_case * 1000:.1f} ms per case"
        )

    @property
    def cpu_per_case(self) -> float:
        return self.server_cpu * self.seconds / self.ok if self.ok else float("nan")


def run_threads(
    name: str, clients: int, port: int, pid: int, body: Callable[[PhaseResult, int], None]
) -> PhaseResult:
    result = PhaseResult(name=name, seconds=0.0, ok=0)
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    threads = [threading.Thread(target=body, args=(result, k)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - t0
    result.server_cpu = (cpu_seconds(pid) - cpu0) / result.seconds
    return result


def open_loop(
    port: int, pid: int, token: str, run_id: str, *, rate: float, seconds: float, clients: int
) -> PhaseResult:
    """Request i is due at t0 + i/rate; latency counts from the due time."""
    total = int(rate * seconds)
    slots = itertools.count()
    lock = threading.Lock()
    t0 = time.monotonic() + 0.2
    cutoff = t0 + 2 * seconds + 5  # a server far behind does not keep the benchmark running

    def body(result: PhaseResult, _k: int) -> None:
        client = Client(port, token, run_id)
        try:
            while True:
                i = next(slots)
                if i >= total:
                    return
                due = t0 + i / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                started = time.monotonic()
                if started > cutoff:
                    with lock:
                        result.dropped += 1
                    continue
                try:
                    status = client.create(i)
                except (OSError, http.client.HTTPException) as exc:
                    status, error = 0, repr(exc)
                else:
                    error = f"HTTP {status}"
                done = time.monotonic()
                with lock:
                    if started - due > 0.010:
                        result.late_starts += 1
                    result.latencies.append(done - due)
                    if status == 201:
                        result.ok += 1
                    else:
                        result.errors.append(error)
        finally:
            client.close()

    result = run_threads("sustained", clients, port, pid, body)
    result.seconds -= 0.2  # the lead-in before t0
    return result


def closed_loop(
    port: int, pid: int, token: str, run_id: str, *, seconds: float, clients: int, first: int
) -> PhaseResult:
    numbers = itertools.count(first)
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def body(result: PhaseResult, _k: int) -> None:
        client = Client(port, token, run_id)
        try:
            while time.monotonic() < until:
                started = time.monotonic()
                try:
                    status = client.create(next(numbers))
                except (OSError, http.client.HTTPException) as exc:
                    status, error = 0, repr(exc)
                else:
                    error = f"HTTP {status}"
                done = time.monotonic()
                with lock:
                    result.latencies.append(done - started)
                    if status == 201:
                        result.ok += 1
                    else:
                        result.errors.append(error)
        finally:
            client.close()

    return run_threads("saturation", clients, port, pid, body)


# --- raw inserts ---------------------------------------------------------------------------


def raw_inserts(database_url: str, seconds: float) -> PhaseResult:
    """Copies of an API-made case and its report event, one transaction per case."""
    engine = make_engine(database_url, poolclass=NullPool)
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    fairy = engine.raw_connection()  # the driver connection, with the engine's connect settings
    try:
        dbapi: Any = fairy.driver_connection
        cur = dbapi.cursor()

        def template(table: str, where: str) -> tuple[list[str], list[Any]]:
            cur.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY id LIMIT 1")
            row = cur.fetchone()
            if row is None:
                raise RuntimeError(f"no {table} row to copy: the API phases created nothing")
            cols = [d[0] for d in cur.description]
            values = [Json(v) if not sqlite and isinstance(v, dict | list) else v for v in row]
            return cols, values

        case_cols, case_vals = template("case_file", "1 = 1")
        event_cols, event_vals = template(
            "case_event", f"case_id = {int(case_vals[case_cols.index('id')])}"
        )
        if not sqlite:
            dbapi.commit()  # sqlite3 runs in autocommit mode here (cityloop's connect setting)

        def insert_sql(table: str, cols: list[str]) -> tuple[str, list[str]]:
            kept = [c for c in cols if c != "id"]
            sql = (
                f"INSERT INTO {table} ({', '.join(kept)}) "
                f"VALUES ({', '.join([mark] * len(kept))}) RETURNING id"
            )
            return sql, kept

        case_sql, case_kept = insert_sql("case_file", case_cols)
        event_sql, event_kept = insert_sql("case_event", event_cols)
        base_case = dict(zip(case_cols, case_vals, strict=True))
        base_event = dict(zip(event_cols, event_vals, strict=True))
        run_id = uuid.uuid4().hex[:8]

        result = PhaseResult(name="raw", seconds=0.0, ok=0)
        t0 = time.monotonic()
        until = t0 + seconds
        n = 0
        while time.monotonic() < until:
            n += 1
            started = time.monotonic()
            key = f"raw-{run_id}-{n}"
            case = {**base_case, "code": f"R{run_id}{n:08d}", "idempotency_key": key}
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(case_sql, [case[c] for c in case_kept])
            case_id = cur.fetchone()[0]
            event = {**base_event, "case_id": case_id}
            cur.execute(event_sql, [event[c] for c in event_kept])
            cur.fetchone()
            if sqlite:
                cur.execute("COMMIT")
            else:
                dbapi.commit()
            result.latencies.append(time.monotonic() - started)
            result.ok += 1
        result.seconds = time.monotonic() - t0
        cur.close()
        return result
    finally:
        fairy.close()
        engine.dispose()


def fsync_probe(workdir: Path, count: int = 100) -> float:
    """Median milliseconds of write(8 KiB) + fdatasync (how SQLite and PostgreSQL commit) in the
    work directory: a shared disk's sync latency moves the raw insert rate, and so the ratio."""
    path = workdir / "fsync.probe"
    times: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(count):
            started = time.monotonic()
            os.pwrite(fd, b"\0" * 8192, 0)
            os.fdatasync(fd)
            times.append(time.monotonic() - started)
    finally:
        os.close(fd)
        path.unlink()
    return sorted(times)[count // 2] * 1000


# --- one backend ---------------------------------------------------------------------------


@dataclass
class Verdict:
    backend: str
    passed: bool
    text: str


def bench_backend(backend: str, args: argparse.Namespace) -> list[Verdict]:
    workdir = Path(tempfile.mkdtemp(prefix=f"cityloop-bench-{backend}-", dir=args.workdir))
    try:
        with fresh_database(backend, workdir, args.keep) as url:
            return _bench(backend, url, workdir, args)
    except RuntimeError as exc:
        log = workdir / "server.log"
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no server log)"
        raise RuntimeError(f"{exc}\n--- server log (tail) ---\n{tail}") from exc
    finally:
        if args.keep:
            print(f"[{backend}] kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _bench(backend: str, url: str, workdir: Path, args: argparse.Namespace) -> list[Verdict]:
    env = {**os.environ, "CITYLOOP_DATABASE_URL": url, "CITYLOOP_DATA_DIR": str(workdir / "data")}

    def say(text: str) -> None:
        print(f"[{backend}] {text}", flush=True)

    say(f"preparing {make_url(url).render_as_string(hide_password=True)}; {load_average()}")
    run_cli(env, "init")
    run_cli(env, "dept", "add", "centre", "--name", "监督指挥中心(压测)", "--kind", "centre")
    run_cli(
        env, "user", "add", USERNAME, "--role", "intake_operator", "--department", "centre",
        "--password", PASSWORD,
    )  # fmt: skip
    run_id = uuid.uuid4().hex[:8]
    serve_args = [f"--workers={args.workers}", *args.serve_arg]
    say(f"server: cityloop serve {' '.join(serve_args)}")
    with server(env, workdir / "server.log", serve_args) as (port, pid):
        token = login(port)
        warm = closed_loop(port, pid, token, run_id, seconds=2, clients=4, first=10_000_000)
        if warm.errors:
            raise RuntimeError(f"warm-up failed: {warm.errors[:3]}; see {workdir / 'server.log'}")
        say(f"warm-up: {warm.ok} cases")
        sustained = open_loop(
            port, pid, token, run_id, rate=args.rate, seconds=args.seconds,
            clients=args.open_clients,
        )  # fmt: skip
        say(f"sustained at {args.rate:g}/s: {sustained.line()}")
        saturated = closed_loop(
            port, pid, token, run_id, seconds=args.saturate_seconds, clients=args.clients,
            first=20_000_000,
        )  # fmt: skip
        say(f"saturation, {args.clients} clients: {saturated.line()}")
    say(f"disk: write 8 KiB + fdatasync p50 {fsync_probe(workdir):.2f} ms (every raw commit waits)")
    raw = raw_inserts(url, args.raw_seconds)
    say(
        f"raw inserts, 1 case + 1 event per commit: {raw.ok} in {raw.seconds:.1f} s = "
        f"{raw.rate:.1f} rows/s; commit p50 {raw.pct(0.5):.2f} ms, p99 {raw.pct(0.99):.2f} ms"
    )
    say(load_average())
    ratio = saturated.rate / raw.rate if raw.rate else 0.0
    say(
        f"ratio API/raw: {ratio * 100:.1f} % at saturation "
        f"({sustained.rate / raw.rate * 100 if raw.rate else 0:.1f} % at the sustained rate)"
    )
    for phase in (sustained, saturated):
        if phase.errors:
            raise RuntimeError(f"{phase.name}: {len(phase.errors)} errors, e.g. {phase.errors[:3]}")
    rate_ok = sustained.rate >= args.rate * SUSTAINED_TOLERANCE
    p99_ok = sustained.pct(0.99) < TARGET_P99_MS
    return [
        Verdict(
            backend,
            rate_ok and p99_ok,
            f"{args.rate:g} cases/s sustained at p99 < {TARGET_P99_MS:g} ms: "
            f"{sustained.rate:.1f} cases/s, p99 {sustained.pct(0.99):.1f} ms",
        ),
        Verdict(
            backend,
            ratio >= TARGET_RATIO,
            f"API >= {TARGET_RATIO * 100:g} % of raw inserts: {saturated.rate:.1f} / "
            f"{raw.rate:.1f} = {ratio * 100:.1f} %",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20, help="sustained phase length")
    parser.add_argument("--rate", type=float, default=200, help="sustained target, cases/s")
    parser.add_argument("--open-clients", type=int, default=16, help="connections, sustained")
    parser.add_argument(
        "--clients",
        type=int,
        default=16,
        help="connections, saturation (enough to keep every worker and the group commit busy)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="`cityloop serve --workers N`: as deployed on a 2-core server (README)",
    )
    parser.add_argument("--saturate-seconds", type=float, default=10)
    parser.add_argument("--raw-seconds", type=float, default=10)
    parser.add_argument("--workdir", type=Path, default=None, help="where SQLite files go")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the log")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        help="extra argument for `cityloop serve` (repeat it), e.g. --serve-arg=--workers=2",
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    verdicts: list[Verdict] = []
    for backend in backends:
        try:
            verdicts += bench_backend(backend, args)
        except RuntimeError as exc:
            print(f"[{backend}] ERROR: {exc}", file=sys.stderr)
            return 1
    print()
    for v in verdicts:
        print(f"{'PASS' if v.passed else 'FAIL'} [{v.backend}] {v.text}")
    return 0 if all(v.passed for v in verdicts) else 3


if __name__ == "__main__":
    sys.exit(main())
