"""HTTP routes of the Open311 server under /open311/v2 (mount ``router``).

Parameters are read raw from the query and the form, not through FastAPI's validation: a
malformed date or number must be the spec's 400 error list in the format the client asked for,
never the application's JSON 422. Every route therefore catches its own errors and renders them
(``_respond``); no exception handler has to be registered with the application.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cityloop.errors import CityloopError
from cityloop.open311 import service
from cityloop.open311.domain import (
    MEDIA_TYPES,
    Format,
    Open311Error,
    bad_request,
    format_hint,
    not_found,
    parse_format,
)
from cityloop.open311.service import Params
from cityloop.open311.xml import render
from cityloop.web.deps import DatabaseDep

PREFIX = "/open311/v2"

router = APIRouter(prefix=PREFIX, tags=["open311"])

REQUESTS = "service_requests"
UPDATES = "service_request_updates"


def _body(fmt: Format, root: str, data: Any) -> bytes:
    if fmt is Format.JSON:
        return json.dumps(data, ensure_ascii=False).encode("utf-8")
    return render(root, data)


def _render(
    fmt: Format,
    root: str,
    data: Any,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        _body(fmt, root, data),
        status_code=status_code,
        media_type=MEDIA_TYPES[fmt],
        headers=headers,
    )


def _dump(value: BaseModel | list[Any]) -> Any:
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value.model_dump(mode="json")


def _http_code(exc: CityloopError) -> int:
    """A domain error from another capability (the case loop refusing a report) in the spec's
    vocabulary, which has 400, 403 and 404 only."""
    return exc.status_code if exc.status_code in (403, 404) else 400


def _respond(extension: str, produce: Callable[[Format], Response]) -> Response:
    """Run ``produce`` in the requested format; any refusal becomes the spec's error list,
    in that format when it is valid, else in XML (the format every client must read)."""
    hint = format_hint(f".{extension}")
    try:
        return produce(parse_format(extension))
    except Open311Error as exc:
        error = exc
    except CityloopError as exc:
        error = Open311Error(_http_code(exc), exc.message)
    return _render(
        hint,
        "errors",
        [{"code": error.code, "description": error.description}],
        status_code=error.code,
    )


def _stem(name: str) -> tuple[str, str]:
    """``"C0101.json"`` -> ``("C0101", "json")``; the extension is checked by ``_respond``."""
    stem, dot, extension = name.rpartition(".")
    return (stem, extension) if dot else (name, "")


def _query(request: Request) -> Params:
    return Params.of(request.query_params.multi_items())


async def _form(request: Request) -> Params:
    """Form fields first, then the query string: the spec posts a form, some clients put
    api_key or jurisdiction_id in the URL instead."""
    try:
        form = await request.form()
    except (HTTPException, ValueError, KeyError) as exc:
        raise bad_request(f"the request body is not a readable form: {exc}") from None
    pairs = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    return Params.of(pairs + list(request.query_params.multi_items()))


def _total(count: int) -> dict[str, str]:
    # Paging is an extension: the total lets a client know how many pages there are.
    return {"X-Total-Count": str(count)}


# --- discovery and services -------------------------------------------------------------------


@router.get("/discovery.{fmt}", summary="Service discovery")
def get_discovery(request: Request, database: DatabaseDep, fmt: str) -> Response:
    base_url = str(request.base_url).rstrip("/") + PREFIX

    def produce(f: Format) -> Response:
        return _render(f, "discovery", _dump(service.discovery(database.uow(), base_url=base_url)))

    return _respond(fmt, produce)


@router.get("/services.{fmt}", summary="Service list (the catalog's classes)")
def get_services(request: Request, database: DatabaseDep, fmt: str) -> Response:
    def produce(f: Format) -> Response:
        services = service.list_services(database.uow(), _query(request))
        return _render(f, "services", _dump(services))

    return _respond(fmt, produce)


@router.get("/services/{name}", summary="Service definition: attributes and their values")
def get_definition(request: Request, database: DatabaseDep, name: str) -> Response:
    code, extension = _stem(name)

    def produce(f: Format) -> Response:
        definition = service.service_definition(database.uow(), code, _query(request))
        return _render(f, "service_definition", _dump(definition))

    return _respond(extension, produce)


# --- requests ---------------------------------------------------------------------------------


@router.post("/requests.{fmt}", summary="Create a service request (needs an api_key)")
async def post_request(
    request: Request,
    database: DatabaseDep,
    fmt: str,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    hint = format_hint(f".{fmt}")
    try:
        params = await _form(request)
    except Open311Error as exc:
        return _render(
            hint, "errors", [{"code": exc.code, "description": exc.description}], status_code=400
        )
    key = (idempotency_key or "").strip()[:100] or None

    def produce(f: Format) -> Response:
        created = service.submit(database.uow(), params, idempotency_key=key)
        return _render(f, REQUESTS, [_dump(created)])

    return await run_in_threadpool(_respond, fmt, produce)


@router.get("/requests.{fmt}", summary="Service requests, with the spec's filters")
def get_requests(request: Request, database: DatabaseDep, fmt: str) -> Response:
    def produce(f: Format) -> Response:
        page = service.list_requests(database.uow(), _query(request))
        return _render(f, REQUESTS, _dump(page.items), headers=_total(page.total))

    return _respond(fmt, produce)


def _one_request(request: Request, database: DatabaseDep, name: str) -> Response:
    request_id, extension = _stem(name)

    def produce(f: Format) -> Response:
        found = service.get_request(database.uow(), request_id, _query(request))
        return _render(f, REQUESTS, [_dump(found)])

    return _respond(extension, produce)


@router.get("/requests/{name}", summary="One service request")
def get_request(request: Request, database: DatabaseDep, name: str) -> Response:
    return _one_request(request, database, name)


@router.get("/request/{name}", summary="One service request (path as in the Swagger file)")
def get_request_singular(request: Request, database: DatabaseDep, name: str) -> Response:
    return _one_request(request, database, name)


@router.get("/tokens/{name}", summary="The service_request_id of a queued submission")
def get_token(request: Request, database: DatabaseDep, name: str) -> Response:
    token, extension = _stem(name)

    def produce(f: Format) -> Response:
        resolved = service.resolve_token(database.uow(), token, _query(request))
        return _render(f, REQUESTS, [_dump(resolved)])

    return _respond(extension, produce)


# --- mySociety's service request updates ------------------------------------------------------


@router.get("/servicerequestupdates.{fmt}", summary="Updates to requests (mySociety extension)")
def get_updates(request: Request, database: DatabaseDep, fmt: str) -> Response:
    def produce(f: Format) -> Response:
        page = service.list_updates(database.uow(), _query(request))
        return _render(f, UPDATES, _dump(page.items), headers=_total(page.total))

    return _respond(fmt, produce)


@router.post("/servicerequestupdates.{fmt}", summary="Post an update (mySociety extension)")
async def post_update(request: Request, database: DatabaseDep, fmt: str) -> Response:
    hint = format_hint(f".{fmt}")
    try:
        params = await _form(request)
    except Open311Error as exc:
        return _render(
            hint, "errors", [{"code": exc.code, "description": exc.description}], status_code=400
        )

    def produce(f: Format) -> Response:
        created = service.post_update(database.uow(), params)
        return _render(f, UPDATES, [_dump(created)])

    return await run_in_threadpool(_respond, fmt, produce)


# --- anything else under /open311/v2 ----------------------------------------------------------


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def unknown(request: Request, rest: str) -> Response:
    """Keep the spec's error format for paths and methods we do not serve (FastAPI's default
    would be ``{"detail": "Not Found"}``, which no Open311 client understands)."""

    def produce(_f: Format) -> Response:
        raise not_found(f"{request.method} {PREFIX}/{rest[:100]} is not an Open311 resource here")

    return _respond(format_hint(rest).value, produce)
