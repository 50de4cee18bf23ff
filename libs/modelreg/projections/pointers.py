"""Where promotion's pointers stand: one reduction for every cache of `modelreg.promotion.v1`.

Versioning (which versions are in use) and lineage (FindDownstream's stage
filter) each keep a table of (model, pointer) -> version. Both fold the same
events, so the reduction lives here once: `net_pointer_changes` is pure, and
`write_pointer_changes` applies its result to either table, which have the
same shape (model, pointer, version; keyed by model and pointer).

Pointers arrive as `pointer_moved` / `pointer_removed` payloads and nested in
`transition_applied` (one fact per atomic transition). A version of 0 names no
version: the pointer was unset. With `deployments`, every version in a
deployment's traffic split is kept as the pointer
`deployment:{environment}#{version}`, and a new split replaces the old one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from modelreg.gen.events.v1.envelope_pb2 import Envelope


@dataclass(frozen=True, slots=True)
class PointerChanges:
    """The net effect of a batch, to be written in this order: the splits are
    cleared, then the cleared pointers deleted, then the moved ones set."""

    cleared_splits: list[tuple[str, str]]
    """(model, prefix): every stored pointer of the model under the prefix goes."""
    cleared: list[tuple[str, str]]
    """(model, pointer) no longer set."""
    moved: list[tuple[str, str, int]]
    """(model, pointer, version) now set."""


def net_pointer_changes(envelopes: Iterable[Envelope], *, deployments: bool) -> PointerChanges:
    """Reduces promotion events, in log order, to their net effect on (model, pointer) -> version.

    A key's last operation wins: a move sets it, a removal clears it, and
    replacing a split drops the split's pointers seen so far in the batch and
    clears the stored ones before the moves are written. Writing the result
    ends where writing each event's own result, one at a time, would.
    """
    pointers: dict[str, dict[str, int]] = {}  # model -> pointer -> version (0: removed)
    splits: dict[tuple[str, str], None] = {}  # ordered set of (model, prefix)
    for envelope in envelopes:
        moves: list[tuple[str, str, int]] = []
        match envelope.WhichOneof("payload"):
            case "pointer_moved":
                m = envelope.pointer_moved
                moves.append((m.model or envelope.stream, m.pointer, m.version))
            case "pointer_removed":
                r = envelope.pointer_removed
                moves.append((r.model or envelope.stream, r.pointer, 0))
            case "transition_applied":
                applied = envelope.transition_applied
                moves += [(m.model or envelope.stream, m.pointer, m.version) for m in applied.moved]
                moves += [(r.model or envelope.stream, r.pointer, 0) for r in applied.removed]
                for deployment in applied.deployments if deployments else ():
                    prefix = f"deployment:{deployment.environment}#"
                    splits[(envelope.stream, prefix)] = None
                    named = pointers.get(envelope.stream, {})
                    for pointer in [p for p in named if p.startswith(prefix)]:
                        del named[pointer]
                    moves += [
                        (envelope.stream, f"{prefix}{w.version}", w.version) for w in deployment.weights
                    ]
        for model, pointer, version in moves:
            pointers.setdefault(model, {})[pointer] = version
    final = [(m, p, v) for m, named in pointers.items() for p, v in named.items()]
    return PointerChanges(
        cleared_splits=list(splits),
        cleared=[(m, p) for m, p, v in final if v <= 0],
        moved=[(m, p, v) for m, p, v in final if v > 0],
    )


async def write_pointer_changes(conn: asyncpg.Connection, table: str, changes: PointerChanges) -> None:
    """Writes `changes` into `table` (schema-qualified and quoted), one statement per
    kind of change that occurs (one per move cost a round trip each)."""
    if changes.cleared_splits:
        await conn.execute(
            f"DELETE FROM {table} t USING unnest($1::text[], $2::text[]) AS c(model, prefix)"
            " WHERE t.model = c.model AND starts_with(t.pointer, c.prefix)",
            [m for m, _ in changes.cleared_splits],
            [p for _, p in changes.cleared_splits],
        )
    if changes.cleared:
        await conn.execute(
            f"DELETE FROM {table} t USING unnest($1::text[], $2::text[]) AS c(model, pointer)"
            " WHERE t.model = c.model AND t.pointer = c.pointer",
            [m for m, _ in changes.cleared],
            [p for _, p in changes.cleared],
        )
    if changes.moved:
        await conn.execute(
            f"INSERT INTO {table} (model, pointer, version)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])"
            " ON CONFLICT (model, pointer) DO UPDATE SET version = EXCLUDED.version",
            [m for m, _, _ in changes.moved],
            [p for _, p, _ in changes.moved],
            [v for _, _, v in changes.moved],
        )
