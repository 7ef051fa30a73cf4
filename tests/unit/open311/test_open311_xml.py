"""The XML renderer: the spec's element names, a declaration, and text any parser accepts."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from cityloop.open311.xml import render


def test_lists_take_the_spec_item_names() -> None:
    body = render(
        "service_requests",
        [{"service_request_id": "1", "attributes": [{"code": "a", "values": [{"key": "k"}]}]}],
    )
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id") == "1"
    assert root.findtext("request/attributes/attribute/values/value/key") == "k"
    errors = ET.fromstring(render("errors", [{"code": 404, "description": "x"}]))
    assert errors.findtext("error/code") == "404"
    services = ET.fromstring(render("services", [{"service_code": "C0101"}]))
    assert services.findtext("service/service_code") == "C0101"
    updates = ET.fromstring(render("service_request_updates", [{"update_id": "e1"}]))
    assert updates.findtext("request_update/update_id") == "e1"


def test_scalars_booleans_nulls_and_unusable_characters() -> None:
    root = ET.fromstring(
        render(
            "service",
            {"metadata": True, "group": None, "lat": 31.25, "name": "井盖<坏>&\x00\x1f了"},
        )
    )
    assert root.findtext("metadata") == "true"
    assert root.findtext("group") == ""
    assert root.findtext("lat") == "31.25"
    assert root.findtext("name") == "井盖<坏>&了"
