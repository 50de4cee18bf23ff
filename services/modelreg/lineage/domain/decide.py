"""The lineage decision: a command, against the record it targets, to exactly one event."""

from __future__ import annotations

from typing import assert_never

from modelreg.errors import FailedPrecondition, InvalidArgument, NotFound
from modelreg.lineage.domain.commands import Command, RecordLineage, SupersedeRecord
from modelreg.lineage.domain.events import Event, LineageRecorded, LineageRecordSuperseded
from modelreg.lineage.domain.names import record_name
from modelreg.lineage.domain.state import RecordState
from modelreg.lineage.domain.values import MAX_TEXT_BYTES, check_record


def decide(state: RecordState | None, command: Command) -> Event:
    """The event `command` makes, or the domain error refusing it. `state` is the record a supersede
    names (None: no such record on the stream)."""
    match command:
        case RecordLineage():
            # Append-only: whether a record may be stated does not depend on earlier
            # records, so it is appended at ANY revision (the version's existence is
            # checked by the use case against the versioning cache).
            return LineageRecorded(check_record(command.record))
        case SupersedeRecord():
            return _decide_supersede(state, command)
        case _:
            assert_never(command)


def _decide_supersede(state: RecordState | None, command: SupersedeRecord) -> LineageRecordSuperseded:
    record = check_record(command.record)
    if not command.reason:
        raise InvalidArgument.of("reason", "is required: say what the correction fixes")
    if len(command.reason.encode()) > MAX_TEXT_BYTES:
        raise InvalidArgument.of("reason", f"is longer than {MAX_TEXT_BYTES} bytes")
    if record.model_version != command.version:
        raise InvalidArgument.of(
            "record.model_version", f"must be the superseded record's version {command.version}"
        )
    if state is None or state.model_version != command.version:
        raise NotFound(f"{record_name(command.version, command.record_id)} does not exist")
    if state.superseded_by is not None:
        raise FailedPrecondition(
            f"{record_name(command.version, command.record_id)} was already superseded by "
            f"{record_name(command.version, state.superseded_by)}; supersede that one instead"
        )
    return LineageRecordSuperseded(command.record_id, record, command.reason)
