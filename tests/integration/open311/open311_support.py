"""What the Open311 tests share: a small catalog, a client key, the shared JSON Schemas, XML.

Not a test module (no ``test_`` prefix); imported as ``tests.integration.open311.open311_support``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import FastAPI
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT7
from sqlalchemy import func, select

from cityloop.cases.models import Case, CaseEvent
from cityloop.catalog.models import FilingStandard, MajorClass, MinorClass
from cityloop.db.engine import Database
from cityloop.open311 import service as open311
from cityloop.open311.models import Open311Request, Open311Token, Open311Update
from cityloop.open311.views import router
from cityloop.org.domain import SYSTEM_ACTOR

# CI clones main with shared/ beside it: /path/main and /path/shared.
SCHEMA_DIR = Path(__file__).parents[3] / ".." / "shared" / "open311" / "schema"


@dataclass(frozen=True)
class Catalog:
    manhole_rows: tuple[int, int]  # C0101 上水井盖: two filing-standard rows
    building_row: int  # E0101 私搭乱建: one row
    retired_code: str  # C0199: a retired class


def seed_catalog(database: Database) -> Catalog:
    """Two families, a class without filing rows (C0102), a retired class (C0199)."""
    with database.uow() as uow:
        s = uow.session
        facilities = MajorClass(family="component", code="01", name="公用设施", position=1)
        townscape = MajorClass(family="event", code="01", name="市容环境", position=1)
        s.add_all([facilities, townscape])
        s.flush()
        manhole = MinorClass(
            family="component", major_id=facilities.id, code="0101", name="上水井盖", position=1
        )
        sewer = MinorClass(
            family="component", major_id=facilities.id, code="0102", name="污水井盖", position=2
        )
        retired = MinorClass(
            family="component",
            major_id=facilities.id,
            code="0199",
            name="旧井盖",
            position=9,
            active=False,
        )
        building = MinorClass(
            family="event", major_id=townscape.id, code="0101", name="私搭乱建", position=1
        )
        s.add_all([manhole, sewer, retired, building])
        s.flush()
        rows = [
            FilingStandard(
                minor_id=manhole.id,
                position=1,
                filing_criterion="缺失、移位、开裂，存在安全隐患的",
                closing_criterion="恢复",
                limit_text="2工作日",
            ),
            FilingStandard(
                minor_id=manhole.id,
                position=2,
                filing_criterion="破损超过25c㎡",
                closing_criterion="更换或修复",
                limit_text="2工作日",
            ),
            FilingStandard(
                minor_id=building.id,
                position=1,
                filing_criterion="新建违法建筑",
                closing_criterion="拆除",
                limit_text="5工作日",
            ),
        ]
        s.add_all(rows)
        s.flush()
        uow.commit()
        return Catalog(
            manhole_rows=(rows[0].id, rows[1].id), building_row=rows[2].id, retired_code="C0199"
        )


def client_key(database: Database, name: str = "FixMyStreet") -> str:
    return open311.add_client(database.uow(), SYSTEM_ACTOR, name).api_key


def set_open311(database: Database, **changes: Any) -> None:
    open311.update_settings(database.uow(), SYSTEM_ACTOR, changes)


def counts(database: Database) -> dict[str, int]:
    """Rows a POST may write: asserting these unchanged proves nothing was half-written."""
    with database.uow().read() as uow:
        return {
            model.__tablename__: uow.session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Case, CaseEvent, Open311Request, Open311Token, Open311Update)
        }


def mount(app: FastAPI) -> FastAPI:
    """The lead mounts ``cityloop.open311.views:router`` in create_app; until then, tests do."""
    if not any(getattr(r, "path", "").startswith("/open311/") for r in app.routes):
        app.include_router(router)
    return app


@cache
def _registry() -> Registry[Any]:
    resources = [
        (path.name, DRAFT7.create_resource(json.loads(path.read_text(encoding="utf-8"))))
        for path in SCHEMA_DIR.glob("*.json")
        if path.name != "swagger.json"
    ]
    return Registry().with_resources(resources)


def validate(schema_name: str, instance: Any) -> None:
    """Validate against one of the shared schemas (services.json, request.json...)."""
    schema = json.loads((SCHEMA_DIR / schema_name).read_text(encoding="utf-8"))
    validator = Draft7Validator(schema, registry=_registry(), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def assert_w3c(value: str | None) -> None:
    """A date-time with its offset, as the spec demands (jsonschema skips the format check
    unless an RFC 3339 package is installed, so it is checked here too)."""
    assert value is not None
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, value


def xml(text: str | bytes) -> ET.Element:
    return ET.fromstring(text)


def error_of(response_text: str, fmt: str) -> tuple[int, str]:
    """(code, description) of the first error of an Open311 error list."""
    if fmt == "json":
        first = json.loads(response_text)[0]
        return int(first["code"]), str(first["description"])
    root = xml(response_text)
    assert root.tag == "errors"
    error = root.find("error")
    assert error is not None
    return int(error.findtext("code") or 0), error.findtext("description") or ""
