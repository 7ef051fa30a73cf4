"""Settings of the web pages, read from the environment (prefix ``CITYLOOP_``).

Deployment facts only (map tiles, cookie flags, rate limits). City rules stay in the database.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYLOOP_", extra="ignore")

    district_adcode: str = Field(
        default="110108",
        pattern=r"^\d{6}$",
        description="The district whose outline the maps draw (Haidian by default).",
    )
    tile_url: str = Field(
        default="",
        description=(
            "Optional base-map tile URL template, e.g. https://tiles.example/{z}/{x}/{y}.png. "
            "Empty: the maps draw outline, cells and cases on a plain background. The tiles "
            "must be in WGS-84 / CGCS2000 (OSM, 天地图 'c' tiles), not GCJ-02 or BD-09."
        ),
    )
    tile_attribution: str = ""
    tile_max_zoom: int = Field(default=18, ge=1, le=22)
    cookie_secure: bool = Field(
        default=False,
        description="Mark the session and CSRF cookies Secure (set it behind HTTPS).",
    )
    report_rate_limit: int = Field(
        default=5, ge=1, description="Public reports one IP may send per window."
    )
    report_rate_window_seconds: int = Field(default=600, ge=1)
    login_rate_limit: int = Field(
        default=10, ge=1, description="Login attempts one IP may make per window."
    )
    login_rate_window_seconds: int = Field(default=300, ge=1)
    public_map_days: int = Field(default=30, ge=1, le=366)
    public_map_limit: int = Field(default=1000, ge=1, le=20000)
    max_photos: int = Field(default=3, ge=1, le=3)


@lru_cache(maxsize=1)
def get_web_settings() -> WebSettings:
    return WebSettings()
