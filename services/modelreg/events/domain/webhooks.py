"""Webhook subscriptions: state, commands, events and the rules between them. Pure.

A subscription is a stream of its own (`namespaces/{ns}/webhooks/{id}`) on the relay's
topic. The secret never appears here in clear: the application seals it first and the
events carry only the sealed bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from modelreg.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelreg.events.domain.public import TYPE_PREFIX, ce_type, public_types
from modelreg.names import parse_model_name, parse_parent

WEBHOOK_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MAX_URL = 2048
TEST_TYPE = "io.modelreg.webhook.test.v1"
UPDATABLE = ("url", "event_types", "model", "secret", "mlflow_headers", "state", "annotations")
MAX_ANNOTATIONS = 32
MAX_ANNOTATION_KEY = 128
MAX_ANNOTATION_VALUE = 8192


class State(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    url: str
    event_types: tuple[str, ...] = ()
    """Full CloudEvents types; empty: all."""
    model: str = ""
    mlflow_headers: bool = False
    state: State = State.ACTIVE
    disabled_reason: str = ""
    sealed_secrets: tuple[bytes, ...] = ()
    """Newest first; the older one is kept for the rotation window after an update."""
    rotated_at: datetime | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    """A client's own data (sorted by key); the relay never reads it."""

    @property
    def namespace(self) -> str:
        return self.name.split("/")[1]

    def wants(self, event_type: str, subject: str) -> bool:
        if self.event_types and event_type not in self.event_types:
            return False
        if self.model:
            return subject == self.model
        return subject.startswith(f"namespaces/{self.namespace}/models/")


def webhook_name(parent: str, webhook_id: str) -> str:
    namespace = parse_parent(parent)
    if not WEBHOOK_ID.fullmatch(webhook_id or ""):
        raise InvalidArgument.of(
            "webhook_id", f"{webhook_id[:80]!r} must be 1-63 lowercase letters, digits or '-'"
        )
    return f"namespaces/{namespace}/webhooks/{webhook_id}"


def parse_webhook_name(name: str, field_name: str = "name") -> str:
    parts = (name or "").split("/")
    if (
        len(parts) != 4
        or parts[0] != "namespaces"
        or parts[2] != "webhooks"
        or not WEBHOOK_ID.fullmatch(parts[3])
    ):
        raise InvalidArgument.of(
            field_name, f"{name[:200]!r} is not of the form namespaces/{{ns}}/webhooks/{{id}}"
        )
    parse_parent(f"namespaces/{parts[1]}", field_name)
    return name


def check_url(url: str, field_name: str = "webhook.url") -> str:
    """An absolute http(s) URL with a host; where it may point is the address guard's call."""
    if not url:
        raise InvalidArgument.of(field_name, "is required")
    if len(url) > MAX_URL:
        raise InvalidArgument.of(field_name, f"is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise InvalidArgument.of(field_name, f"is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument.of(field_name, f"{url[:200]!r} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidArgument.of(field_name, "must not carry credentials (use the signature to authenticate)")
    return url


def check_types(types: Sequence[str], field_name: str = "webhook.event_types") -> tuple[str, ...]:
    known = {ce_type(t) for t in public_types()}
    out = []
    for given in types:
        full = given if given.startswith(TYPE_PREFIX) else ce_type(given)
        if full not in known:
            raise InvalidArgument.of(
                field_name, f"{given[:100]!r} is not a public event type (one of {', '.join(public_types())})"
            )
        if full not in out:
            out.append(full)
    return tuple(out)


def check_model(model: str, namespace: str, field_name: str = "webhook.model") -> str:
    if not model:
        return ""
    parsed = parse_model_name(model, field_name)
    if parsed.namespace != namespace:
        raise InvalidArgument.of(field_name, f"{model!r} is not in namespace {namespace!r}")
    return str(parsed)


def check_annotations(
    annotations: Mapping[str, str], field_name: str = "webhook.annotations"
) -> tuple[tuple[str, str], ...]:
    if len(annotations) > MAX_ANNOTATIONS:
        raise InvalidArgument.of(field_name, f"has {len(annotations)} entries; at most {MAX_ANNOTATIONS}")
    for key, value in annotations.items():
        if not key or len(key) > MAX_ANNOTATION_KEY:
            raise InvalidArgument.of(
                field_name, f"key {key[:40]!r} must be 1 to {MAX_ANNOTATION_KEY} characters"
            )
        if len(value) > MAX_ANNOTATION_VALUE:
            raise InvalidArgument.of(
                field_name, f"value of {key!r} is longer than {MAX_ANNOTATION_VALUE} characters"
            )
    return tuple(sorted(annotations.items()))


# Events


@dataclass(frozen=True, slots=True)
class WebhookCreated:
    webhook: Webhook
    sealed_secret: bytes


@dataclass(frozen=True, slots=True)
class WebhookUpdated:
    webhook: Webhook
    mask: tuple[str, ...]
    sealed_secret: bytes = b""


@dataclass(frozen=True, slots=True)
class WebhookDeleted:
    name: str


@dataclass(frozen=True, slots=True)
class WebhookDisabled:
    name: str
    reason: str


Event = WebhookCreated | WebhookUpdated | WebhookDeleted | WebhookDisabled


# Commands


@dataclass(frozen=True, slots=True)
class Create:
    webhook: Webhook
    sealed_secret: bytes


@dataclass(frozen=True, slots=True)
class Update:
    name: str
    changes: Webhook
    """The new values of the masked fields (other fields ignored)."""
    mask: tuple[str, ...]
    sealed_secret: bytes = b""


@dataclass(frozen=True, slots=True)
class Delete:
    name: str


@dataclass(frozen=True, slots=True)
class Disable:
    name: str
    reason: str


Command = Create | Update | Delete | Disable


def decide(state: Webhook | None, command: Command) -> Event:
    match command:
        case Create():
            if state is not None:
                raise AlreadyExists(f"{command.webhook.name} already exists")
            return WebhookCreated(command.webhook, command.sealed_secret)
        case Update():
            current = _existing(state, command.name)
            unknown = [p for p in command.mask if p not in UPDATABLE]
            if unknown or not command.mask:
                raise InvalidArgument.of(
                    "update_mask",
                    f"must name some of {', '.join(UPDATABLE)}" + (f", not {unknown}" if unknown else ""),
                )
            changed = current
            for path in command.mask:
                if path == "secret":
                    continue
                changed = replace(changed, **{path: getattr(command.changes, path)})
            if "state" in command.mask and changed.state is State.ACTIVE:
                changed = replace(changed, disabled_reason="")
            return WebhookUpdated(changed, tuple(command.mask), command.sealed_secret)
        case Delete():
            _existing(state, command.name)
            return WebhookDeleted(command.name)
        case Disable():
            current = _existing(state, command.name)
            if current.state is State.DISABLED:
                raise FailedPrecondition(f"{command.name} is already disabled")
            return WebhookDisabled(command.name, command.reason)


def _existing(state: Webhook | None, name: str) -> Webhook:
    if state is None:
        raise NotFound(f"{name} not found")
    return state


def evolve(state: Webhook | None, event: Event, occurred_at: datetime) -> Webhook | None:
    match event:
        case WebhookCreated():
            return replace(
                event.webhook,
                sealed_secrets=(event.sealed_secret,) if event.sealed_secret else (),
                create_time=occurred_at,
                update_time=occurred_at,
            )
        case WebhookUpdated():
            assert state is not None
            secrets = state.sealed_secrets
            rotated = state.rotated_at
            if "secret" in event.mask:
                secrets = (event.sealed_secret, *state.sealed_secrets[:1]) if event.sealed_secret else ()
                rotated = occurred_at
            return replace(
                event.webhook,
                sealed_secrets=secrets,
                rotated_at=rotated,
                create_time=state.create_time,
                update_time=occurred_at,
            )
        case WebhookDeleted():
            return None
        case WebhookDisabled():
            assert state is not None
            return replace(state, state=State.DISABLED, disabled_reason=event.reason, update_time=occurred_at)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt came to."""

    status_code: int
    error: str = ""
    retry_after_s: float | None = None


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    """A 4xx other than 408/429/410: the endpoint refused it; not retried."""
    DEAD = "dead"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    base_s: float = 1.0
    cap_s: float = 300.0
    max_retry_after_s: float = 3600.0

    def outcome(self, attempt_number: int, attempt: Attempt) -> Outcome:
        code = attempt.status_code
        if 200 <= code < 300:
            return Outcome.DELIVERED
        if code == 410:
            return Outcome.DISABLED
        retryable = code == 0 or code in (408, 429) or code >= 500
        if not retryable:
            return Outcome.FAILED
        return Outcome.RETRYING if attempt_number < self.max_attempts else Outcome.DEAD

    def delay_s(self, attempt_number: int, attempt: Attempt, jitter: float) -> float:
        """Exponential backoff with full jitter (`jitter` in [0, 1)); a Retry-After the
        endpoint sent wins when it asks for longer (bounded)."""
        backoff = min(self.cap_s, self.base_s * 2 ** (attempt_number - 1)) * (0.5 + jitter / 2)
        if attempt.retry_after_s is not None:
            return max(backoff, min(attempt.retry_after_s, self.max_retry_after_s))
        return backoff


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One attempt, as the delivery log keeps it."""

    webhook: str
    event_id: str
    event_type: str
    position: int
    attempt: int
    status_code: int
    latency_ms: float
    error: str
    outcome: str
    attempt_time: datetime


@dataclass(frozen=True, slots=True)
class Published:
    """A public event as the relay published it, numbered in publish order."""

    position: int
    event_id: str
    type: str
    subject: str
    occurred_at: datetime
    data: str
    """Its JSON data."""
