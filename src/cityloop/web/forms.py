"""Form reading shared by the public and the staff report pages: class, place, photos."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fastapi import UploadFile

from cityloop.cases.attachments import normalise_image
from cityloop.cases.settings import SETTINGS_KEY, CaseSettings
from cityloop.catalog import service as catalog
from cityloop.catalog.schemas import MinorClassPublic
from cityloop.cityconfig.service import get as get_setting
from cityloop.db.uow import UnitOfWork
from cityloop.errors import InvalidInput
from cityloop.web.i18n import Translator

MAX_UPLOAD = 20 * 1024 * 1024  # read at most this much of one file part
ICONS_DIR = Path(__file__).parent / "static" / "icons"


class FormProblem(Exception):
    """A field the user must correct; ``message`` is already translated."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class ClassGroup:
    family: str
    major_code: str
    major_name: str
    icon: str
    minors: list[MinorClassPublic] = field(default_factory=list)


@cache
def _icons() -> frozenset[str]:
    return frozenset(p.name for p in ICONS_DIR.glob("*.svg"))


def icon_for(family: str, major_code: str) -> str:
    name = f"{family}-{major_code}.svg"
    return f"icons/{name}" if name in _icons() else f"icons/{family}-generic.svg"


def class_groups(uow: UnitOfWork) -> list[ClassGroup]:
    """Active minor classes grouped by major class, components first, in catalog order."""
    groups: dict[tuple[str, str], ClassGroup] = {}
    for minor in catalog.list_classes(uow):
        key = (minor.family.value, minor.major_code)
        if key not in groups:
            groups[key] = ClassGroup(
                family=minor.family.value,
                major_code=minor.major_code,
                major_name=minor.major_name,
                icon=icon_for(minor.family.value, minor.major_code),
            )
        groups[key].minors.append(minor)
    return list(groups.values())


def parse_class(value: str, t: Translator) -> tuple[str | None, str | None]:
    """ "component:0101" -> (family, minor code); empty -> (None, None): not sure."""
    value = value.strip()
    if not value:
        return None, None
    family, _, code = value.partition(":")
    if family not in ("component", "event") or not (len(code) == 4 and code.isdigit()):
        raise FormProblem("class", t.gettext("Choose a class from the list."))
    return family, code


def parse_point(lon: str, lat: str, t: Translator) -> tuple[float, float] | None:
    lon, lat = lon.strip(), lat.strip()
    if not lon and not lat:
        return None
    try:
        x, y = float(lon), float(lat)
    except ValueError:
        raise FormProblem("location", t.gettext("The map position is not valid.")) from None
    if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
        raise FormProblem("location", t.gettext("The map position is not valid."))
    return x, y


def read_photos(
    uow: UnitOfWork, files: list[UploadFile], *, max_photos: int, t: Translator
) -> list[tuple[str, bytes]]:
    """The non-empty photo parts, each checked as an image before anything is stored."""
    chosen = [f for f in files if f.filename]
    photos: list[tuple[str, bytes]] = []
    for upload in chosen:
        content = upload.file.read(MAX_UPLOAD + 1)
        if content:
            photos.append((upload.filename or "photo", content))
    if len(photos) > max_photos:
        raise FormProblem(
            "photos", t.gettext("At most %(count)d photos, please.") % {"count": max_photos}
        )
    if photos:
        limit = get_setting(uow, SETTINGS_KEY, CaseSettings).max_attachment_bytes
        for _name, content in photos:
            if len(content) > min(limit, MAX_UPLOAD):
                raise FormProblem(
                    "photos",
                    t.gettext("A photo is larger than %(mb)d MB.")
                    % {"mb": max(1, min(limit, MAX_UPLOAD) // (1024 * 1024))},
                )
            try:
                normalise_image(content, max_bytes=limit)
            except InvalidInput:
                raise FormProblem(
                    "photos",
                    t.gettext("A file is not a readable photo: send JPEG, PNG or WebP images."),
                ) from None
    return photos


def new_idempotency_key() -> str:
    return f"web-{uuid.uuid4().hex}"


def checked_idempotency_key(value: str) -> str | None:
    value = value.strip()
    if (
        value.startswith("web-")
        and len(value) == 36
        and all(c in "0123456789abcdef" for c in value[4:])
    ):
        return value
    return None
