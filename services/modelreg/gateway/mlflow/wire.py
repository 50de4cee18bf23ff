"""MLflow's JSON shapes (mlflow/protos/model_registry.proto), built from the registry's protos.

int64 fields (timestamps in epoch milliseconds) are JSON numbers, as MLflow's server writes them;
`version` is a string, as in MLflow's proto.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2

SEMVER_TAG = "modelreg.semver"
"""The read-only tag that shows a version's semantic version."""
BUMP_TAG = "modelreg.bump"
"""A tag on create-model-version that picks the bump (major, minor, pipeline; default minor)."""
SOURCE_PARAM = "mlflow.source"
RUN_ID_PARAM = "mlflow.run_id"
RUN_LINK_PARAM = "mlflow.run_link"
MODEL_ID_PARAM = "mlflow.model_id"

STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
"""MLflow's stage names (matched case-insensitively), by their lower-case form."""


def millis(timestamp: Timestamp) -> int:
    return timestamp.seconds * 1000 + timestamp.nanos // 1_000_000


def tags_of(tags: dict[str, str] | Any) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


def stage_of(pointers: promotion_pb2.Pointers | None, version: int) -> str:
    if pointers is None:
        return "None"
    if pointers.stages.get("PRODUCTION") == version:
        return "Production"
    if pointers.stages.get("STAGING") == version:
        return "Staging"
    if version in pointers.archived_versions:
        return "Archived"
    return "None"


def aliases_of(pointers: promotion_pb2.Pointers | None, version: int) -> list[str]:
    if pointers is None:
        return []
    return sorted(alias for alias, number in pointers.aliases.items() if number == version)


STATUS = {
    versioning_pb2.ModelVersion.STATE_PENDING_UPLOAD: "PENDING_REGISTRATION",
    versioning_pb2.ModelVersion.STATE_READY: "READY",
    versioning_pb2.ModelVersion.STATE_DEPRECATED: "READY",
}


def model_version(
    display_name: str, version: versioning_pb2.ModelVersion, pointers: promotion_pb2.Pointers | None
) -> dict[str, Any]:
    params = version.params
    tags = dict(version.tags)
    tags[SEMVER_TAG] = version.semver
    answer: dict[str, Any] = {
        "name": display_name,
        "version": str(version.version),
        "creation_timestamp": millis(version.create_time),
        "last_updated_timestamp": millis(version.update_time),
        "user_id": version.created_by,
        "current_stage": stage_of(pointers, version.version),
        "description": version.description,
        "source": params.get(SOURCE_PARAM, ""),
        "run_id": params.get(RUN_ID_PARAM, ""),
        "status": STATUS.get(version.state, "FAILED_REGISTRATION"),
        "tags": tags_of(tags),
        "run_link": params.get(RUN_LINK_PARAM, ""),
        "aliases": aliases_of(pointers, version.version),
    }
    if version.state_reason:
        answer["status_message"] = version.state_reason
    if params.get(MODEL_ID_PARAM):
        answer["model_id"] = params[MODEL_ID_PARAM]
    return answer


def registered_model(
    display_name: str,
    model: catalog_pb2.RegisteredModel,
    pointers: promotion_pb2.Pointers | None,
    latest: list[dict[str, Any]],
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "name": display_name,
        "creation_timestamp": millis(model.create_time),
        "last_updated_timestamp": millis(model.update_time),
        "user_id": model.created_by,
        "description": model.description,
        "tags": tags_of(model.tags),
        "aliases": [
            {"alias": alias, "version": str(number)}
            for alias, number in sorted((pointers.aliases if pointers is not None else {}).items())
        ],
    }
    if latest:
        answer["latest_versions"] = latest
    return answer
