"""Helpers for driving the web UI through a TestClient: CSRF tokens and staff log-in."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from tests.world import PASSWORD

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client: TestClient, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``."""
    match = CSRF_RE.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, username: str) -> None:
    """Log in through the form as one of the named world's users (after logging out)."""
    client.cookies.clear()
    resp = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/staff"
