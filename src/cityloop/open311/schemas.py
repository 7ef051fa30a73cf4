"""The server's settings and the shapes of its responses, field for field as the spec names
them (the XML renderer uses the same names as element names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from cityloop.cases.domain import Channel

SETTINGS_KEY = "open311"

_NOT_LISTED_BY_DEFAULT = frozenset({Channel.HOTLINE_12345, Channel.HOTLINE_12319})


def _default_listed_channels() -> list[Channel]:
    return [c for c in Channel if c not in _NOT_LISTED_BY_DEFAULT]


class Open311Settings(BaseModel):
    """The city's Open311 settings, stored under the key ``open311`` (cityconfig), so an admin
    changes them with ``cityloop open311 config set`` without a restart."""

    # The jurisdiction this server answers for; a request naming another one gets 404.
    jurisdiction_id: str = Field(
        default="cityloop", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$"
    )
    # The spec requires jurisdiction_id only where an endpoint serves several jurisdictions.
    require_jurisdiction_id: bool = False
    # Queued mode: a POST answers with a token and `cityloop open311 queue process` (or a
    # worker) creates the cases later; services are then of type "batch".
    queued: bool = False
    service_notice: str | None = Field(default=None, max_length=500)
    # Discovery: who runs the endpoint and where a developer asks for an api_key.
    contact: str = Field(default="", max_length=500)
    key_service: str = Field(default="", max_length=500)
    # The public address of /open311/v2 when a proxy hides it from the server.
    base_url: str | None = Field(default=None, max_length=500)
    # Which channels' cases GET requests publishes. Hotline descriptions are typed by an
    # operator from a phone call and often name the caller or the door, so they stay out
    # unless the city decides otherwise.
    listed_channels: list[Channel] = Field(default_factory=_default_listed_channels)

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("listed_channels")
    @classmethod
    def _open311_listed(cls, value: list[Channel]) -> list[Channel]:
        # A client must be able to read back the requests it created.
        if Channel.OPEN311 not in value:
            raise ValueError("listed_channels must include open311")
        return list(dict.fromkeys(value))


def _none(value: Any) -> bool:
    return value is None


# --- discovery -------------------------------------------------------------------------------


class Endpoint(BaseModel):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Discovery(BaseModel):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[Endpoint]


# --- services --------------------------------------------------------------------------------


class ServiceOut(BaseModel):
    service_code: str
    service_name: str
    description: str | None
    metadata: bool
    type: str
    keywords: str | None
    group: str | None


class ValueOut(BaseModel):
    key: str
    name: str


class AttributeOut(BaseModel):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[ValueOut] | None = Field(default=None, exclude_if=_none)


class DefinitionOut(BaseModel):
    service_code: str
    attributes: list[AttributeOut]


# --- requests --------------------------------------------------------------------------------


class AnswerOut(BaseModel):
    """A submitted attribute (extensions=true): ``value`` for free input, ``values`` for lists."""

    code: str
    datatype: str
    value: str | None = Field(default=None, exclude_if=_none)
    values: list[ValueOut] | None = Field(default=None, exclude_if=_none)


class NoteOut(BaseModel):
    """One timeline entry (extensions=true). No names, roles or reasons: those are staff data."""

    datetime: str
    type: str  # activity (a step of the loop) | comment (a client's update)
    summary: str
    description: str
    status: str


class RequestOut(BaseModel):
    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    # The common extensions, present only with extensions=true.
    attributes: list[AnswerOut] | None = Field(default=None, exclude_if=_none)
    extended_attributes: dict[str, Any] | None = Field(default=None, exclude_if=_none)
    notes: list[NoteOut] | None = Field(default=None, exclude_if=_none)


class RequestPage(BaseModel):
    items: list[RequestOut]
    total: int


class CreatedOut(BaseModel):
    """The answer to a POST: an id (immediate mode) or a token (queued mode)."""

    service_request_id: str | None = Field(default=None, exclude_if=_none)
    token: str | None = Field(default=None, exclude_if=_none)
    service_notice: str | None
    account_id: str | None


class TokenOut(BaseModel):
    service_request_id: str | None
    token: str
    # Extension: pending | created | rejected, and why a submission was rejected.
    token_status: str
    token_notice: str | None = Field(default=None, exclude_if=_none)


# --- mySociety's service request updates ----------------------------------------------------


class UpdateOut(BaseModel):
    update_id: str
    service_request_id: str
    status: str
    updated_datetime: str
    description: str
    media_url: str | None


class UpdatePage(BaseModel):
    items: list[UpdateOut]
    total: int


class UpdateCreatedOut(BaseModel):
    update_id: str


# --- clients (CLI) ---------------------------------------------------------------------------


class ClientPublic(BaseModel):
    id: int
    name: str
    key_hint: str
    active: bool
    created_at: str


class ClientCreated(BaseModel):
    """Returned once by ``add_client``: the only time the key exists outside the client."""

    client: ClientPublic
    api_key: str


class QueueReport(BaseModel):
    created: int
    rejected: int
    left: int
