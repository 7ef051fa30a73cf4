"""Benchmark: 1,000,000 deadlines with the working-calendar engine against a minute walk.

Builds N (start, limit) pairs: starts on whole minutes spread uniformly over 2025-2026 (Shanghai
time), limits drawn from a mix of urgent hours, working minutes/hours/days and calendar days.
Times

- the scalar path, ``WorkingCalendar.deadline`` called once per pair (datetimes in and out),
- the batch path, ``WorkingCalendar.deadlines_batch`` over numpy arrays,
- the obvious baseline: step one minute at a time from the start and count the minutes that
  count (working minutes of working days, or every minute on continuous clocks), on a sample.

Checks the scalar and batch results are identical on all N pairs and equal to the baseline on
the sample. Exit status 1 when any result differs, 3 when a target is missed (>= 200,000
deadlines/s and >= 100x the baseline, for both paths).

Starts run to 31 December 2026 and a 15-working-day limit then ends in 2027, which the bundled
chinesecalendar may not know yet: the benchmark's calendar declares 2027 a locally covered year
(Monday-Friday, no holidays), and the baseline uses the same rule, so both agree whatever the
package version.

    python bench/deadlines.py [--n 1000000] [--sample 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from functools import cache
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np

from cityloop.workcal.domain import (
    Clock,
    LimitArrays,
    TimeLimit,
    WorkingCalendar,
    parse_time_limit,
)

TARGET_RATE = 200_000.0
TARGET_RATIO = 100.0
LOCAL_YEARS = frozenset({2027})
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIODS = ((dt.time(8, 0), dt.time(12, 0)), (dt.time(14, 0), dt.time(18, 0)))
FIRST = dt.datetime(2025, 1, 1, tzinfo=SHANGHAI)
LAST = dt.datetime(2027, 1, 1, tzinfo=SHANGHAI)

# The mix, with weights: what a city's filing standard and step limits look like.
MIX: list[tuple[str, float]] = [
    ("30紧急分钟", 0.05),
    ("1紧急工作时", 0.10),
    ("2紧急工作时", 0.10),
    ("4紧急工作时", 0.05),
    ("30分钟", 0.05),
    ("2工作时", 0.15),
    ("4工作时", 0.10),
    ("8工作时", 0.05),
    ("1工作日", 0.10),
    ("3工作日", 0.08),
    ("5工作日", 0.05),
    ("15工作日", 0.04),
    ("3自然日", 0.05),
    ("7自然日", 0.03),
]


# --- the baseline: a straightforward minute-by-minute walk ------------------------------------


@cache
def baseline_is_workday(day: dt.date) -> bool:
    """chinesecalendar, or Monday-Friday for the benchmark's locally covered year."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year in LOCAL_YEARS:
            return day.weekday() < 5
        raise


def baseline_deadline(start: dt.datetime, limit: TimeLimit) -> dt.datetime:
    """Step one minute at a time in Shanghai wall time (no daylight saving) and count."""
    one_minute = dt.timedelta(minutes=1)
    if limit.clock is Clock.WORKING:
        per_unit = {"minute": 1, "hour": 60, "day": 480}[limit.unit.value]
    else:
        per_unit = {"minute": 1, "hour": 60, "day": 1440}[limit.unit.value]
    needed = limit.amount * per_unit
    t = start.astimezone(SHANGHAI).replace(tzinfo=None)
    counted = 0
    while counted < needed:
        if limit.clock is not Clock.WORKING or (
            baseline_is_workday(t.date()) and any(a <= t.time() < b for a, b in PERIODS)
        ):
            counted += 1
        t += one_minute
    return t.replace(tzinfo=SHANGHAI)


# --- the run ---------------------------------------------------------------------------------


def make_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[TimeLimit]]:
    rng = np.random.default_rng(seed)
    first_minute = int(FIRST.timestamp()) // 60
    last_minute = int(LAST.timestamp()) // 60
    starts = rng.integers(first_minute, last_minute, n).astype(np.float64) * 60.0
    weights = np.array([w for _, w in MIX])
    index = rng.choice(len(MIX), size=n, p=weights / weights.sum())
    distinct = [parse_time_limit(text) for text, _ in MIX]
    return starts, index, distinct


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="pairs for the fast paths")
    parser.add_argument("--sample", type=int, default=2000, help="pairs for the baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    calendar = WorkingCalendar(covered_years=LOCAL_YEARS)
    starts, index, distinct = make_pairs(args.n, args.seed)
    limit_arrays = LimitArrays.take(distinct, index)
    print(
        f"pairs: {args.n:,} starts {FIRST:%Y-%m-%d}..{LAST - dt.timedelta(days=1):%Y-%m-%d} "
        f"Asia/Shanghai, {len(distinct)} limit kinds; baseline sample {args.sample:,}"
    )

    # Warm the lazily built per-year tables so both paths are timed on the arithmetic.
    calendar.deadlines_batch(starts[:1000], LimitArrays.take(distinct, index[:1000]))

    # Scalar: one call per pair, aware datetimes in and out, as service code calls it.
    start_datetimes = [dt.datetime.fromtimestamp(s, dt.UTC) for s in starts.tolist()]
    limits = [distinct[i] for i in index.tolist()]
    deadline = calendar.deadline
    t0 = time.perf_counter()
    scalar = [deadline(s, lim) for s, lim in zip(start_datetimes, limits, strict=True)]
    scalar_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    batch = calendar.deadlines_batch(starts, limit_arrays)
    batch_seconds = time.perf_counter() - t0

    sample = min(args.sample, args.n)
    t0 = time.perf_counter()
    expected = [baseline_deadline(start_datetimes[i], limits[i]) for i in range(sample)]
    baseline_seconds = time.perf_counter() - t0

    scalar_rate = rate(args.n, scalar_seconds)
    batch_rate = rate(args.n, batch_seconds)
    baseline_rate = rate(sample, baseline_seconds)
    print(f"scalar   deadline():        {scalar_rate:>14,.0f} deadlines/s ({scalar_seconds:.2f} s)")
    print(f"batch    deadlines_batch(): {batch_rate:>14,.0f} deadlines/s ({batch_seconds:.3f} s)")
    print(
        f"baseline minute walk:       {baseline_rate:>14,.0f} deadlines/s "
        f"({baseline_seconds:.2f} s for {sample:,}, {1e3 * baseline_seconds / sample:.2f} ms each)"
    )
    print(f"scalar / baseline: {scalar_rate / baseline_rate:,.0f}x")
    print(f"batch  / baseline: {batch_rate / baseline_rate:,.0f}x")

    failures = 0
    scalar_epoch = np.array([d.timestamp() for d in scalar])
    differ = int((scalar_epoch != batch).sum())
    print(
        f"check: scalar == batch on all {args.n:,} pairs: {f'{differ} differ' if differ else 'OK'}"
    )
    failures += differ
    wrong = [
        i for i in range(sample) if scalar[i] != expected[i] or batch[i] != expected[i].timestamp()
    ]
    verdict = f"{len(wrong)} differ" if wrong else "OK"
    print(f"check: fast == baseline on {sample:,} sampled pairs: {verdict}")
    for i in wrong[:5]:
        print(
            f"  start {start_datetimes[i].astimezone(SHANGHAI):%Y-%m-%d %H:%M} "
            f"{limits[i].text}: fast {scalar[i].astimezone(SHANGHAI):%Y-%m-%d %H:%M} "
            f"baseline {expected[i]:%Y-%m-%d %H:%M}"
        )
    failures += len(wrong)
    if failures:
        print("FAIL: results differ")
        return 1

    missed = [
        name
        for name, value, target in [
            ("scalar rate", scalar_rate, TARGET_RATE),
            ("batch rate", batch_rate, TARGET_RATE),
            ("scalar ratio", scalar_rate / baseline_rate, TARGET_RATIO),
            ("batch ratio", batch_rate / baseline_rate, TARGET_RATIO),
        ]
        if value < target
    ]
    if missed:
        print(f"FAIL: targets missed: {', '.join(missed)}")
        return 3
    print(f"OK: targets met (>= {TARGET_RATE:,.0f}/s and >= {TARGET_RATIO:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
