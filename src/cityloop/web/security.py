"""Browser security: the signing key, CSRF tokens, rate limits and response headers.

CSRF: every browser gets a random value in the HttpOnly cookie ``cityloop_csrf``; forms carry
that value signed with the server's key (itsdangerous, time-limited). A POST is accepted only
when the signature is valid and the signed value equals the cookie. A cross-site page can
neither read the cookie nor produce a signature, so it cannot forge the pair; the session
cookie's SameSite=Lax is a second fence, not the only one.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Annotated, Final

from fastapi import Depends, Form, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityloop.config import get_settings
from cityloop.errors import CityloopError
from cityloop.web.settings import get_web_settings

CSRF_COOKIE: Final = "cityloop_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_MAX_AGE: Final = 12 * 3600  # as long as a session; a form left open overnight is refused
_CSRF_SALT: Final = "cityloop.web.csrf"


class CsrfRefused(CityloopError):
    """The form's CSRF token is missing, expired or does not match this browser."""

    status_code = 403


class RateLimited(CityloopError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- the key -------------------------------------------------------------------------------


@cache
def _key_from_file(path: Path) -> str:
    """Read the generated key, creating it (0600) on first use.

    Several server workers start at once: the key is written to a private temporary file and
    hard-linked into place, so the file appears complete or not at all, and every worker reads
    the one key that won.
    """
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(48))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another worker's key won
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()


def secret_key() -> str:
    """``CITYLOOP_SECRET_KEY``, or a key generated once into the data directory."""
    settings = get_settings()
    if settings.secret_key:
        return settings.secret_key
    return _key_from_file((settings.data_dir / "secret_key").resolve())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(), salt=_CSRF_SALT)


# --- CSRF ----------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The token to put in this request's forms; creates the browser's value if it has none.

    A new value is left on ``request.state.csrf_new`` for ``set_csrf_cookie`` to send.
    """
    raw = getattr(request.state, "csrf_new", None) or request.cookies.get(CSRF_COOKIE)
    if not raw:
        raw = secrets.token_urlsafe(32)
        request.state.csrf_new = raw
    return str(_serializer().dumps(raw))


def rotate_csrf(request: Request) -> None:
    """Give the browser a fresh value (at login and logout)."""
    request.state.csrf_new = secrets.token_urlsafe(32)


def set_csrf_cookie(request: Request, response: Response) -> None:
    raw = getattr(request.state, "csrf_new", None)
    if raw:
        set_cookie(response, CSRF_COOKIE, raw, max_age=None)


def check_csrf(request: Request, token: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not token or not cookie:
        raise CsrfRefused("the form has no security token; reload the page and try again")
    try:
        signed = _serializer().loads(token, max_age=CSRF_MAX_AGE)
    except BadSignature:
        raise CsrfRefused("the form's security token is invalid or expired") from None
    if not isinstance(signed, str) or not hmac.compare_digest(signed, cookie):
        raise CsrfRefused("the form's security token belongs to another browser session")


def verify_csrf(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> None:
    """Dependency for every POST handler that a browser form calls."""
    check_csrf(request, csrf_token)


CsrfChecked = Annotated[None, Depends(verify_csrf)]


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=get_web_settings().cookie_secure,
    )


# --- rate limits ---------------------------------------------------------------------------


class SlidingWindowLimiter:
    """At most ``limit`` hits per ``window`` seconds per key, counted over a sliding window.

    In-process: behind several workers each counts its own share (documented in docs/web.md).
    """

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one hit; None when allowed, else the seconds to wait before the next one."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, int(hits[0] + self.window - now + 0.999))
            hits.append(now)
            if len(self._hits) > 10_000:
                self._sweep(now)
            return None

    def _sweep(self, now: float) -> None:
        # Drop keys whose every hit has left the window, so one-off visitors do not pile up.
        stale = [k for k, q in self._hits.items() if not q or q[-1] <= now - self.window]
        for key in stale:
            del self._hits[key]

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


def client_ip(request: Request) -> str:
    """The peer address. Behind a reverse proxy, run uvicorn with --proxy-headers so this is
    the citizen's address rather than the proxy's."""
    return request.client.host if request.client else "unknown"


# --- response headers ----------------------------------------------------------------------


def content_security_policy(tile_url: str) -> str:
    img = ["'self'", "data:", "blob:"]
    if tile_url:
        # Allow only the tile server's origin, with its {s} subdomains.
        from urllib.parse import urlsplit

        parts = urlsplit(tile_url.replace("{s}", "*"))
        if parts.scheme and parts.netloc:
            img.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(img)}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


# The API's /docs page is Swagger UI served from our own static files; its start-up script is
# inline, so that page alone allows inline script, and still nothing from another origin.
_CSP_EXEMPT: Final = ("/docs",)
_DOCS_CSP: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """Adds the browser-hardening headers to every response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.csp = content_security_policy(get_web_settings().tile_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        exempt = path.startswith(_CSP_EXEMPT)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"permissions-policy", b"geolocation=(self), camera=(self), microphone=()"),
                ]
                extra += [
                    (b"content-security-policy", (_DOCS_CSP if exempt else self.csp).encode()),
                    (b"x-frame-options", b"DENY"),
                ]
                headers += [(k, v) for k, v in extra if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
