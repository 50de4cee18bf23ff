"""Hypothesis strategies for requests, generated from the method descriptors alone.

Every service's every method; random subsets of fields, huge and control-character
strings, odd Unicode, extreme numbers, garbage tokens, filters and resource names, and
raw bytes that may not decode at all. Values a real client would send (existing resource
names, real tokens) are mixed in, so that requests also reach deeper validation.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.audit.v1 import audit_pb2
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.relay.v1 import webhooks_pb2
from modelreg.gen.versioning.v1 import versioning_pb2
from tests.hostile import HOSTILE_JSON

SERVICE_DESCRIPTORS = {
    "catalog": catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"],
    "versioning": versioning_pb2.DESCRIPTOR.services_by_name["VersioningService"],
    "lineage": lineage_pb2.DESCRIPTOR.services_by_name["LineageService"],
    "promotion": promotion_pb2.DESCRIPTOR.services_by_name["PromotionService"],
    "audit": audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
    "events": webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"],
}
METHODS: list[tuple[str, MethodDescriptor]] = [
    (service, method) for service, descriptor in SERVICE_DESCRIPTORS.items() for method in descriptor.methods
]


def path_of(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


@dataclass
class Pool:
    """Values that exist in the registry under test, so requests are not all rejected early."""

    strings: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    hostile: bool = True
    """False: strings are only plausible ones, so requests get past the first field check."""


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


TOKEN_BODIES = [
    *HOSTILE_JSON,
    b'{"q":"x","k":[1e400]}',
    b'{"q":"x","k":[99999999999999999999]}',
    b'{"q":"x","k":["\\u0000"]}',
    b"null",
    b"{}",
    b'{"modelreg.catalog.v1":{"0":5}}',
]
CONTROL = "".join(chr(c) for c in [*range(0, 32), 127, 0x85, 0x2028, 0xFEFF, 0xFFFF])
ODD = "١٢３²ǅ\u0301\u200d\U0001f600\U000e0001ß\u0130ﬁ"
FILTERS = [
    'name = "a"',
    "tags.a = 1",
    "properties.x > 1e400",
    "create_time > 99999-01-01T00:00:00Z",
    'create_time >= "0001-01-01T00:00:00+01:00"',
    "update_time < 0001-01-01T00:00:00+14:00",
    "version = 99999999999999999999",
    "version = ١٢",
    "NOT NOT NOT (((((((a)))))))",
    "(" * 600 + "name = 1" + ")" * 600,
    "a IN (" + ",".join(["1"] * 2000) + ")",
    'name LIKE "%\\\\%"',
    "metrics.acc >= NaN",
    'creator = "x" AND superseded = true',
]

URLS = [
    "https://hooks.example.invalid/modelreg",
    "http://127.0.0.1:9/hook",
    "http://127.0.0.1:99999/",
    "http://127.0.0.1:x/",
    "http://[::1/",
    "http://[::1]:80/",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/",
    "http://user:pass@127.0.0.1:9/",
    "https://xn--/",
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
    "http:///",
    "https://" + "a" * 300 + ".com/",
]
"""Webhook endpoints (the events relay): odd ports and hosts, private addresses, other schemes."""

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)


_CACHE: dict[tuple[object, ...], st.SearchStrategy[Any]] = {}


def _cached(key: tuple[object, ...], make: Any) -> st.SearchStrategy[Any]:
    """Strategies are built once per (kind, pool): building them per draw dominated the run."""
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def strings(pool: Pool) -> st.SearchStrategy[str]:
    return _cached(("strings", id(pool), pool.hostile), lambda: _strings(pool))


def _strings(pool: Pool) -> st.SearchStrategy[str]:
    plausible = st.sampled_from(pool.strings) if pool.strings else st.just("namespaces/a/models/b")
    plain = st.sampled_from(
        ["", "PRODUCTION", "STAGING", "champion", "1.2.0", "a", "main", "sha256:" + "0" * 64]
    )
    urls = st.sampled_from(URLS)
    if not pool.hostile:
        return st.one_of(plausible, plain, urls, st.text(alphabet="abcxyz019._-", min_size=1, max_size=12))
    huge = st.sampled_from([70_000, 300_000]).map(lambda n: "x" * n)
    normal = st.one_of(
        plausible,
        plausible.map(lambda s: s + "\n"),
        st.tuples(plausible, st.sampled_from(list(CONTROL + ODD))).map(lambda t: t[0] + t[1]),
        st.tuples(
            plausible,
            st.sampled_from(
                [
                    "/versions/١",
                    "/versions/0",
                    "/versions/99999999999999999999",
                    "@latest",
                    "@v1.latest",
                    "@1.2.3",
                    "@PRODUCTION",
                    "/x/y",
                ]
            ),
        ).map("".join),
        text,
        st.text(alphabet=CONTROL + ODD + "ab/", max_size=20),
        st.sampled_from(FILTERS),
        urls,
        st.sampled_from(TOKEN_BODIES).map(b64),
        st.sampled_from(pool.tokens) if pool.tokens else st.just(""),
        st.sampled_from(["", " ", "PRODUCTION", "STAGING", "champion", "1.2.0", "v99999999999.0.0", "-1"]),
    )
    # Huge strings are rare: a request of many huge fields is mostly a test of the network.
    return st.integers(0, 60).flatmap(lambda i: huge if i == 0 else normal)


INT_EDGES = [0, 1, -1, 2, 7, 2**31 - 1, -(2**31), 2**32 - 1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1]
_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
TIMESTAMP_SECONDS = [
    0,
    -1,
    1,
    1767225600,
    253402300799,
    253402300800,
    -62135596800,
    -62135596801,
    2**63 - 1,
    -(2**63),
]


def scalar(f: FieldDescriptor, pool: Pool) -> st.SearchStrategy[Any]:
    return _cached(("scalar", f.full_name, id(pool), pool.hostile), lambda: _scalar(f, pool))


def _scalar(f: FieldDescriptor, pool: Pool) -> st.SearchStrategy[Any]:
    if f.type == FieldDescriptor.TYPE_STRING:
        return strings(pool)
    if f.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if f.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        floats = st.floats(
            allow_nan=True, allow_infinity=True, width=64 if f.type == FieldDescriptor.TYPE_DOUBLE else 32
        )
        return st.one_of(floats, st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324]))
    if f.type == FieldDescriptor.TYPE_ENUM and f.enum_type is not None:
        values = [v.number for v in f.enum_type.values]
        return st.sampled_from([*values, 99, -1])
    low, high = _RANGES[f.type]
    return st.one_of(
        st.sampled_from([v for v in INT_EDGES if low <= v <= high]),
        st.integers(min_value=max(low, -10), max_value=min(high, 1000)),
    )


def messages(descriptor: Descriptor, pool: Pool, depth: int = 0) -> st.SearchStrategy[Message]:
    return _cached(
        ("message", descriptor.full_name, depth, id(pool), pool.hostile),
        lambda: _messages(descriptor, pool, depth),
    )


def _messages(descriptor: Descriptor, pool: Pool, depth: int) -> st.SearchStrategy[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return st.builds(
            lambda s, n: cls(seconds=s, nanos=n),
            st.sampled_from(TIMESTAMP_SECONDS),
            st.sampled_from([0, 1, 999_999_999, 1_000_000_000, -1]),
        )
    if descriptor.full_name == "google.protobuf.FieldMask":
        return st.lists(
            st.sampled_from(
                [
                    *["description", "tags", "tags.a", "name", "bogus", "", "a..b", "\x00", "display_name"],
                    *["weights", "serving_code", "runtime_config", "config_schema"],  # deployments
                    *["url", "event_types", "model", "secret", "mlflow_headers", "state", "annotations"],
                ]
            ),
            max_size=4,
        ).map(lambda paths: cls(paths=paths))

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        fields = list(descriptor.fields)
        if depth > 3 or not fields:
            return message
        chosen = draw(st.lists(st.sampled_from(fields), unique_by=lambda f: f.name, max_size=len(fields)))
        for f in chosen:
            _set(draw, message, f, pool, depth)
        return message

    return build()


def _value(f: FieldDescriptor, pool: Pool, depth: int) -> st.SearchStrategy[Any]:
    if f.message_type is not None:
        return messages(f.message_type, pool, depth + 1)
    return scalar(f, pool)


def _set(draw: st.DrawFn, message: Message, f: FieldDescriptor, pool: Pool, depth: int) -> None:
    target = getattr(message, f.name)
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        key_f = f.message_type.fields_by_name["key"]
        value_f = f.message_type.fields_by_name["value"]
        size = draw(st.sampled_from([0, 1, 2, 3, 70]))
        for _ in range(size):
            key = draw(scalar(key_f, pool))
            if value_f.message_type is not None:
                target[key].CopyFrom(draw(messages(value_f.message_type, pool, depth + 1)))
            else:
                target[key] = draw(scalar(value_f, pool))
    elif f.is_repeated:
        items = draw(st.lists(_value(f, pool, depth), max_size=3))
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            for item in items:
                target.add().CopyFrom(item)
        else:
            target.extend(items)
    elif f.message_type is not None:
        target.CopyFrom(draw(messages(f.message_type, pool, depth + 1)))
    else:
        setattr(message, f.name, draw(scalar(f, pool)))


# gRPC refuses, on the client, metadata values that are not printable ASCII: sending one is a
# client error, not a server defect, so generated metadata is printable ASCII only.
ascii_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


def metadata(pool: Pool, admin: list[tuple[str, str]]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return _cached(("metadata", id(pool), pool.hostile), lambda: _metadata(pool, admin))


def _metadata(pool: Pool, admin: list[tuple[str, str]]) -> st.SearchStrategy[list[tuple[str, str]]]:
    if not pool.hostile:
        real = st.sampled_from(pool.tokens) if pool.tokens else st.just("")
        return st.lists(real, max_size=1).map(lambda ts: [*admin, *[(TOKEN_METADATA_KEY, t) for t in ts]])
    token = st.one_of(
        st.sampled_from(TOKEN_BODIES).map(b64),
        st.sampled_from(pool.tokens) if pool.tokens else st.just(""),
        ascii_text,
        st.binary(max_size=60).map(b64),
    )
    return st.builds(
        lambda auth, tokens, correlation: [*auth, *[(TOKEN_METADATA_KEY, t) for t in tokens], *correlation],
        st.one_of(
            st.just(admin),
            st.just(admin),
            st.just(admin),
            ascii_text.map(lambda t: [("authorization", "Bearer " + t)]),
        ),
        st.lists(token, max_size=2),
        st.one_of(st.just([]), ascii_text.map(lambda t: [("x-correlation-id", t)])),
    )


@dataclass(frozen=True)
class Request:
    service: str
    method: MethodDescriptor
    messages: tuple[bytes, ...]
    """The serialized request (a client stream's messages, in order)."""
    metadata: tuple[tuple[str, str], ...]
    raw: bool
    """The bytes are random, not a serialized message."""

    def describe(self) -> str:
        shown = [m[:300] for m in self.messages]
        return f"{path_of(self.method)} raw={self.raw} metadata={self.metadata!r} messages={shown!r}"


def requests(pool: Pool, admin: list[tuple[str, str]]) -> st.SearchStrategy[Request]:
    return _cached(("requests", id(pool)), lambda: _requests(pool, admin))


def _requests(pool: Pool, admin: list[tuple[str, str]]) -> st.SearchStrategy[Request]:
    tame = replace(pool, hostile=False)  # kept alive by the cached strategy, so its id stays its own

    @st.composite
    def build(draw: st.DrawFn) -> Request:
        service, method = draw(st.sampled_from(METHODS))
        values = tame if draw(st.integers(0, 2)) == 0 else pool
        raw = draw(st.integers(0, 9)) == 0
        count = draw(st.integers(1, 3)) if method.client_streaming else 1
        if raw:
            bodies = tuple(draw(st.binary(min_size=1, max_size=40)) for _ in range(count))
        else:
            bodies = tuple(
                draw(messages(method.input_type, values)).SerializeToString() for _ in range(count)
            )
        return Request(service, method, bodies, tuple(draw(metadata(values, admin))), raw)

    return build()
