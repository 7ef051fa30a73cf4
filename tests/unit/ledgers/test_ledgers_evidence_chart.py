"""Evidence files (type by content, size, storage) and the progress chart (SVG)."""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cityloop.errors import InvalidInput, NotFound
from cityloop.ledgers.chart import progress_svg
from cityloop.ledgers.domain import TimelinePoint
from cityloop.ledgers.evidence import (
    DOCX,
    JPEG,
    MAX_EVIDENCE_BYTES,
    PDF,
    PNG,
    XLSX,
    EvidenceStore,
    check_file,
    clean_filename,
    sniff,
)


def image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, format=fmt)
    return out.getvalue()


def ooxml(main_part: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(main_part, "<x/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("PNG"), "image/png"),
        (image_bytes("GIF"), "image/gif"),
        (image_bytes("WEBP"), "image/webp"),
        (b"%PDF-1.7\n...", "application/pdf"),
        (ooxml("word/document.xml"), DOCX.content_type),
        (ooxml("xl/workbook.xml"), XLSX.content_type),
    ],
)
def test_accepted_types_are_recognised_by_their_bytes(data: bytes, expected: str) -> None:
    kind = sniff(data)
    assert kind is not None and kind.content_type == expected


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00 an exe renamed to photo.jpg",
        b"<html><script>alert(1)</script></html>",
        ooxml("something/else.xml"),
        b"PK\x03\x04 not really a zip",
        b"plain text",
    ],
)
def test_anything_else_is_refused_whatever_its_name(data: bytes) -> None:
    assert sniff(data) is None
    with pytest.raises(InvalidInput, match=r"photo\.jpg"):
        check_file("photo.jpg", data)


def test_a_photo_named_pdf_is_stored_as_the_jpeg_it_is() -> None:
    assert check_file("整改照片.pdf", image_bytes("JPEG")) is JPEG


def test_empty_and_oversized_files_are_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        check_file("a.png", b"")
    with pytest.raises(InvalidInput, match="MiB"):
        check_file("a.pdf", b"%PDF-" + b"0" * MAX_EVIDENCE_BYTES)


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\现场照片.jpg", "现场照片.jpg"),
        ("a\x00b\nc.png", "abc.png"),
        ("...", "evidence"),
    ],
)
def test_filenames_lose_directories_and_control_characters(name: str, clean: str) -> None:
    assert clean_filename(name) == clean


def test_the_store_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    data = image_bytes("PNG")
    key, digest = store.put(data, PNG)
    assert key == f"{digest[:2]}/{digest}.png"
    assert store.put(data, PNG) == (key, digest)
    assert store.get(key) == data
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{digest}.png"]
    store.put(b"%PDF-1.4", PDF)
    assert not list(tmp_path.rglob(".upload-*"))


def test_the_store_refuses_keys_that_are_not_its_own(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    with pytest.raises(NotFound):
        store.get("../../secret")
    with pytest.raises(NotFound):
        store.get("ab/" + "a" * 64 + ".png")


def points() -> list[TimelinePoint]:
    return [
        TimelinePoint(dt.date(2023, 3, 1), 0, 0),
        TimelinePoint(dt.date(2023, 3, 10), 40, 10),
        TimelinePoint(dt.date(2023, 4, 20), 91, 28),
        TimelinePoint(dt.date(2023, 5, 21), 89, 27),
    ]


def test_the_chart_is_valid_self_contained_svg() -> None:
    svg = progress_svg(points(), title="海淀 <整改> 进度", total_items=100, total_groups=37)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "href" not in svg and "<script" not in svg
    assert "海淀 &lt;整改&gt; 进度" in svg
    assert "89 / 100" in svg and "27 / 37" in svg
    assert "3月1日" in svg and "5月21日" in svg
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert len(paths) == 2


def test_the_chart_is_deterministic_and_handles_no_data() -> None:
    kwargs = {"title": "t", "total_items": 100, "total_groups": 37}
    assert progress_svg(points(), **kwargs) == progress_svg(points(), **kwargs)  # type: ignore[arg-type]
    empty = progress_svg([], title="t", total_items=0, total_groups=0)
    ET.fromstring(empty)
    assert "尚无销号记录" in empty
    single = progress_svg(points()[:1], title="t", total_items=3, total_groups=1)
    ET.fromstring(single)
