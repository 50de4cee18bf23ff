"""Domain events <-> their protobuf payloads in the envelope.

The ModelVersion resource the events embed converts in `modelreg.versioning.resources`,
which the API uses too.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import assert_never

from google.protobuf.message import Message

from modelreg.eventlog.envelope import occurred_at as envelope_time
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.gen.versioning.v1 import events_pb2, versioning_pb2
from modelreg.versioning.domain.events import (
    Event,
    ManifestDeclared,
    RetentionSet,
    VersionCreated,
    VersionDeleted,
    VersionDeprecated,
    VersionFinalized,
    VersionUpdated,
)
from modelreg.versioning.domain.names import parse_version_name
from modelreg.versioning.domain.values import SemVer
from modelreg.versioning.resources import file_from_proto, file_to_proto, spec_from_proto, spec_into_proto


def encode(model: str, event: Event) -> tuple[str, Message]:
    """The envelope payload field and message of a domain event."""

    def name(number: int) -> str:
        return f"{model}/versions/{number}"

    match event:
        case VersionCreated(number, semver, spec):
            body = spec_into_proto(
                spec, versioning_pb2.ModelVersion(name=name(number), version=number, semver=str(semver))
            )
            return "model_version_created", events_pb2.ModelVersionCreated(model_version=body)
        case ManifestDeclared(number, files):
            return "model_version_manifest_declared", events_pb2.ModelVersionManifestDeclared(
                name=name(number), files=[file_to_proto(f) for f in files]
            )
        case VersionFinalized(number):
            return "model_version_finalized", events_pb2.ModelVersionFinalized(name=name(number))
        case VersionUpdated(number, paths, description, tags):
            body = versioning_pb2.ModelVersion(name=name(number), description=description, tags=tags)
            message = events_pb2.ModelVersionUpdated(model_version=body)
            message.update_mask.paths.extend(paths)
            return "model_version_updated", message
        case VersionDeprecated(number, reason):
            return "model_version_deprecated", events_pb2.ModelVersionDeprecated(
                name=name(number), reason=reason
            )
        case VersionDeleted(number, reason):
            return "model_version_deleted", events_pb2.ModelVersionDeleted(name=name(number), reason=reason)
        case RetentionSet(keep):
            return "retention_policy_set", events_pb2.RetentionPolicySet(
                policy=versioning_pb2.RetentionPolicy(model=model, keep_last_per_major=keep)
            )
        case _:
            assert_never(event)


@functools.lru_cache(maxsize=4096)
def semver(text: str) -> SemVer:
    # A log repeats the same few semvers across models; SemVer is immutable, so one can be shared.
    return SemVer.parse(text)


def decode(envelope: Envelope) -> Event | None:
    """The domain event of an envelope; None for payloads of other services."""
    kind = envelope.WhichOneof("payload")

    def number(name: str) -> int:
        return parse_version_name(name)[1]

    match kind:
        case "model_version_created":
            body = envelope.model_version_created.model_version
            return VersionCreated(body.version, semver(body.semver), spec_from_proto(body))
        case "model_version_manifest_declared":
            declared = envelope.model_version_manifest_declared
            return ManifestDeclared(number(declared.name), tuple(file_from_proto(f) for f in declared.files))
        case "model_version_finalized":
            return VersionFinalized(number(envelope.model_version_finalized.name))
        case "model_version_updated":
            updated = envelope.model_version_updated
            body = updated.model_version
            return VersionUpdated(
                number(body.name), tuple(updated.update_mask.paths), body.description, dict(body.tags)
            )
        case "model_version_deprecated":
            deprecated = envelope.model_version_deprecated
            return VersionDeprecated(number(deprecated.name), deprecated.reason)
        case "model_version_deleted":
            deleted = envelope.model_version_deleted
            return VersionDeleted(number(deleted.name), deleted.reason)
        case "retention_policy_set":
            return RetentionSet(envelope.retention_policy_set.policy.keep_last_per_major)
    return None


def occurred_at(envelope: Envelope) -> datetime:
    return envelope_time(envelope)
