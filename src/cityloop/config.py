"""Process-wide settings, read from the environment (prefix ``CITYLOOP_``).

Only deployment facts live here (where the database is, where files go). City rules that staff
change (working schedule, time-limit unit mapping, KPI weights) live in the database or in
per-capability configuration so they can be edited without a restart.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/cityloop.db",
        description=(
            "SQLAlchemy URL: an SQLite file by default, postgresql+psycopg://... in production."
        ),
    )
    data_dir: Path = Field(default=Path("./var"), description="Attachments, exports, caches.")
    timezone: str = "Asia/Shanghai"
    secret_key: str = Field(
        default="",
        description="Signs session cookies and CSRF tokens. Generated into data_dir when empty.",
    )
    host: str = "127.0.0.1"
    port: int = 8000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
