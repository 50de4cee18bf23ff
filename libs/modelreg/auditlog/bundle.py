"""Audit export bundles: what `ExportAudit` writes and `modelreg audit verify` checks offline.

A bundle is a directory of files:

- `events.jsonl`: one event per line in trail order (time, then log position): its audit
  fields, its record bytes (base64: the envelope as the log holds it, the Merkle leaf) and
  an inclusion proof against a checkpoint of its partition (`proof.size`, `proof.path`);
- `events.csv`: the same events as a table, for people;
- `checkpoints.jsonl`: every signed checkpoint of each partition involved, in chain order,
  each (after the first) with the consistency proof from the one before;
- `keys/<key id>.pem`: the public keys that signed them and the manifest;
- `manifest.json` + `manifest.sig`: the filter, the time range, counts, the SHA-256 of
  every other file, per stream its exported events, its head hash and whether it was
  exported whole; signed (Ed25519) by the service's current key.

`verify_bundle` needs only the files and the public keys the auditor trusts. It checks,
and reports the first failure of: the manifest's signature; every checkpoint's signature
(a key the auditor trusts), chain (`previous`) and consistency with the one before; each
event's record (its own hash, its fields against the record), its inclusion proof, the
trail order, and per stream the hash chain; then every file's hash and the counts.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelreg.auditlog.checkpoint import (
    GENESIS,
    BadCheckpoint,
    SignedCheckpoint,
    Signer,
    key_id,
    public_pem,
)
from modelreg.eventlog.envelope import UndecodableRecord, content_hash, decode
from modelreg.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion

FORMAT = "modelreg-audit-bundle/v1"
EVENTS = "events.jsonl"
TABLE = "events.csv"
CHECKPOINTS = "checkpoints.jsonl"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CSV_COLUMNS = (
    "occur_time",
    "actor",
    "action",
    "resource",
    "namespace",
    "model",
    "request_id",
    "correlation_id",
    "comment",
    "changes",
    "topic",
    "partition",
    "offset",
    "leaf_index",
    "event_id",
    "hash",
)
LIMITS = (
    "A filtered export proves that every event it holds was recorded, unchanged, in this "
    "order and at this place in the signed log; completeness holds per stream exported "
    "whole (every accepted event from the stream's first to the head the manifest names). "
    "For a stream the filter cut, the events outside the filter are not shown and their "
    "absence is not proven; events newer than the covering checkpoints are not included."
)


@dataclass(frozen=True, slots=True)
class ExportEvent:
    """One event as exported: its audit fields and its record bytes."""

    fields: Mapping[str, Any]
    """event_id, occur_time (RFC 3339), actor, action, event_type, resource, namespace,
    model, request_id, correlation_id, causation_id, comment, changes, source, revision,
    topic, partition, offset, leaf_index, stream, prev_hash and hash (hex)."""
    record: bytes


@dataclass(frozen=True, slots=True)
class Partition:
    """What a bundle needs of one partition: its checkpoints in chain order and the leaf
    hashes of its tree up to the newest one."""

    topic: str
    partition: int
    checkpoints: Sequence[SignedCheckpoint]
    leaves: Sequence[bytes]
    stream_counts: Mapping[str, int] = field(default_factory=dict)
    """Per stream of this partition: its accepted events inside the newest checkpoint."""


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_bundle(
    events: Sequence[ExportEvent],
    partitions: Sequence[Partition],
    signer: Signer,
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    filter_: Mapping[str, str],
    created: datetime,
    left_out: int = 0,
) -> dict[str, bytes]:
    """The files of a bundle (path -> bytes). `events` must lie inside the newest checkpoint
    of their partition and be in trail order."""
    trees = {(p.topic, p.partition): (p, MerkleTree(p.leaves)) for p in partitions}
    lines, rows = [], []
    streams: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        f = event.fields
        part, tree = trees[(f["topic"], f["partition"])]
        size = part.checkpoints[-1].checkpoint.size
        proof = tree.inclusion_proof(f["leaf_index"], size)
        line = {**f, "record": base64.b64encode(event.record).decode()}
        line["proof"] = {"size": size, "path": [p.hex() for p in proof]}
        lines.append(json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        rows.append([f[c] for c in CSV_COLUMNS])
        stream = streams.setdefault(
            (f["topic"], f["stream"]),
            {"topic": f["topic"], "partition": f["partition"], "stream": f["stream"], "exported": 0},
        )
        stream["exported"] += 1
        stream["head"] = f["hash"]
    for (topic, name), stream in streams.items():
        part, _ = trees[(topic, stream["partition"])]
        stream["whole"] = stream["exported"] == part.stream_counts.get(name, -1)
    checkpoint_lines = []
    for part in partitions:
        _, tree = trees[(part.topic, part.partition)]
        before = 0
        for signed in part.checkpoints:
            document = signed.to_json()
            size = signed.checkpoint.size
            if before:
                document["consistency"] = [p.hex() for p in tree.consistency_proof(before, size)]
            checkpoint_lines.append(json.dumps(document, sort_keys=True, separators=(",", ":")))
            before = size
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    files: dict[str, bytes] = {
        EVENTS: "".join(line + "\n" for line in lines).encode(),
        TABLE: table.getvalue().encode(),
        CHECKPOINTS: "".join(line + "\n" for line in checkpoint_lines).encode(),
    }
    keys = dict(public_keys)
    keys[signer.key_id] = signer.public_key
    for kid, key in sorted(keys.items()):
        files[f"keys/{kid}.pem"] = public_pem(key).encode()
    times = [e.fields["occur_time"] for e in events]
    manifest = {
        "format": FORMAT,
        "created": rfc3339(created),
        "filter": dict(filter_),
        "time_range": {"first": min(times), "last": max(times)} if times else None,
        "counts": {
            "events": len(events),
            "checkpoints": len(checkpoint_lines),
            "left_out_not_yet_checkpointed": left_out,
        },
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
        "streams": sorted(streams.values(), key=lambda s: (s["topic"], s["stream"])),
        "signer": signer.key_id,
        "limits": LIMITS,
    }
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    files[SIGNATURE] = base64.b64encode(signer.sign(files[MANIFEST])) + b"\n"
    return files


class BundleInvalid(Exception):
    """The first bad item: where (a file, a line, a stream) and what is wrong."""

    def __init__(self, item: str, problem: str) -> None:
        super().__init__(f"{item}: {problem}")
        self.item = item
        self.problem = problem


@dataclass
class Report:
    events: int = 0
    checkpoints: int = 0
    whole_streams: int = 0
    partial_streams: int = 0
    keys: list[str] = field(default_factory=list)
    limits: str = LIMITS


def _lines(data: bytes, name: str) -> list[dict[str, Any]]:
    out = []
    for number, line in enumerate(data.decode("utf-8", errors="strict").splitlines(), 1):
        try:
            document = json.loads(line)
        except ValueError as error:
            raise BundleInvalid(f"{name} line {number}", f"not JSON ({error})") from None
        if not isinstance(document, dict):
            raise BundleInvalid(f"{name} line {number}", "not a JSON object")
        out.append(document)
    return out


def verify_bundle(files: Mapping[str, bytes], trusted: Iterable[Ed25519PublicKey]) -> Report:
    """Raises BundleInvalid on the first bad item; returns what was verified."""
    keys = {key_id(k): k for k in trusted}
    report = Report(keys=sorted(keys))
    for name in (MANIFEST, SIGNATURE, EVENTS, CHECKPOINTS):
        if name not in files:
            raise BundleInvalid(name, "missing")
    # 1. The manifest, signed by a trusted key.
    try:
        manifest = json.loads(files[MANIFEST])
        signature = base64.b64decode(files[SIGNATURE].strip(), validate=True)
    except ValueError as error:
        raise BundleInvalid(MANIFEST, f"unreadable ({error})") from None
    signer = keys.get(manifest.get("signer", ""))
    if signer is None:
        raise BundleInvalid(SIGNATURE, f"signed by {manifest.get('signer')!r}, not a trusted key")
    try:
        signer.verify(signature, files[MANIFEST])
    except InvalidSignature:
        raise BundleInvalid(SIGNATURE, "the manifest's signature does not verify") from None
    if manifest.get("format") != FORMAT:
        raise BundleInvalid(MANIFEST, f"format {manifest.get('format')!r} is not {FORMAT}")
    # 2. Checkpoints: signatures, chains, consistency.
    chains: dict[tuple[str, int], list[SignedCheckpoint]] = defaultdict(list)
    for number, document in enumerate(_lines(files[CHECKPOINTS], CHECKPOINTS), 1):
        item = f"{CHECKPOINTS} line {number}"
        try:
            signed = SignedCheckpoint.from_json(document)
            signed.verify(keys)
        except BadCheckpoint as error:
            raise BundleInvalid(item, str(error)) from None
        c = signed.checkpoint
        chain = chains[(c.topic, c.partition)]
        previous = chain[-1].checkpoint if chain else None
        if c.previous != (previous.hash if previous else GENESIS):
            raise BundleInvalid(item, "its `previous` is not the hash of the checkpoint before it")
        if previous is not None:
            proof = [bytes.fromhex(h) for h in document.get("consistency", [])]
            if not verify_consistency(previous.size, c.size, proof, previous.root, c.root):
                raise BundleInvalid(item, f"not consistent with the checkpoint of size {previous.size}")
        chain.append(signed)
        report.checkpoints += 1
    roots = {(t, p, s.checkpoint.size): s.checkpoint.root for (t, p), ch in chains.items() for s in ch}
    # 3. Events: record, own hash, fields, inclusion, order, chains.
    last_key: tuple[str, str, int, int] | None = None
    seen: set[tuple[str, int, int]] = set()
    heads: dict[tuple[str, str], bytes] = {}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    firsts: dict[tuple[str, str], bytes] = {}
    for number, line in enumerate(_lines(files[EVENTS], EVENTS), 1):
        item = f"{EVENTS} line {number}"
        try:
            record = base64.b64decode(line["record"], validate=True)
            envelope = decode(record)
            topic, partition, leaf = line["topic"], int(line["partition"]), int(line["leaf_index"])
            size, path = int(line["proof"]["size"]), [bytes.fromhex(h) for h in line["proof"]["path"]]
        except (KeyError, TypeError, ValueError, UndecodableRecord) as error:
            raise BundleInvalid(item, f"unreadable event ({error})") from None
        if content_hash(envelope) != envelope.hash or envelope.hash.hex() != line.get("hash"):
            raise BundleInvalid(item, "the event's own hash does not match its content")
        mismatched = [
            name
            for name, value in (
                ("event_id", envelope.event_id),
                ("stream", envelope.stream),
                ("request_id", envelope.request_id),
                ("correlation_id", envelope.correlation_id),
                ("prev_hash", envelope.prev_hash.hex()),
                ("occur_time", rfc3339(envelope.occurred_at.ToDatetime(tzinfo=UTC))),
                ("action", getattr(envelope, envelope.WhichOneof("payload") or "").DESCRIPTOR.name),
            )
            if line.get(name) != value
        ]
        if line.get("action") != "AccessDenied" and line.get("actor") != envelope.actor:
            mismatched.append("actor")
        if mismatched:
            raise BundleInvalid(item, f"{', '.join(mismatched)} differ from the signed record")
        root = roots.get((topic, partition, size))
        if root is None:
            raise BundleInvalid(item, f"no checkpoint of size {size} for {topic}[{partition}]")
        if not verify_inclusion(leaf, size, leaf_hash(record), path, root):
            raise BundleInvalid(item, f"its inclusion proof fails against the checkpoint of size {size}")
        position = (topic, partition, leaf)
        if position in seen:
            raise BundleInvalid(item, "the same event appears twice")
        seen.add(position)
        order = (line["occur_time"], topic, partition, int(line.get("offset", -1)))
        if last_key is not None and order < last_key:
            raise BundleInvalid(item, "out of trail order (time, then log position)")
        last_key = order
        stream = (topic, envelope.stream)
        if stream in heads and envelope.prev_hash != heads[stream]:
            raise BundleInvalid(
                item, f"breaks the hash chain of {envelope.stream}: an event before it is missing"
            )
        firsts.setdefault(stream, envelope.prev_hash)
        heads[stream] = envelope.hash
        counts[stream] += 1
        report.events += 1
    # 4. Streams exported whole, counts and file hashes.
    declared = {(s["topic"], s["stream"]): s for s in manifest.get("streams", [])}
    if set(declared) != set(counts):
        missing = sorted(set(declared) - set(counts)) or sorted(set(counts) - set(declared))
        raise BundleInvalid(EVENTS, f"the streams differ from the manifest's (first: {missing[0][1]})")
    for key, stream in declared.items():
        item = f"stream {stream['stream']} ({stream['topic']})"
        if counts[key] != stream["exported"] or heads[key].hex() != stream["head"]:
            raise BundleInvalid(
                item, "its events differ from the manifest's: the newest are missing or added"
            )
        if stream["whole"]:
            if firsts[key] != GENESIS:
                raise BundleInvalid(item, "exported whole, but its first event is missing")
            report.whole_streams += 1
        else:
            report.partial_streams += 1
    if (
        report.events != manifest["counts"]["events"]
        or report.checkpoints != manifest["counts"]["checkpoints"]
    ):
        raise BundleInvalid(MANIFEST, "the counts differ from the files")
    listed = manifest.get("files", {})
    for name in sorted((set(files) - {MANIFEST, SIGNATURE}) | set(listed)):
        if name not in files:
            raise BundleInvalid(name, "listed in the manifest but missing")
        if listed.get(name) != hashlib.sha256(files[name]).hexdigest():
            raise BundleInvalid(name, "its SHA-256 differs from the manifest's")
    return report
