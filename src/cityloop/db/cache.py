"""Short-lived per-database caches for hot read paths (settings, calendar, token lookups).

Each ``Database`` gives its sessions an ``info["cityloop_cache"]`` dict; entries carry an
expiry and the process-wide generation of the thing they cache. A change in this process bumps
the generation and so invalidates at once; a change made by another process (a CLI command, a
second server worker) is seen when the entry expires, a few seconds later.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

CACHE_KEY = "cityloop_cache"
_generations: defaultdict[str, int] = defaultdict(int)


def bump(topic: str) -> None:
    """Invalidate every cached value of ``topic`` in this process."""
    _generations[topic] += 1


def get(session: Session, topic: str, key: object = None) -> Any | None:
    return peek(session.info, topic, key)


def peek(info: dict[str, Any], topic: str, key: object = None) -> Any | None:
    """``get`` without a session: ``info`` is a ``Database``'s shared ``info`` dict."""
    cache = info.get(CACHE_KEY)
    if cache is None:
        return None
    hit = cache.get((topic, key))
    if hit is None:
        return None
    expires, generation, value = hit
    if expires < time.monotonic() or generation != _generations[topic]:
        cache.pop((topic, key), None)
        return None
    return value


def put(session: Session, topic: str, value: Any, *, ttl: float, key: object = None) -> None:
    cache = session.info.get(CACHE_KEY)
    if cache is None:
        return
    if len(cache) > 10_000:  # tokens of a busy day; never grow without bound
        cache.clear()
    cache[(topic, key)] = (time.monotonic() + ttl, _generations[topic], value)
