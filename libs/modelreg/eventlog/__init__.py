"""The event log: envelopes, the fold rule, positions and the Kafka adapter."""

from modelreg.eventlog.envelope import (
    GENESIS_HASH,
    EventContext,
    UndecodableRecord,
    build_envelope,
    content_hash,
    decode,
    encode,
    new_event_id,
    payload_of,
)
from modelreg.eventlog.fold import (
    ANY_REVISION,
    EMPTY_HEAD,
    NO_STREAM,
    FoldState,
    Outcome,
    StreamHead,
    Verdict,
    head_of,
)
from modelreg.eventlog.positions import (
    TOKEN_METADATA_KEY,
    ConsistencyToken,
    InvalidToken,
    Position,
)

__all__ = [
    "ANY_REVISION",
    "EMPTY_HEAD",
    "GENESIS_HASH",
    "NO_STREAM",
    "TOKEN_METADATA_KEY",
    "ConsistencyToken",
    "EventContext",
    "FoldState",
    "InvalidToken",
    "Outcome",
    "Position",
    "StreamHead",
    "UndecodableRecord",
    "Verdict",
    "build_envelope",
    "content_hash",
    "decode",
    "encode",
    "head_of",
    "new_event_id",
    "payload_of",
]
