"""Fixtures of the web tests that drive the app in-process (TestClient)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cityloop.config import get_settings
from cityloop.db.engine import Database
from cityloop.web.app import create_app
from cityloop.web.settings import get_web_settings
from cityloop.web.site import install_site


@pytest.fixture
def web_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder of this test's own and a fresh secret key; settings re-read."""
    path = tmp_path / "data"
    monkeypatch.setenv("CITYLOOP_DATA_DIR", str(path))
    monkeypatch.delenv("CITYLOOP_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    get_web_settings.cache_clear()
    yield path
    get_settings.cache_clear()
    get_web_settings.cache_clear()


@pytest.fixture
def web_client(db: Database, web_env: Path) -> TestClient:
    """The whole site (pages and API) over this test's database."""
    return TestClient(install_site(create_app(db)))
