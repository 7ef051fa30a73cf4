"""The Open311 rules without a server: codes, status, dates, attributes, locations, contacts."""

from __future__ import annotations

import datetime as dt

import pytest

from cityloop.cases.domain import TERMINAL_STATES, CaseState
from cityloop.open311.domain import (
    COMMON_ATTRIBUTES,
    DEFAULT_LIMIT,
    MAX_WINDOW,
    SITUATION,
    Datatype,
    Format,
    Open311Error,
    Status,
    attributes_for,
    check_attributes,
    check_media_url,
    clean_phone,
    collect_attributes,
    format_hint,
    parse_bool,
    parse_datetime,
    parse_id_list,
    parse_positive_int,
    parse_service_code,
    parse_statuses,
    parse_update_status,
    parse_where,
    reporter_name,
    service_code,
    split_name,
    states_with,
    status_of,
    window,
)

NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)


def code_of(exc: pytest.ExceptionInfo[Open311Error]) -> int:
    return exc.value.code


# --- formats and codes -----------------------------------------------------------------------


def test_the_extension_selects_the_format_and_errors_fall_back_to_xml() -> None:
    assert split_name("C0101.json") == ("C0101", Format.JSON)
    assert split_name("2026112300001.XML") == ("2026112300001", Format.XML)
    with pytest.raises(Open311Error) as err:
        split_name("C0101")
    assert code_of(err) == 400 and ".xml or .json" in err.value.description
    with pytest.raises(Open311Error):
        split_name("C0101.html")
    assert format_hint("x.json") is Format.JSON
    assert format_hint("x.html") is Format.XML


def test_service_codes_are_the_family_letter_and_the_minor_code() -> None:
    assert service_code("component", "0101") == "C0101"
    assert service_code("event", "0101") == "E0101"
    assert service_code(None, None) == "unclassified"
    assert parse_service_code("C0101") == ("component", "0101")
    assert parse_service_code(" e0307 ") == ("event", "0307")
    for bad in ("0101", "C101", "X0101", "C01011", ""):
        assert parse_service_code(bad) is None


# --- status ----------------------------------------------------------------------------------


def test_closed_is_exactly_the_terminal_states() -> None:
    for state in CaseState:
        assert (status_of(state) is Status.CLOSED) == (state in TERMINAL_STATES)
    assert states_with(Status.CLOSED) == TERMINAL_STATES
    assert states_with(Status.OPEN) | states_with(Status.CLOSED) == frozenset(CaseState)


def test_the_status_filter_is_comma_delimited_and_strict() -> None:
    assert parse_statuses(None) is None
    assert parse_statuses(" ") is None
    assert parse_statuses("open") == {Status.OPEN}
    assert parse_statuses("Open, closed") == {Status.OPEN, Status.CLOSED}
    with pytest.raises(Open311Error) as err:
        parse_statuses("open,fixed")
    assert code_of(err) == 400 and "fixed" in err.value.description


def test_update_statuses_are_mysocietys_any_case() -> None:
    assert parse_update_status("CLOSED") == "closed"
    assert parse_update_status("In Progress") == "in_progress"
    for bad in (None, "", "done"):
        with pytest.raises(Open311Error):
            parse_update_status(bad)


# --- dates and limits ------------------------------------------------------------------------


def test_dates_need_w3c_with_a_timezone() -> None:
    assert parse_datetime("d", "2026-11-23T09:00:00+08:00") == NOW
    assert parse_datetime("d", "2026-11-23T01:00:00Z") == NOW
    # An unencoded "+" arrives as a space; the meaning is not in doubt.
    assert parse_datetime("d", "2026-11-23T09:00:00 08:00") == NOW
    with pytest.raises(Open311Error) as err:
        parse_datetime("start_date", "2026-11-23T09:00:00")
    assert "timezone" in err.value.description and "start_date" in err.value.description
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "23/11/2026"):
        with pytest.raises(Open311Error) as err:
            parse_datetime("end_date", bad)
        assert code_of(err) == 400


def test_the_window_defaults_to_90_days_and_may_not_be_longer() -> None:
    assert window(None, None, NOW) == window(NOW - MAX_WINDOW, NOW, NOW)
    start = NOW - dt.timedelta(days=200)
    assert window(start, None, NOW).end == start + MAX_WINDOW
    assert window(None, start, NOW).start == start - MAX_WINDOW
    assert window(start, start + MAX_WINDOW, NOW).end == start + MAX_WINDOW
    with pytest.raises(Open311Error) as err:
        window(start, start + MAX_WINDOW + dt.timedelta(seconds=1), NOW)
    assert "90 days" in err.value.description
    with pytest.raises(Open311Error) as err:
        window(NOW, start, NOW)
    assert "before" in err.value.description


def test_paging_numbers_and_id_lists() -> None:
    assert parse_positive_int("page_size", None, default=DEFAULT_LIMIT, maximum=1000) == 1000
    assert parse_positive_int("page", "3", default=1, maximum=10) == 3
    for bad in ("0", "-1", "x", "1001"):
        with pytest.raises(Open311Error):
            parse_positive_int("page_size", bad, default=1000, maximum=1000)
    assert parse_id_list(" a, b,,a ") == ["a", "b"]
    with pytest.raises(Open311Error):
        parse_id_list(" , ")
    with pytest.raises(Open311Error):
        parse_id_list(",".join(str(i) for i in range(1001)))
    assert parse_bool("extensions", "TRUE") is True
    assert parse_bool("extensions", None) is False
    with pytest.raises(Open311Error):
        parse_bool("extensions", "maybe")


# --- attributes ------------------------------------------------------------------------------

ROWS = [(11, "缺失、移位"), (12, "破损超过25c㎡")]


def test_definitions_have_every_datatype_and_the_situations_first() -> None:
    definitions = attributes_for(ROWS)
    assert definitions[0].code == SITUATION
    assert [c.key for c in definitions[0].choices] == ["11", "12"]
    assert {d.datatype for d in definitions} == set(Datatype)
    assert [d.order for d in definitions] == sorted(d.order for d in definitions)
    assert attributes_for([]) == COMMON_ATTRIBUTES  # no rows, no situation attribute


def test_attribute_keys_single_and_multi_values() -> None:
    got = collect_attributes(
        [
            ("attribute[situation]", "12"),
            ("attribute[impact][]", "traffic"),
            ("attribute[impact][]", "safety"),
            ("attribute[landmark]", "  "),
            ("description", "x"),
        ]
    )
    assert got == {"situation": ["12"], "impact": ["traffic", "safety"], "landmark": []}
    with pytest.raises(Open311Error) as err:
        collect_attributes([("attribute[a][b]", "1")])
    assert "attribute[code]" in err.value.description


def test_answers_are_checked_against_the_definition() -> None:
    defs = attributes_for(ROWS)
    answers = check_attributes(
        defs,
        {
            "impact": ["traffic", "safety", "traffic"],
            "situation": ["12"],
            "quantity": ["3"],
            "observed_at": ["2026-11-23T09:00:00+08:00"],
            "report_url": ["https://fms.example/report/1"],
        },
    )
    assert [a.code for a in answers.known] == ["situation", "impact", "observed_at", "quantity"]
    assert answers.value(SITUATION) == "12"
    impact = answers.known[1]
    assert impact.values == ("traffic", "safety") and impact.names[0].startswith("影响通行")
    assert answers.known[2].values == ("2026-11-23T01:00:00Z",)
    # Unknown attributes (FixMyStreet's own) are kept aside, not refused.
    assert answers.extra == {"report_url": "https://fms.example/report/1"}


@pytest.mark.parametrize(
    ("submitted", "words"),
    [
        ({"situation": ["99"]}, "no value '99'"),
        ({"situation": ["11", "12"]}, "takes one value"),
        ({"impact": ["flood"]}, "no value 'flood'"),
        ({"quantity": ["many"]}, "not a number"),
        ({"quantity": ["-1"]}, "out of range"),
        ({"quantity": ["nan"]}, "out of range"),
        ({"observed_at": ["yesterday"]}, "W3C"),
        ({"landmark": ["x" * 101]}, "longer than 100"),
        ({"report_url": ["x" * 1001]}, "longer than 1000"),
    ],
)
def test_bad_answers_are_400_naming_the_attribute(
    submitted: dict[str, list[str]], words: str
) -> None:
    with pytest.raises(Open311Error) as err:
        check_attributes(attributes_for(ROWS), submitted)
    assert code_of(err) == 400 and words in err.value.description


def test_a_required_attribute_must_be_answered() -> None:
    from dataclasses import replace

    defs = (replace(attributes_for(ROWS)[0], required=True),)
    with pytest.raises(Open311Error) as err:
        check_attributes(defs, {"situation": []})
    assert "attribute[situation] is required" in err.value.description


# --- location, media, contact ----------------------------------------------------------------


def test_a_location_is_lat_and_long_or_an_address() -> None:
    where = parse_where("31.3", "120.6", None, None)
    assert (where.lat, where.lon, where.address) == (31.3, 120.6, None)
    assert parse_where(None, None, " 人民路 1 号 ", None).address == "人民路 1 号"
    cases = [
        ((None, None, None, None), "location is required"),
        (("31.3", None, None, None), "together"),
        (("91", "120", None, None), "outside"),
        (("31", "181", None, None), "outside"),
        (("north", "120", None, None), "not a number"),
        ((None, None, None, "A-17"), "address_id is not supported"),
        ((None, None, "x" * 256, None), "longer than 255"),
    ]
    for args, words in cases:
        with pytest.raises(Open311Error) as err:
            parse_where(*args)
        assert code_of(err) == 400 and words in err.value.description, args


def test_media_urls_are_http() -> None:
    assert check_media_url(" https://x.example/a.jpg ") == "https://x.example/a.jpg"
    assert check_media_url("") is None
    for bad in ("ftp://x/a.jpg", "javascript:alert(1)", "https://", "http://x/a b", "h" * 1100):
        with pytest.raises(Open311Error):
            check_media_url(bad)


def test_names_and_phones_as_people_write_them() -> None:
    assert reporter_name("三", "张") == "张三"
    assert reporter_name("John", "Smith") == "John Smith"
    assert reporter_name(None, "Smith") == "Smith"
    assert reporter_name(" ", None) is None
    assert clean_phone("(0512) 6523.1234") == "0512 6523 1234"
    assert clean_phone("") is None
