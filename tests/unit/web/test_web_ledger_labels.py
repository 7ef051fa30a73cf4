"""The ledger pages name statuses, sign-off states, actions and kinds as the ledgers domain does."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cityloop.ledgers.domain import (
    ACTION_LABELS_ZH,
    SHAPES,
    STATE_LABELS_ZH,
    STATUS_LABELS_ZH,
)
from cityloop.web import labels
from cityloop.web.i18n import Translator


@pytest.mark.parametrize(
    ("table", "chinese"),
    [
        (labels.LEDGER_STATUS, STATUS_LABELS_ZH),
        (labels.LEDGER_STATE, STATE_LABELS_ZH),
        (labels.LEDGER_ACTION, ACTION_LABELS_ZH),
        (labels.LEDGER_KIND, {kind: shape.label for kind, shape in SHAPES.items()}),
    ],
)
def test_ledger_labels_read_the_same_in_the_pages_as_in_the_domain(
    table: Mapping[object, tuple[str, str]], chinese: Mapping[object, str]
) -> None:
    assert set(table) == set(chinese)
    t = Translator("zh")
    for key, (context, message) in table.items():
        assert t.pgettext(context, message) == chinese[key], key
    english = Translator("en")
    assert all(english.pgettext(c, m) == m for c, m in table.values())
