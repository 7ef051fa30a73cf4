"""Photos attached to cases: validated by content, normalised, stored by hash.

The type is sniffed from the bytes (Pillow), never trusted from the file name or the
Content-Type header. The image is re-encoded with its EXIF orientation applied, which also
drops the EXIF block, GPS position included: a citizen's photo must not leak where they live.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseAttachment
from cityloop.cases.schemas import AttachmentPublic
from cityloop.cases.settings import SETTINGS_KEY, CaseSettings
from cityloop.cityconfig.service import load as load_setting
from cityloop.config import get_settings
from cityloop.db.base import utcnow
from cityloop.db.uow import UnitOfWork
from cityloop.errors import InvalidInput, NotFound, PermissionDenied
from cityloop.org.domain import Actor

ALLOWED_FORMATS = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
MAX_PIXELS = 40_000_000  # a 40-megapixel phone photo; beyond that it is a decompression bomb
STAGES = frozenset({"report", "verify", "feedback", "check", "other"})


def attachments_dir() -> Path:
    return get_settings().data_dir / "attachments"


def normalise_image(content: bytes, *, max_bytes: int) -> tuple[bytes, str, str, int, int]:
    """Validate and normalise an upload. Returns (bytes, content type, extension, w, h)."""
    if not content:
        raise InvalidInput("the file is empty", field="file")
    if len(content) > max_bytes:
        raise InvalidInput(
            f"the file has {len(content)} bytes; at most {max_bytes} are allowed", field="file"
        )
    try:
        with Image.open(io.BytesIO(content)) as probe:
            fmt = probe.format or ""
            if fmt not in ALLOWED_FORMATS:
                raise InvalidInput(
                    f"a {fmt or 'unknown'} file is not accepted: send a JPEG, PNG or WebP photo",
                    field="file",
                )
            if probe.width * probe.height > MAX_PIXELS:
                raise InvalidInput("the image has too many pixels", field="file")
            probe.verify()
        with Image.open(io.BytesIO(content)) as image:
            upright = ImageOps.exif_transpose(image)
            assert upright is not None
            out = io.BytesIO()
            if fmt == "JPEG":
                upright.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
            else:
                upright.save(out, fmt)
            width, height = upright.size
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise InvalidInput(
            "the file is not a readable image: send a JPEG, PNG or WebP photo", field="file"
        ) from None
    content_type, ext = ALLOWED_FORMATS[fmt]
    return out.getvalue(), content_type, ext, width, height


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return  # same hash, same bytes
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stored_path(att: CaseAttachment) -> Path:
    ext = {v[0]: v[1] for v in ALLOWED_FORMATS.values()}.get(att.content_type, ".bin")
    return attachments_dir() / att.sha256[:2] / f"{att.sha256}{ext}"


def add_upload(
    session: Session,
    actor: Actor | None,
    *,
    filename: str,
    content: bytes,
    stage: str,
    case_id: int | None = None,
) -> CaseAttachment:
    """Validate, store and record one upload inside the caller's transaction."""
    if stage not in STAGES:
        raise InvalidInput(
            f"unknown stage '{stage}' (use {', '.join(sorted(STAGES))})", field="stage"
        )
    settings = load_setting(session, SETTINGS_KEY, CaseSettings)
    data, content_type, _ext, width, height = normalise_image(
        content, max_bytes=settings.max_attachment_bytes
    )
    digest = hashlib.sha256(data).hexdigest()
    att = CaseAttachment(
        case_id=case_id,
        stage=stage,
        filename=(Path(filename).name or "photo")[:255],
        content_type=content_type,
        size=len(data),
        sha256=digest,
        width=width,
        height=height,
        uploaded_by=actor.user_id if actor else None,
        created_at=utcnow(),
    )
    # The file is written before the row commits: a crash leaves at worst an orphan file,
    # never a row pointing at nothing.
    _write_atomically(stored_path(att), data)
    session.add(att)
    session.flush()
    return att


def upload(
    uow: UnitOfWork, actor: Actor, *, filename: str, content: bytes, stage: str = "other"
) -> AttachmentPublic:
    """A staff upload, claimed later by an action's ``attachment_ids``."""
    with uow:
        att = add_upload(uow.session, actor, filename=filename, content=content, stage=stage)
        result = AttachmentPublic.model_validate(att)
        uow.commit()
        return result


def open_attachment(
    uow: UnitOfWork, actor: Actor, attachment_id: int
) -> tuple[AttachmentPublic, Path]:
    """The file of an attachment, for users allowed to see its case (or its uploader)."""
    from cityloop.cases.service import can_see

    with uow.read():
        session = uow.session
        att = session.get(CaseAttachment, attachment_id)
        if att is None:
            raise NotFound(f"no attachment {attachment_id}", field="attachment_id")
        if att.case_id is None:
            if att.uploaded_by != actor.user_id:
                raise PermissionDenied("this upload belongs to someone else")
        else:
            case = session.get(Case, att.case_id)
            assert case is not None
            if not can_see(actor, case):
                raise PermissionDenied(f"case {case.code} is outside your scope")
        return AttachmentPublic.model_validate(att), stored_path(att)
