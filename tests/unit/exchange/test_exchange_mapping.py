"""The import mapping file: every mistake is one sentence naming the place, before any row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityloop.errors import InvalidInput
from cityloop.exchange.domain import Field
from cityloop.exchange.schemas import ImportMapping
from cityloop.exchange.service import load_mapping, parse_mapping
from cityloop.grid.coords import CoordSystem

GOOD = """
source = "szcg"
coord_system = "GCJ-02"
date_formats = ["%Y-%m-%d %H:%M:%S", "iso"]

[columns]
"案卷号" = "code"
"上报时间" = "reported_at"
"来源" = "channel"
"状态" = "state"
"描述" = "description"
"经度" = "lon"
"纬度" = "lat"

[values.channel]
"12345热线" = "hotline_12345"

[values.state]
"已结案" = "closed"

[defaults]
channel = "inspector"
"""


def write(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_toml_mapping_reads_with_its_defaults(tmp_path: Path) -> None:
    m = load_mapping(write(tmp_path, GOOD))
    assert m.source == "szcg" and m.coord_system is CoordSystem.GCJ02
    assert m.key is Field.CODE  # no external_id: the code is the re-run key
    assert m.columns["上报时间"] is Field.REPORTED_AT
    assert m.values[Field.CHANNEL] == {"12345热线": "hotline_12345"}
    assert (m.encoding, m.header_row, m.timezone) == ("utf-8-sig", 1, "Asia/Shanghai")
    assert m.column_of(Field.LON) == "经度" and m.column_of(Field.ADDRESS) is None


def test_the_same_mapping_as_json(tmp_path: Path) -> None:
    data = {
        "source": "szcg",
        "columns": {"编号": "external_id", "时间": "reported_at", "地址": "address"},
        "defaults": {"channel": "inspector", "state": "closed", "description": "(历史案卷)"},
    }
    m = load_mapping(write(tmp_path, json.dumps(data, ensure_ascii=False), "m.json"))
    assert isinstance(m, ImportMapping) and m.key is Field.EXTERNAL_ID


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (('"描述" = "description"', '"描述" = "remarks"'), "columns.描述"),
        (('"12345热线" = "hotline_12345"', '"12345热线" = "hotline_1234"'), "is not a channel"),
        (('"已结案" = "closed"', '"已结案" = "finished"'), "is not a state"),
        (('"上报时间" = "reported_at"', ""), "reported_at"),
        (('"纬度" = "lat"', ""), "both lon and lat"),
        (('"案卷号" = "code"', ""), "map code or external_id"),
        (('source = "szcg"', 'source = "my source"'), "source"),
        (('source = "szcg"', 'source = "s"\nencoding = "klingon"'), "unknown encoding"),
        (('source = "szcg"', 'source = "s"\nsheets = "x"'), "sheets"),
        (('coord_system = "GCJ-02"', 'coord_system = "mercator"'), "coord_system"),
        (('"描述" = "description"', '"描述" = "code"'), "both map to code"),
        (('channel = "inspector"', 'reported_at = "2019-01-01"'), "a default makes no sense"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, change: tuple[str, str], needle: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(InvalidInput) as err:
        load_mapping(write(tmp_path, GOOD.replace(old, new, 1)))
    assert needle in err.value.message
    assert err.value.message.startswith("m.toml: ")


def test_unreadable_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not valid"):
        load_mapping(write(tmp_path, "source = \n"))
    with pytest.raises(InvalidInput, match="not valid"):
        load_mapping(write(tmp_path, "{", "m.json"))
    with pytest.raises(InvalidInput, match="must hold a table"):
        load_mapping(write(tmp_path, "[1, 2]", "m.json"))
    with pytest.raises(FileNotFoundError):
        load_mapping(tmp_path / "missing.toml")


def test_an_empty_mapping_names_the_first_missing_field() -> None:
    with pytest.raises(InvalidInput, match="source"):
        parse_mapping({})
