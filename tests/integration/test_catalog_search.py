"""Search through gRPC against Tansu and PostgreSQL, checked against a plain Python oracle.

About 40 models with varied tags, typed properties (the same key holding
different types on different models), states and times are created once
through the API. Hypothesis then generates filter ASTs, renders them to text,
pages through the service's answer and compares it with an independent
evaluation of the same AST over the same models.
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from tests.helpers import unique
from tests.integration.filter_oracle import OPS, like, quote, rfc3339

WORDS = ["churn", "fraud", "rank", "vision"]
TEAMS = ["growth", "risk", "core"]
ENVS = ["prod", "dev"]
TIERS = ["1", "2", "10"]
FRAMEWORKS = ["torch", "sklearn", "xgboost"]
BASE_TIME = datetime(2025, 6, 1, tzinfo=UTC)
TRAINED = [BASE_TIME + timedelta(days=d, microseconds=d * 7) for d in range(0, 50, 5)]


@dataclass
class Model:
    id: str
    tags: dict[str, str]
    properties: dict[str, tuple[str, Any]]  # key -> (kind, value)
    owners: list[str]
    state: str
    create_time: datetime
    update_time: datetime


def prop_value(kind: str, value: Any) -> pb.PropertyValue:
    if kind == "timestamp":
        message = pb.PropertyValue()
        message.timestamp_value.FromDatetime(value)
        return message
    return pb.PropertyValue(**{f"{kind}_value": value})


def describe(rng: random.Random, i: int) -> tuple[str, dict[str, str], dict[str, tuple[str, Any]], list[str]]:
    model_id = f"{rng.choice(WORDS[:4])}-{i:02d}" if i % 7 else f"m{i}"
    tags = {}
    if rng.random() < 0.8:
        tags["team"] = rng.choice(TEAMS)
    if rng.random() < 0.6:
        tags["env"] = rng.choice(ENVS)
    if rng.random() < 0.6:
        tags["tier"] = rng.choice(TIERS)
    props: dict[str, tuple[str, Any]] = {}
    acc = rng.random()
    # One key, several types: type-directed comparison must keep them apart.
    if acc < 0.5:
        props["acc"] = ("double", rng.choice([0.5, 0.75, 0.9, 1.0, 2.5]))
    elif acc < 0.7:
        props["acc"] = ("int", rng.choice([0, 1, 5]))
    elif acc < 0.8:
        props["acc"] = ("string", rng.choice(["high", "low"]))
    elif acc < 0.9:
        props["acc"] = ("bool", rng.choice([True, False]))
    if rng.random() < 0.7:
        props["epochs"] = ("int", rng.choice([1, 5, 10, 50, -3]))
    if rng.random() < 0.5:
        props["calibrated"] = ("bool", rng.random() < 0.5)
    if rng.random() < 0.6:
        props["trained_at"] = ("timestamp", rng.choice(TRAINED))
    if rng.random() < 0.7:
        props["framework"] = ("string", rng.choice(FRAMEWORKS))
    owners = rng.sample(["alice", "bob", "carol"], rng.randint(1, 2))
    return model_id, tags, props, owners


@pytest.fixture(scope="module")
async def dataset(catalog_stub) -> tuple[str, list[Model]]:
    ns = unique("search")
    rng = random.Random(20260127)
    models: list[Model] = []
    for i in range(40):
        model_id, tags, props, owners = describe(rng, i)
        body = pb.RegisteredModel(tags=tags, owners=owners)
        for key, (kind, value) in props.items():
            body.properties[key].CopyFrom(prop_value(kind, value))
        created = await catalog_stub.CreateRegisteredModel(
            pb.CreateRegisteredModelRequest(
                parent=f"namespaces/{ns}", registered_model_id=model_id, registered_model=body
            )
        )
        name = created.name
        final = created
        if i % 5 == 1:
            final = await catalog_stub.UpdateRegisteredModel(
                pb.UpdateRegisteredModelRequest(
                    registered_model=pb.RegisteredModel(name=name, description=f"updated {i}"),
                    update_mask=FieldMask(paths=["description"]),
                )
            )
        if i % 6 == 2:
            final = await catalog_stub.ArchiveRegisteredModel(pb.ArchiveRegisteredModelRequest(name=name))
        if i % 9 == 4:
            final = await catalog_stub.DeleteRegisteredModel(pb.DeleteRegisteredModelRequest(name=name))
        models.append(
            Model(
                id=model_id,
                tags=dict(final.tags),
                properties=props,
                owners=list(final.owners),
                state=pb.RegisteredModel.State.Name(final.state).removeprefix("STATE_").lower(),
                create_time=final.create_time.ToDatetime(tzinfo=UTC),
                update_time=final.update_time.ToDatetime(tzinfo=UTC),
            )
        )
    return ns, models


# The test's own AST, renderer and evaluator: independent of the service's parser.

Lit = tuple[str, Any]  # ("string" | "number" | "bool" | "timestamp" | "state", value)


def render_lit(lit: Lit, quote_time: bool = False) -> str:
    kind, value = lit
    if kind == "string":
        return quote(value)
    if kind == "number":
        return str(value)
    if kind == "bool":
        return "true" if value else "false"
    if kind == "timestamp":
        return f'"{rfc3339(value)}"' if quote_time else rfc3339(value)
    return str(value).upper()


def render_field(field: tuple[str, ...]) -> str:
    return field[0] if len(field) == 1 else f"{field[0]}.{field[1]}"


def render(node: tuple[Any, ...]) -> str:
    match node[0]:
        case "cmp":
            _, field, op, lit, quote = node
            return f"{render_field(field)} {op} {render_lit(lit, quote)}"
        case "in":
            _, field, lits, negated = node
            keyword = "NOT IN" if negated else "IN"
            return f"{render_field(field)} {keyword} ({', '.join(render_lit(x) for x in lits)})"
        case "like":
            _, field, pattern, insensitive = node
            keyword = "ILIKE" if insensitive else "LIKE"
            return f"{render_field(field)} {keyword} {render_lit(('string', pattern))}"
        case "has":
            return f"{render_field(node[1])}:*"
        case "owners":
            return f'owners:"{node[1]}"'
        case "not":
            return f"NOT ({render(node[1])})"
        case "and" | "or":
            return "(" + f" {node[0].upper()} ".join(render(x) for x in node[1]) + ")"
    raise AssertionError(node)


def operand(model: Model, field: tuple[str, ...], lit_kind: str) -> Any:
    """The value a literal of lit_kind compares with, or None when there is none of that type."""
    match field[0]:
        case "name":
            return model.id
        case "tags":
            return model.tags.get(field[1])
        case "state":
            return model.state
        case "create_time":
            return model.create_time
        case "update_time":
            return model.update_time
    prop = model.properties.get(field[1])
    if prop is None:
        return None
    kind, value = prop
    if lit_kind == "number" and kind in ("int", "double"):
        return Decimal(repr(value)) if kind == "double" else Decimal(value)
    if (lit_kind, kind) in (("string", "string"), ("bool", "bool"), ("timestamp", "timestamp")):
        return value
    return None


def lit_for(field: tuple[str, ...], lit: Lit) -> Lit:
    # Names and tags are strings: a literal compares as written.
    if field[0] in ("name", "tags") and lit[0] != "string":
        return ("string", render_lit(lit))
    return lit


def evaluate(node: tuple[Any, ...], model: Model) -> bool:
    match node[0]:
        case "cmp":
            _, field, op, lit, _ = node
            kind, value = lit_for(field, lit)
            current = operand(model, field, kind)
            return current is not None and OPS[op](current, value)
        case "in":
            _, field, lits, negated = node
            hit = any(evaluate(("cmp", field, "=", x, False), model) for x in lits)
            return hit != negated
        case "like":
            _, field, pattern, insensitive = node
            current = operand(model, field, "string")
            return current is not None and like(current, pattern, insensitive)
        case "has":
            field = node[1]
            return field[1] in (model.tags if field[0] == "tags" else model.properties)
        case "owners":
            return node[1] in model.owners
        case "not":
            return not evaluate(node[1], model)
        case "and":
            return all(evaluate(x, model) for x in node[1])
        case "or":
            return any(evaluate(x, model) for x in node[1])
    raise AssertionError(node)


def filters(models: list[Model]) -> st.SearchStrategy[tuple[Any, ...]]:
    ids = [m.id for m in models]
    times = sorted({m.create_time for m in models} | {m.update_time for m in models})
    strings = st.sampled_from([*ids[:8], *TEAMS, *ENVS, *TIERS, *FRAMEWORKS, "high", "low", "zzz", "", "m"])
    numbers = st.sampled_from(
        [Decimal(x) for x in ("0", "0.5", "0.75", "1", "1.0", "2.5", "5", "10", "-3", "50")]
    )
    prop_lits = st.one_of(
        strings.map(lambda v: ("string", v)),
        numbers.map(lambda v: ("number", v)),
        st.booleans().map(lambda v: ("bool", v)),
        st.sampled_from([*TRAINED, TRAINED[0] - timedelta(microseconds=1)]).map(lambda v: ("timestamp", v)),
    )
    text_lits = st.one_of(strings.map(lambda v: ("string", v)), numbers.map(lambda v: ("number", v)))
    time_lits = st.sampled_from(
        [*times, times[0] - timedelta(seconds=1), times[-1] + timedelta(seconds=1)]
    ).map(lambda v: ("timestamp", v))
    ops = st.sampled_from(list(OPS))
    name_field = st.just(("name",))
    tag_field = st.sampled_from([("tags", "team"), ("tags", "env"), ("tags", "tier"), ("tags", "none")])
    prop_field = st.sampled_from(
        [("properties", k) for k in ("acc", "epochs", "calibrated", "trained_at", "framework", "none")]
    )
    time_field = st.sampled_from([("create_time",), ("update_time",)])
    state_lits = st.sampled_from(["active", "archived", "deleted"]).map(lambda v: ("state", v))

    def patterns(values: list[str]) -> st.SearchStrategy[str]:
        return st.builds(
            lambda v, cut, kind: {0: v[:cut] + "%", 1: "%" + v[cut:], 2: v[:cut] + "_" + v[cut + 1 :], 3: v}[
                kind
            ],
            st.sampled_from(values),
            st.integers(0, 4),
            st.integers(0, 3),
        )

    comparisons = st.one_of(
        st.tuples(st.just("cmp"), st.one_of(name_field, tag_field), ops, text_lits, st.just(False)),
        st.tuples(st.just("cmp"), prop_field, ops, prop_lits, st.just(False)).filter(
            lambda n: n[3][0] != "bool" or n[2] in ("=", "!=")
        ),
        st.tuples(st.just("cmp"), time_field, ops, time_lits, st.booleans()),
        st.tuples(
            st.just("cmp"), st.just(("state",)), st.sampled_from(["=", "!="]), state_lits, st.just(False)
        ),
        st.tuples(st.just("in"), tag_field, st.lists(text_lits, min_size=1, max_size=3), st.booleans()),
        st.tuples(st.just("in"), prop_field, st.lists(prop_lits, min_size=1, max_size=3), st.booleans()),
        st.tuples(
            st.just("like"),
            st.one_of(name_field, tag_field, prop_field),
            patterns([*ids, *TEAMS, *FRAMEWORKS, "HIGH", "Torch"]),
            st.booleans(),
        ),
        st.tuples(st.just("has"), st.one_of(tag_field, prop_field)),
        st.tuples(st.just("owners"), st.sampled_from(["alice", "bob", "carol", "dave"])),
    )
    return st.recursive(
        comparisons,
        lambda inner: st.one_of(
            st.tuples(st.just("not"), inner),
            st.tuples(st.just("and"), st.lists(inner, min_size=2, max_size=3)),
            st.tuples(st.just("or"), st.lists(inner, min_size=2, max_size=3)),
        ),
        max_leaves=6,
    )


ORDERINGS = {
    "": ((("id", False),)),
    "name desc": (("id", True),),
    "create_time desc": (("create_time", True), ("id", True)),
    "update_time": (("update_time", False), ("id", False)),
    "update_time desc, name": (("update_time", True), ("id", False)),
}


def expected_order(models: list[Model], order_by: str) -> list[str]:
    keys = ORDERINGS[order_by]

    def compare(a: Model, b: Model) -> int:
        for attr, desc in keys:
            x, y = getattr(a, attr), getattr(b, attr)
            if x != y:
                return (1 if x > y else -1) * (-1 if desc else 1)
        return 0

    return [m.id for m in sorted(models, key=functools.cmp_to_key(compare))]


async def list_all(stub, ns: str, page_size: int, **request: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        page = await stub.ListRegisteredModels(
            pb.ListRegisteredModelsRequest(
                parent=f"namespaces/{ns}", page_size=page_size, page_token=token, **request
            )
        )
        pages.append([m.name.rsplit("/", 1)[1] for m in page.registered_models])
        assert len(pages[-1]) <= page_size
        token = page.next_page_token
        if not token:
            return pages
        assert len(pages) <= 200, "paging does not end"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_random_filters_match_a_python_evaluation(catalog_stub, dataset, data) -> None:
    ns, models = dataset
    node = data.draw(filters(models), label="filter")
    order_by = data.draw(st.sampled_from(list(ORDERINGS)), label="order_by")
    show_deleted = data.draw(st.booleans(), label="show_deleted")
    page_size = data.draw(st.sampled_from([1, 3, 7, 50]), label="page_size")
    text = render(node)
    visible = [m for m in models if show_deleted or m.state != "deleted"]
    expected = expected_order([m for m in visible if evaluate(node, m)], order_by)
    pages = await list_all(
        catalog_stub, ns, page_size, filter=text, order_by=order_by, show_deleted=show_deleted
    )
    got = [m for page in pages for m in page]
    assert got == expected, text


async def test_the_dataset_exercises_every_branch(dataset) -> None:
    """Guards the property test against a dataset too uniform to tell right from wrong."""
    _, models = dataset
    kinds = {m.properties["acc"][0] for m in models if "acc" in m.properties}
    assert kinds == {"double", "int", "string", "bool"}
    assert {m.state for m in models} == {"active", "archived", "deleted"}
    assert len({m.create_time for m in models}) == len(models)


@pytest.mark.parametrize(
    ("filter_", "order_by"),
    [
        ('tags.team IN ("growth", "risk") OR properties.epochs >= 5', ""),
        ("NOT tags.env = 'prod'", "create_time desc"),
        ("state != DELETED", "update_time desc, name"),
    ],
)
async def test_every_page_size_gives_disjoint_complete_ordered_pages(
    catalog_stub, dataset, filter_: str, order_by: str
) -> None:
    ns, models = dataset
    whole = (await list_all(catalog_stub, ns, 1000, filter=filter_, order_by=order_by))[0]
    assert len(whole) >= 10
    for page_size in range(1, len(whole) + 1):
        pages = await list_all(catalog_stub, ns, page_size, filter=filter_, order_by=order_by)
        assert [len(p) for p in pages[:-1]] == [page_size] * (len(pages) - 1)
        flat = [m for p in pages for m in p]
        assert flat == whole  # in order, nothing twice, nothing missing
        assert len(pages) == -(-len(whole) // page_size)


async def test_page_tokens_are_bound_to_the_query(catalog_stub, dataset) -> None:
    ns, _ = dataset
    first = await catalog_stub.ListRegisteredModels(
        pb.ListRegisteredModelsRequest(parent=f"namespaces/{ns}", page_size=2, filter="tags.team:*")
    )
    assert first.next_page_token
    same = pb.ListRegisteredModelsRequest(
        parent=f"namespaces/{ns}", page_size=5, filter="tags.team:*", page_token=first.next_page_token
    )
    await catalog_stub.ListRegisteredModels(same)  # another page_size is fine
    for change in ({"filter": "tags.env:*"}, {"order_by": "create_time"}, {"show_deleted": True}):
        request = pb.ListRegisteredModelsRequest()
        request.CopyFrom(same)
        for key, value in change.items():
            setattr(request, key, value)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await catalog_stub.ListRegisteredModels(request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith("page_token")


@pytest.mark.parametrize(
    ("filter_", "position", "expected"),
    [
        ("tags.team = ", 12, "expected a value"),
        ("name = 'a' AND (state = ACTIVE", 30, "expected AND, OR or ')'"),
        ("weight > 3", 0, "expected a field"),
        ("properties.acc < true", 15, "expected = or != before true"),
        ("create_time > 'last week'", 14, "expected an RFC 3339 timestamp"),
    ],
)
async def test_filter_errors_name_the_field_position_and_expected_token(
    catalog_stub, filter_: str, position: int, expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await catalog_stub.ListRegisteredModels(
            pb.ListRegisteredModelsRequest(parent="namespaces/x", filter=filter_)
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"filter: at position {position}: {expected}")


@pytest.mark.parametrize("order_by", ["size", "name sideways", "name, name"])
async def test_bad_order_by_is_invalid_argument(catalog_stub, order_by: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await catalog_stub.ListRegisteredModels(
            pb.ListRegisteredModelsRequest(parent="namespaces/x", order_by=order_by)
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("order_by")


async def test_full_text_over_descriptions_and_annotations(catalog_stub) -> None:
    ns = unique("text")
    texts = {
        "churn": ("Predicts customer **churn** for the growth team.", ""),
        "fraud": (
            "Card fraud scoring.",
            "Reviewed: calibrated on 2025 transactions; predictions drift in winter.",
        ),
        "rank": ("Search ranking.", "Not calibrated."),
    }
    await asyncio.gather(
        *(
            catalog_stub.CreateRegisteredModel(
                pb.CreateRegisteredModelRequest(
                    parent=f"namespaces/{ns}",
                    registered_model_id=model,
                    registered_model=pb.RegisteredModel(description=d, annotations=a, tags={"n": model}),
                )
            )
            for model, (d, a) in texts.items()
        )
    )

    async def search(filter_: str) -> list[str]:
        page = await catalog_stub.ListRegisteredModels(
            pb.ListRegisteredModelsRequest(parent=f"namespaces/{ns}", filter=filter_)
        )
        return [m.name.rsplit("/", 1)[1] for m in page.registered_models]

    assert await search('text:"churn"') == ["churn"]
    assert await search('text:"predicting"') == ["churn", "fraud"]  # stemmed; description or annotations
    assert await search('text:"calibration"') == ["fraud", "rank"]
    assert await search("text:'calibrated -transactions'") == ["rank"]
    assert await search('text:"calibrated" AND NOT tags.n = "rank"') == ["fraud"]
    assert await search('text:"\\"growth team\\""') == ["churn"]
    assert await search('text:"team growth" OR name = "rank"') == ["churn", "rank"]


async def test_every_operator_at_its_boundary_on_every_field_kind(catalog_stub, dataset) -> None:
    """Deterministic companion of the property test: each operator with a literal equal to a
    stored value, where `<` and `<=` (or `=` and `!=`) must differ."""
    ns, models = dataset
    boundaries: list[tuple[tuple[str, ...], Lit, bool]] = [
        (("name",), ("string", models[5].id), False),
        (("tags", "tier"), ("number", Decimal("10")), False),
        (("properties", "epochs"), ("number", Decimal("5")), False),
        (("properties", "acc"), ("number", Decimal("1")), False),
        (("properties", "acc"), ("number", Decimal("0.75")), False),
        (("properties", "framework"), ("string", "torch"), False),
        (("properties", "trained_at"), ("timestamp", TRAINED[2]), False),
        (("create_time",), ("timestamp", models[10].create_time), False),
        (("update_time",), ("timestamp", models[6].update_time), True),
    ]
    nodes: list[tuple[Any, ...]] = [("cmp", f, op, lit, q) for f, lit, q in boundaries for op in OPS]
    nodes += [("cmp", ("properties", "calibrated"), op, ("bool", True), False) for op in ("=", "!=")]
    nodes += [("cmp", ("state",), op, ("state", "archived"), False) for op in ("=", "!=")]
    for node in nodes:
        text = render(node)
        expected = expected_order([m for m in models if m.state != "deleted" and evaluate(node, m)], "")
        got = [m for page in await list_all(catalog_stub, ns, 1000, filter=text) for m in page]
        assert got == expected, text
        assert 0 < len(expected) or node[2] in ("<", ">"), f"{text} selects nothing: a weak boundary"
