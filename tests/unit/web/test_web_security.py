"""Pure parts of the web layer's security: the rate limiter, the CSP, redirect targets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cityloop.web.render import safe_next
from cityloop.web.security import SlidingWindowLimiter, _key_from_file, content_security_policy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_refuses_the_hit_over_the_limit_and_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(3, 60, clock=clock)
    assert [limiter.hit("1.2.3.4") for _ in range(3)] == [None, None, None]
    clock.now += 10
    assert limiter.hit("1.2.3.4") == 50
    assert limiter.hit("5.6.7.8") is None  # another address has its own window


def test_the_window_slides_rather_than_resetting_at_fixed_times() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(2, 60, clock=clock)
    limiter.hit("a")
    clock.now += 30
    limiter.hit("a")
    clock.now += 31  # the first hit left the window, the second has not
    assert limiter.hit("a") is None
    assert limiter.hit("a") is not None


def test_refused_hits_do_not_extend_the_wait() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(1, 60, clock=clock)
    limiter.hit("a")
    for _ in range(5):
        limiter.hit("a")
    clock.now += 60
    assert limiter.hit("a") is None


def test_the_policy_forbids_inline_scripts_and_framing() -> None:
    csp = content_security_policy("")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp
    assert "img-src 'self' data: blob:;" in csp + ";"


def test_a_tile_server_is_allowed_for_images_only() -> None:
    csp = content_security_policy("https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: https://*.tiles.example.org" in csp
    assert "script-src 'self';" in csp


def test_only_local_paths_are_followed_after_login() -> None:
    assert safe_next("/staff/cases?q=1") == "/staff/cases?q=1"
    for bad in ("//evil.example", "https://evil.example", "/\\evil", "", None):
        assert safe_next(bad) == "/staff"


def test_workers_starting_together_all_read_the_one_generated_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret_key"

    def first_key(_: int) -> str:
        return _key_from_file.__wrapped__(path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(first_key, range(32)))
    assert len(keys) == 1
    (key,) = keys
    assert len(key) >= 48 and path.read_text().strip() == key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary files left
