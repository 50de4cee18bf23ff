"""The versioning service's tables in PostgreSQL, and how a row of model_versions maps to a version.

- model_versions / model_version_history / retention_policies: the read model,
  folded from `modelreg.versioning.v1` (adapters/projection); the history keeps
  every earlier state of every version, for reads as of a past moment.
- catalog_models: which models exist, fed only by `modelreg.catalog.v1`.
- version_pointers: which version each stage or alias names, fed only by
  `modelreg.promotion.v1` (adapters/caches).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.projections.schema import quote_schema
from modelreg.signatures import Signature, TensorSpec
from modelreg.signatures_proto import signature_from_proto
from modelreg.versioning.domain.state import ModelVersion
from modelreg.versioning.domain.values import (
    ArtifactFile,
    CodeReference,
    Environment,
    SemVer,
    Status,
    VersionSpec,
)
from modelreg.versioning.resources import file_from_proto

VERSION_COLUMNS = (
    "model, number, semver, major, minor, pipeline, status, spec, create_time, update_time,"
    " created_by, updated_by, state_reason, created_revision"
)
HISTORY_COLUMNS = f"{VERSION_COLUMNS}, revision"


def versioning_tables(schema: str) -> str:
    """The read model folded from the own topic."""
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.model_versions (
    model        text NOT NULL COLLATE "C",
    number       bigint NOT NULL,
    semver       text NOT NULL,
    major        int NOT NULL,
    minor        int NOT NULL,
    pipeline     int NOT NULL,
    status       text NOT NULL,
    spec         jsonb NOT NULL,
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL,
    created_by   text NOT NULL,
    updated_by   text NOT NULL,
    state_reason text NOT NULL,
    created_revision bigint NOT NULL,
    PRIMARY KEY (model, number),
    -- The fold already guarantees it; the constraint makes a bug loud.
    UNIQUE (model, major, minor, pipeline)
);
-- How a create (and its retry) finds the version it made.
CREATE INDEX IF NOT EXISTS model_versions_created_revision ON {s}.model_versions (model, created_revision);
-- ListModelVersions' `tags.k = "v"` compiles to a containment test this index serves.
CREATE INDEX IF NOT EXISTS model_versions_tags ON {s}.model_versions
    USING gin ((spec->'tags') jsonb_path_ops);
-- Every earlier state of each version: when an event changes a version, the state it ends,
-- with that event's stream revision (`revision`). update_time is when the state began (the
-- occurred_at of the event that made it), so the version as it stood at T is, of its current
-- row and its history, the latest state with update_time <= T (GetModelVersion.as_of).
CREATE TABLE IF NOT EXISTS {s}.model_version_history (
    model        text NOT NULL COLLATE "C",
    number       bigint NOT NULL,
    revision     bigint NOT NULL,
    semver       text NOT NULL,
    major        int NOT NULL,
    minor        int NOT NULL,
    pipeline     int NOT NULL,
    status       text NOT NULL,
    spec         jsonb NOT NULL,
    create_time  timestamptz NOT NULL,
    update_time  timestamptz NOT NULL,
    created_by   text NOT NULL,
    updated_by   text NOT NULL,
    state_reason text NOT NULL,
    created_revision bigint NOT NULL,
    PRIMARY KEY (model, number, revision)
);
CREATE TABLE IF NOT EXISTS {s}.retention_policies (
    model               text PRIMARY KEY COLLATE "C",
    keep_last_per_major int NOT NULL
);
"""


def catalog_models_table(schema: str) -> str:
    """Which models exist, from the catalog topic."""
    return f"""
CREATE TABLE IF NOT EXISTS {quote_schema(schema)}.catalog_models (
    name  text PRIMARY KEY COLLATE "C",
    state text NOT NULL
);
"""


def version_pointers_table(schema: str) -> str:
    """Which version each stage, alias and deployment split names, from the promotion topic."""
    return f"""
CREATE TABLE IF NOT EXISTS {quote_schema(schema)}.version_pointers (
    model   text NOT NULL COLLATE "C",
    pointer text NOT NULL COLLATE "C",
    version bigint NOT NULL,
    PRIMARY KEY (model, pointer)
);
"""


def spec_to_json(spec: VersionSpec, *, compact: bool = True) -> str:
    """The spec as the read model stores it: json.dumps(asdict(spec), sort_keys=True,
    separators=(",", ":")) less the optional members at their default (OPTIONAL_MEMBERS),
    which the unit tests hold it to, byte for byte; with `compact` false, all of it, as
    every spec was stored before 2026-12-07 (for a rolling upgrade from such a release,
    whose readers need every member: MODELREG_VERSION_SPEC_FORM=full).

    Most versions name no code, environment, files, metrics or signature, and PostgreSQL's
    jsonb parse is most of what writing a version row costs it: the compact form took a
    replay's COPY of a version from 8.8-9.1 to 6.1-6.6 us of PostgreSQL's CPU and its tag
    index build from 1.0-1.2 to 0.8-0.9 (bench/RESULTS.md, 2026-12-07). A member left out
    reads back as its default (spec_from_json); rows written in the full form read the same.

    Written out as text for the usual spec, whose maps hold strings: the JSON encoder took
    18 % of a replay's fold on its own (sorting and checking every key of ten small dicts).
    Metrics, files and a signature, when present, and any value that is not what the
    dataclass declares (a TypeError) go through the encoder, as everything did before.
    """
    try:
        return _spec_json_text(
            spec,
            code=_code_json(spec.code),
            environment=_environment_json(spec.environment),
            files=_SPEC_JSON.encode(_files(spec.files)) if spec.files else "[]",
            metrics=_SPEC_JSON.encode(spec.metrics) if spec.metrics else "{}",
            signature="null" if spec.signature is None else _SPEC_JSON.encode(_signature(spec.signature)),
            compact=compact,
        )
    except TypeError:
        return _spec_json_encoded(spec, compact=compact)


def spec_json_of_message(m: versioning_pb2.ModelVersion, *, compact: bool = True) -> str:
    """spec_to_json(spec_from_proto(m), compact=compact), read straight off the message.

    A replay stores the spec of every created version once and reads it nowhere else, so it
    skips the VersionSpec and its parts (a fifth of its fold). The property test holds the
    two equal; a field resources.spec_from_proto converts is converted the same way here.
    """
    # Most versions name no code or environment (the service sets both messages, empty). A
    # proto3 message with every field at its default serialises to nothing: one C call
    # tells, where reading the six fields took 1 us an event.
    code, env = m.code, m.environment
    return _spec_json_text(
        m,
        code=_code_json(code) if code.ByteSize() else _NO_CODE,
        environment=_environment_json(env) if env.ByteSize() else _NO_ENVIRONMENT,
        files=_SPEC_JSON.encode(_files([file_from_proto(f) for f in m.files])) if m.files else "[]",
        metrics=_SPEC_JSON.encode({k: m.metrics[k] for k in m.metrics}) if m.metrics else "{}",
        signature=(
            _SPEC_JSON.encode(_signature(signature_from_proto(m.signature)))
            if m.HasField("signature")
            else "null"
        ),
        compact=compact,
    )


class _SpecFields(Protocol):
    """What a VersionSpec and a ModelVersion message both have (their maps read alike)."""

    @property
    def description(self) -> str: ...
    @property
    def framework(self) -> str: ...
    @property
    def flavor(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def params(self) -> Mapping[str, str]: ...


def _spec_json_text(
    spec: _SpecFields, *, code: str, environment: str, files: str, metrics: str, signature: str, compact: bool
) -> str:
    """The spec's JSON object with its keys in order, the optional members given as their
    JSON; `compact` leaves out those at their default."""
    if compact:
        left_out = _DEFAULT_TEXT
        code = "" if code == left_out["code"] else code
        environment = "" if environment == left_out["environment"] else environment
        files = "" if files == left_out["files"] else files
        metrics = "" if metrics == left_out["metrics"] else metrics
        signature = "" if signature == left_out["signature"] else signature
    # One join of a tuple, as before the compact form: a list built part by part cost 0.7 us more.
    return "".join(
        (
            "{",
            '"code":' + code + "," if code else "",
            '"description":',
            _string(spec.description),
            ",",
            '"environment":' + environment + "," if environment else "",
            '"files":' + files + "," if files else "",
            '"flavor":',
            _string(spec.flavor),
            ',"framework":',
            _string(spec.framework),
            ",",
            '"metrics":' + metrics + "," if metrics else "",
            '"params":',
            _strings(spec.params),
            ",",
            '"signature":' + signature + "," if signature else "",
            '"tags":',
            _strings(spec.tags),
            "}",
        )
    )


def _code_json(code: CodeReference | versioning_pb2.CodeReference) -> str:
    return "".join(
        (
            '{"commit":',
            _string(code.commit),
            ',"dirty":',
            _boolean(code.dirty),
            ',"repo":',
            _string(code.repo),
            "}",
        )
    )


def _environment_json(env: Environment | versioning_pb2.Environment) -> str:
    return "".join(
        (
            '{"lock_digest":',
            _string(env.lock_digest),
            ',"packages":',
            _strings(env.packages),
            ',"python_version":',
            _string(env.python_version),
            "}",
        )
    )


_string = json.encoder.encode_basestring_ascii
"""A str as the encoder writes it (ensure_ascii, the default); TypeError for anything else."""


def _strings(mapping: Mapping[str, str]) -> str:
    """A str -> str map as the encoder writes it with sort_keys."""
    if not mapping:
        return "{}"
    # By key rather than items(): a message's map has the ABC's items(), a third slower.
    return "{" + ",".join([_string(k) + ":" + _string(mapping[k]) for k in sorted(mapping)]) + "}"


def _boolean(value: bool) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise TypeError(f"not a bool: {type(value).__name__}")


_NO_CODE = _code_json(CodeReference())
_NO_ENVIRONMENT = _environment_json(Environment())


def _tensors(items: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
    return [{"dtype": t.dtype, "name": t.name, "shape": list(t.shape)} for t in items]


def _signature(sig: Signature) -> dict[str, Any]:
    return {"inputs": _tensors(sig.inputs), "outputs": _tensors(sig.outputs)}


def _files(files: Iterable[ArtifactFile]) -> list[dict[str, Any]]:
    return [{"media_type": f.media_type, "path": f.path, "sha256": f.sha256, "size": f.size} for f in files]


def _spec_json_encoded(spec: VersionSpec, *, compact: bool) -> str:
    # Spelled out rather than dataclasses.asdict, whose deep copies were half of a replay's
    # time; the unit tests hold it equal to asdict (the stored JSON must not change).
    code, env = spec.code, spec.environment
    data = {
        "code": {"commit": code.commit, "dirty": code.dirty, "repo": code.repo},
        "description": spec.description,
        "environment": {
            "lock_digest": env.lock_digest,
            "packages": env.packages,
            "python_version": env.python_version,
        },
        "files": _files(spec.files),
        "flavor": spec.flavor,
        "framework": spec.framework,
        "metrics": spec.metrics,
        "params": spec.params,
        "signature": None if spec.signature is None else _signature(spec.signature),
        "tags": spec.tags,
    }
    return _SPEC_JSON.encode(compact_spec(data) if compact else data)


OPTIONAL_MEMBERS: dict[str, Any] = {
    "code": {"commit": "", "dirty": False, "repo": ""},
    "environment": {"lock_digest": "", "packages": {}, "python_version": ""},
    "files": [],
    "metrics": {},
    "signature": None,
}
"""The members of a stored spec that the compact form leaves out while they hold these values."""


def compact_spec(data: dict[str, Any]) -> dict[str, Any]:
    """A spec's dict (asdict's or _spec_json_encoded's) without its optional members at their
    default: what the read model stores."""
    return {
        key: value
        for key, value in data.items()
        if key not in OPTIONAL_MEMBERS or value != OPTIONAL_MEMBERS[key]
    }


# What json.dumps(data, sort_keys=True, separators=(",", ":")) builds on every call.
_SPEC_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))

_DEFAULT_TEXT = {name: _SPEC_JSON.encode(value) for name, value in OPTIONAL_MEMBERS.items()}
"""OPTIONAL_MEMBERS as the text path writes them (_NO_CODE, "[]", ...)."""


def spec_from_json(raw: str | dict[str, Any]) -> VersionSpec:
    data = json.loads(raw) if isinstance(raw, str) else raw
    # A member the compact form left out (OPTIONAL_MEMBERS) is at its default.
    sig = data.get("signature")

    def specs(items: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in items)

    return VersionSpec(
        description=data["description"],
        tags=data["tags"],
        metrics=data.get("metrics", {}),
        params=data["params"],
        code=CodeReference(**data["code"]) if "code" in data else CodeReference(),
        environment=Environment(**data["environment"]) if "environment" in data else Environment(),
        framework=data["framework"],
        flavor=data["flavor"],
        signature=Signature(specs(sig["inputs"]), specs(sig["outputs"])) if sig is not None else None,
        files=tuple(ArtifactFile(**f) for f in data.get("files", ())),
    )


def _timestamp(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def version_from_row(row: Any) -> ModelVersion:
    return ModelVersion(
        model=row["model"],
        number=row["number"],
        semver=SemVer(row["major"], row["minor"], row["pipeline"]),
        status=Status(row["status"]),
        spec=spec_from_json(row["spec"]),
        create_time=_timestamp(row["create_time"]),
        update_time=_timestamp(row["update_time"]),
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        state_reason=row["state_reason"],
        created_revision=row["created_revision"],
    )
