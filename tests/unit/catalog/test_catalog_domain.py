"""Pure catalog rules (codes, families, unit mapping) and the built-in defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cityloop.catalog.defaults import default_catalog
from cityloop.catalog.domain import (
    Family,
    clean_name,
    is_extension_code,
    limit_from_columns,
    parse_family,
    parse_unit_map,
    read_code,
)
from cityloop.catalog.workbook import read_workbook, write_workbook
from cityloop.errors import InvalidInput
from cityloop.workcal.domain import DEFAULT_UNIT_MAP, Clock, TimeLimit, Unit, UnitMeaning


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1, "01"),
        ("1", "01"),
        (" 03 ", "03"),
        (99, "99"),
        (1.0, "01"),
        (101, "0101"),
        ("0101", "0101"),
    ],
)
def test_codes_are_read_as_digits(value: object, code: str) -> None:
    assert read_code(value) == code


@pytest.mark.parametrize("value", ["A1", "1.5", 1.5, -1, True, "", "12345"])
def test_codes_that_are_not_whole_numbers_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        read_code(value)


def test_extensions_count_down_from_99() -> None:
    assert is_extension_code("99") and is_extension_code("0170")
    assert not is_extension_code("0169") and not is_extension_code("57")
    assert is_extension_code("0180", floor=80) and not is_extension_code("0179", floor=80)


def test_families_by_any_spelling() -> None:
    assert parse_family("部件") is Family.COMPONENT
    assert parse_family("Components") is Family.COMPONENT
    assert parse_family(" event ") is Family.EVENT
    assert parse_family("事件类") is Family.EVENT
    with pytest.raises(InvalidInput, match="component"):
        parse_family("things")


def test_names_lose_cell_line_breaks() -> None:
    assert clean_name("烟头收集器\n或灭烟处") == "烟头收集器或灭烟处"
    assert clean_name(" 街面秩序\n") == "街面秩序"
    assert clean_name("Street  lights") == "Street lights"


def test_a_stored_limit_is_rebuilt() -> None:
    assert limit_from_columns(None, None, None, None, None) is None
    limit = limit_from_columns("1紧急工作时制止", 1, "hour", "urgent", "制止")
    assert limit == TimeLimit(1, Unit.HOUR, Clock.URGENT, "1紧急工作时制止", "制止")


def test_a_unit_mapping_from_toml_overrides_the_defaults() -> None:
    data = tomllib.loads(
        """
        [units]
        "小时" = { clock = "urgent", unit = "hour" }
        "个工作日" = { clock = "working", unit = "day" }
        """
    )
    mapping = parse_unit_map(data, DEFAULT_UNIT_MAP)
    assert mapping["小时"] == UnitMeaning(Clock.URGENT, Unit.HOUR)
    assert mapping["个工作日"] == UnitMeaning(Clock.WORKING, Unit.DAY)
    assert mapping["工作日"] == DEFAULT_UNIT_MAP["工作日"]
    only = parse_unit_map(
        {"replace_defaults": True, "units": {"天": {"clock": "calendar", "unit": "day"}}},
        DEFAULT_UNIT_MAP,
    )
    assert set(only) == {"天"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "needs a [units] table"),
        ({"unit": {}}, "unknown key"),
        ({"units": {"天": {"clock": "sometimes", "unit": "day"}}}, "clock 'sometimes'"),
        ({"units": {"天": {"clock": "working", "unit": "week"}}}, "unit 'week'"),
        ({"units": {"天": "working day"}}, "expected { clock"),
        ({"units": {"2天": {"clock": "working", "unit": "day"}}}, "no digits"),
        ({"replace_defaults": "yes", "units": {}}, "true or false"),
    ],
)
def test_a_bad_unit_mapping_is_a_sentence(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_unit_map(data, DEFAULT_UNIT_MAP)
    assert message in caught.value.message


# --- the built-in defaults --------------------------------------------------------------------


def test_the_defaults_have_the_national_major_classes() -> None:
    catalog = default_catalog()
    components, events = catalog.families
    assert [(m.code, m.name) for m in components.majors] == [
        ("01", "公用设施"),
        ("02", "道路交通"),
        ("03", "市容环境"),
        ("04", "园林绿化"),
        ("05", "房屋土地"),
        ("06", "其他设施"),
    ]
    assert [(m.code, m.name) for m in events.majors] == [
        ("01", "市容环境"),
        ("02", "宣传广告"),
        ("03", "施工管理"),
        ("04", "街面秩序"),
        ("05", "突发事件"),
        ("06", "其他事件"),
    ]


def test_the_defaults_hold_the_common_minor_classes_with_limits() -> None:
    components, events = default_catalog().families
    assert components.minor_count >= 40 and events.minor_count >= 40
    codes = {
        (family.family, minor.code, minor.name)
        for family in (components, events)
        for major in family.majors
        for minor in major.minors
    }
    # The examples of DOMAIN.md section 3.
    for code, name in [
        ("0101", "上水井盖"),
        ("0102", "污水井盖"),
        ("0103", "雨水井盖"),
        ("0104", "雨水箅子"),
        ("0106", "路灯井盖"),
        ("0137", "路灯"),
        ("0201", "停车场"),
        ("0206", "过街天桥"),
        ("0212", "路名牌"),
        ("0217", "交通护栏"),
        ("0301", "公共厕所"),
        ("0303", "化粪池"),
        ("0306", "户外广告"),
        ("0307", "牌匾标识"),
        ("0401", "古树名木"),
        ("0402", "行道树"),
        ("0406", "雕塑"),
        ("0407", "街头座椅"),
    ]:
        assert (Family.COMPONENT, code, name) in codes
    for code, name in [
        ("0101", "私搭乱建"),
        ("0111", "积存垃圾渣土"),
        ("0112", "道路不洁"),
        ("0117", "绿地脏乱"),
        ("0125", "水域不洁"),
        ("0201", "非法小广告"),
        ("0202", "街头散发广告"),
        ("0203", "违规户外广告"),
        ("0301", "施工扰民"),
        ("0302", "施工占道"),
        ("0303", "无证掘路"),
        ("0304", "工地扬尘"),
        ("0401", "无照经营游商"),
        ("0406", "占道经营"),
        ("0501", "供水管道破裂"),
        ("0505", "路面塌陷"),
        ("0506", "道路积水"),
    ]:
        assert (Family.EVENT, code, name) in codes
    for family in (components, events):
        for major in family.majors:
            assert major.minors, major.code
            for minor in major.minors:
                assert minor.code.startswith(major.code)
                assert minor.standards, minor.code
                assert all(s.limit is not None for s in minor.standards), minor.code
                assert all(s.filing_criterion and s.closing_criterion for s in minor.standards)
    well = next(m for m in components.majors[0].minors if m.code == "0101")
    assert [s.limit_text for s in well.standards] == ["2紧急工作时", "4小时", "2天", "5天"]


def test_the_defaults_round_trip_through_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "defaults.xlsx"
    write_workbook(path, default_catalog())
    assert read_workbook(path) == default_catalog()
