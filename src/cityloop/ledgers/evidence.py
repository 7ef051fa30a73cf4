"""Evidence files: what type a file really is (by its bytes), and where the bytes are kept.

Evidence is what a sign-off rests on, so the file's type is decided by sniffing its content,
never by the name or the Content-Type the uploader sent: a renamed executable is refused, and
a photo saved as ``.pdf`` is stored as the JPEG it is. Accepted: photos (JPEG, PNG, GIF, WebP),
PDF, and Office Open XML documents (DOCX, XLSX) — what a rectification office attaches.

Files are stored content-addressed (``ab/abcdef….jpg`` under ``data_dir/ledgers/evidence``),
written to a temporary name and renamed, so a crash never leaves half a file under a real name
and the same photo uploaded twice is stored once. A file written by a transaction that then
rolls back stays as an unreferenced blob: harmless, and it is not worth a two-phase commit.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cityloop.config import get_settings
from cityloop.errors import InvalidInput, NotFound

MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
MAX_FILES_PER_ENTRY = 20
FILENAME_MAX = 200


@dataclass(frozen=True, slots=True)
class FileType:
    content_type: str
    extension: str


JPEG = FileType("image/jpeg", "jpg")
PNG = FileType("image/png", "png")
GIF = FileType("image/gif", "gif")
WEBP = FileType("image/webp", "webp")
PDF = FileType("application/pdf", "pdf")
DOCX = FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx")
XLSX = FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")

ACCEPTED = (JPEG, PNG, GIF, WEBP, PDF, DOCX, XLSX)


def sniff(data: bytes) -> FileType | None:
    """The type of ``data`` from its magic bytes (and, for ZIP containers, their parts)."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[:1024].lstrip(b"\r\n\t ").startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _sniff_ooxml(data)
    return None


def _sniff_ooxml(data: bytes) -> FileType | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    return None


def clean_filename(name: str) -> str:
    """A display name safe to store and to send back: no directories, no control characters."""
    base = re.split(r"[\\/]", name.strip())[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    if not base:
        base = "evidence"
    return base[-FILENAME_MAX:]


def check_file(filename: str, data: bytes) -> FileType:
    """The sniffed type of an upload, or ``InvalidInput`` naming the file and what is wrong."""
    shown = clean_filename(filename)
    if not data:
        raise InvalidInput(f"evidence file '{shown}' is empty", field="files")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InvalidInput(
            f"evidence file '{shown}' has {len(data)} bytes; at most "
            f"{MAX_EVIDENCE_BYTES // (1024 * 1024)} MiB are allowed",
            field="files",
        )
    kind = sniff(data)
    if kind is None:
        accepted = ", ".join(t.extension for t in ACCEPTED)
        raise InvalidInput(
            f"evidence file '{shown}' is not a photo, PDF or Office document by its content "
            f"(accepted: {accepted})",
            field="files",
        )
    return kind


class EvidenceStore:
    """Content-addressed files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def default(cls) -> EvidenceStore:
        return cls(get_settings().data_dir / "ledgers" / "evidence")

    def put(self, data: bytes, kind: FileType) -> tuple[str, str]:
        """Store ``data``; returns (storage key, sha256 hex)."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest}.{kind.extension}"
        path = self.root / key
        if path.exists():
            return key, digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key, digest

    def get(self, key: str) -> bytes:
        if not re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{64}\.[a-z]{3,4}", key):
            raise NotFound("no such evidence file", field="evidence")
        path = self.root / key
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound("the evidence file is missing from storage", field="evidence") from None
