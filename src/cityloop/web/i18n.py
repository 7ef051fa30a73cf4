"""Languages: Simplified Chinese by default, English on request, every UI string from a catalog.

Source strings (msgids) are English. ``translations/zh/LC_MESSAGES/messages.po`` holds the
Chinese; it is read with Babel and compiled in memory at start, so no ``.mo`` file needs to be
built or shipped. English needs no catalog: gettext returns the msgid.

The language comes from ``?lang=`` (which also sets the cookie), else the cookie, else Chinese.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

LANGS: Final = ("zh", "en")
DEFAULT_LANG: Final = "zh"
LANG_COOKIE: Final = "cityloop_lang"
HTML_LANG: Final = {"zh": "zh-CN", "en": "en"}
LANG_NAMES: Final = {"zh": "中文", "en": "English"}
TRANSLATIONS_DIR: Final = Path(__file__).parent / "translations"
DOMAIN: Final = "messages"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here."""
    return message


def po_path(lang: str) -> Path:
    return TRANSLATIONS_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (English: the identity)."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}")
    path = po_path(lang)
    if lang == "en" or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@dataclass(frozen=True)
class Translator:
    """The per-request translation functions (Python side; templates use ``_``)."""

    lang: str

    @property
    def _t(self) -> gettext.NullTranslations:
        return translations(self.lang)

    def gettext(self, message: str) -> str:
        return self._t.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._t.pgettext(context, message)


def negotiate(request: Request) -> str:
    """The language of this request: ``?lang=``, then the cookie, then Chinese."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGS:
            return value
    return DEFAULT_LANG


def requested_lang(request: Request) -> str | None:
    """A valid ``?lang=`` in this request: the response then stores it in the cookie."""
    value = request.query_params.get("lang")
    return value if value in LANGS else None
