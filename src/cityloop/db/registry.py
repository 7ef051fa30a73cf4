"""Imports every capability's models so ``Base.metadata`` is complete (for Alembic and tests).

Add a line here when a new capability gains tables.
"""

from __future__ import annotations

import importlib

from cityloop.db.base import Base

MODEL_MODULES = (
    "cityloop.org.models",
    "cityloop.audit.models",
    "cityloop.cityconfig.models",
    "cityloop.cases.models",
    "cityloop.catalog.models",
    "cityloop.grid.models",
    "cityloop.workcal.models",
    "cityloop.open311.models",
    "cityloop.ledgers.models",
    "cityloop.evaluation.models",
    "cityloop.exchange.models",
)


def load_all_models() -> type[Base]:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base
