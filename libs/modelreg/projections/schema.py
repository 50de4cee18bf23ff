"""The bookkeeping tables every service schema has, next to its read models.

- checkpoints: how far each projection has folded each partition. It commits
  in the same transaction as the read-model writes, so it is the only
  checkpoint; Kafka group offsets are never used.
- stream_heads: each stream's revision and hash-chain head (the fold rule's
  memory).
- event_outcomes: the verdict on every event, which command handlers await,
  and which makes retried request_ids return their original result.
- quarantine: the events PostgreSQL refused to store, with their position and
  the error; the partition moved on past them (DESIGN.md rule 11).
- rejected_records: the records that can never count (eventlog/integrity.py): no
  valid signature by a trusted key, a hash that does not match, undecodable, or a
  copy found on another partition than the one it was written to. Keyed by
  position, since nothing vouches for their event ids.
- command_aborts: the commands a service gave up on (ABORTED after conflicting on
  every attempt), keyed by the position of the last attempt's record. Not a
  fold of the log: the log holds the conflicts, not that the handler stopped
  retrying, so the command path writes it, and a schema swap carries it over.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def quote_schema(schema: str) -> str:
    if not _IDENTIFIER.fullmatch(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return f'"{schema}"'


def bookkeeping_ddl(schema: str) -> str:
    s = quote_schema(schema)
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.checkpoints (
    projection  text   NOT NULL,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS {s}.stream_heads (
    stream   text   PRIMARY KEY,
    revision bigint NOT NULL,
    hash     bytea  NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.event_outcomes (
    event_id     uuid   PRIMARY KEY,
    stream       text   NOT NULL,
    request_id   text   NOT NULL DEFAULT '',
    verdict      text   NOT NULL,
    revision     bigint NOT NULL,
    reason       text   NOT NULL DEFAULT '',
    duplicate_of uuid,
    topic        text   NOT NULL,
    partition    int    NOT NULL,
    "offset"     bigint NOT NULL,
    occurred_at  timestamptz NOT NULL,
    actor        text   NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS {s}.quarantine (
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    "offset"    bigint NOT NULL,
    event_id    uuid   NOT NULL,
    stream      text   NOT NULL,
    event_type  text   NOT NULL,
    error       text   NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS {s}.rejected_records (
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    "offset"       bigint NOT NULL,
    event_id       text   NOT NULL,
    stream         text   NOT NULL,
    event_type     text   NOT NULL,
    actor          text   NOT NULL,
    signing_key_id text   NOT NULL,
    reason         text   NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS {s}.command_aborts (
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    "offset"    bigint NOT NULL,
    stream      text   NOT NULL,
    request_id  text   NOT NULL,
    attempts    int    NOT NULL,
    aborted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);
CREATE UNIQUE INDEX IF NOT EXISTS event_outcomes_accepted_request
    ON {s}.event_outcomes (stream, request_id)
    WHERE verdict = 'accepted' AND request_id <> '';
"""


def progress_channel(schema: str) -> str:
    """The NOTIFY channel on which a schema's projectors announce progress."""
    quote_schema(schema)
    return f"modelreg_progress_{schema}"
