"""Every UI string goes through the catalog, and the Chinese catalog is complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from cityloop.cases.domain import (
    ACTION_LABELS_ZH,
    SATISFACTION_LABELS_ZH,
    STATE_LABELS_ZH,
    STEP_LABELS_ZH,
)
from cityloop.catalog.domain import FAMILY_LABELS_ZH
from cityloop.org.domain import ROLE_LABELS_ZH
from cityloop.web import labels
from cityloop.web.i18n import Translator, po_path

WEB = Path(labels.__file__).parent
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "N_": None,
    "NP_": ((1, "c"), 2),
}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _source_messages() -> set[tuple[str | None, str]]:
    found: set[tuple[str | None, str]] = set()
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(WEB), method_map, options, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.add((context, msgid))
    return found


@pytest.fixture(scope="module")
def catalog() -> dict[tuple[str | None, str], str]:
    with po_path("zh").open("rb") as fh:
        po = read_po(fh)
    return {(m.context, str(m.id)): str(m.string) for m in po if m.id}


def test_every_string_in_the_source_has_a_chinese_translation(
    catalog: dict[tuple[str | None, str], str],
) -> None:
    source = _source_messages()
    assert len(source) > 300
    missing = sorted(str(k) for k in source if not catalog.get(k))
    assert not missing, f"add these to messages.po: {missing}"
    stale = sorted(str(k) for k in catalog if k not in source)
    assert not stale, f"remove these from messages.po: {stale}"


def test_translations_keep_their_placeholders(catalog: dict[tuple[str | None, str], str]) -> None:
    for (_context, msgid), msgstr in catalog.items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid


@pytest.mark.parametrize(
    ("table", "chinese"),
    [
        (labels.STATE, STATE_LABELS_ZH),
        (labels.ACTION, ACTION_LABELS_ZH),
        (labels.ROLE, ROLE_LABELS_ZH),
        (labels.STEP, STEP_LABELS_ZH),
        (labels.SATISFACTION, SATISFACTION_LABELS_ZH),
        (labels.FAMILY, FAMILY_LABELS_ZH),
    ],
)
def test_domain_labels_read_the_same_in_the_pages_as_in_the_domain(
    table: object, chinese: dict[object, str]
) -> None:
    t = Translator("zh")
    for key, (context, message) in table.items():  # type: ignore[attr-defined]
        assert t.pgettext(context, message) == chinese[key], key


def test_every_enum_value_has_a_label() -> None:
    assert set(labels.STATE) == set(STATE_LABELS_ZH)
    assert set(labels.ACTION) == set(ACTION_LABELS_ZH)
    assert set(labels.PUBLIC_STATUS) == set(STATE_LABELS_ZH)


def test_english_is_the_source_and_needs_no_catalog() -> None:
    t = Translator("en")
    assert t.gettext("Workbench") == "Workbench"
    assert Translator("zh").gettext("Workbench") == "工作台"
