"""Pluggable notifiers for the worker: log (default) and webhook."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from typing import Protocol

import httpx

log = logging.getLogger("cityloop.notify")


@dataclass(frozen=True)
class Notification:
    kind: str  # "warning" (yellow) | "overdue" (red) | "urge"
    case_id: int
    case_code: str
    state: str
    step: str | None
    deadline: dt.datetime | None
    department_id: int | None

    def as_json(self) -> dict[str, object]:
        body = asdict(self)
        body["deadline"] = self.deadline.isoformat() if self.deadline else None
        return body


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None: ...


class LogNotifier:
    def notify(self, notification: Notification) -> None:
        log.warning(
            "%s: case %s (%s) step %s deadline %s",
            notification.kind,
            notification.case_code,
            notification.state,
            notification.step,
            notification.deadline.isoformat() if notification.deadline else "-",
        )


class WebhookNotifier:
    """POSTs each notification as JSON. A failing endpoint is logged, never fatal: the case
    state is already committed and the next run does not resend (at most once)."""

    def __init__(self, url: str, *, timeout: float = 5.0, client: httpx.Client | None = None):
        self.url = url
        self.client = client or httpx.Client(timeout=timeout)

    def notify(self, notification: Notification) -> None:
        try:
            self.client.post(self.url, json=notification.as_json()).raise_for_status()
        except httpx.HTTPError as exc:
            log.error("webhook %s failed for case %s: %s", self.url, notification.case_code, exc)


class MemoryNotifier:
    """Keeps what it was told; for tests and for embedding."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)
