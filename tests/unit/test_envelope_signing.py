"""Signed envelopes (eventlog/integrity.py): what every fold trusts, without any server."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from modelreg.eventlog import GENESIS_HASH, EventContext, FoldState, Verdict, build_envelope, content_hash
from modelreg.eventlog.integrity import (
    KeyConfigError,
    LogIntegrity,
    SigningKey,
    ensure_local_keys,
    parse_trusted_keys,
)
from modelreg.eventlog.kafka import partition_for
from modelreg.gen.catalog.v1 import catalog_pb2, events_pb2
from modelreg.gen.events.v1.envelope_pb2 import Envelope

STREAM = "namespaces/ns/models/m"


def envelope(description: str = "") -> Envelope:
    return build_envelope(
        stream=STREAM,
        payload_field="registered_model_created",
        payload=events_pb2.RegisteredModelCreated(
            registered_model=catalog_pb2.RegisteredModel(name=STREAM, description=description)
        ),
        expected_revision=0,
        prev_hash=GENESIS_HASH,
        source="modelreg/catalog",
        context=EventContext(actor="alice"),
    )


def sealed(integrity: LogIntegrity, partition: int = 1, description: str = "") -> Envelope:
    e = envelope(description)
    integrity.seal(e, partition)
    return e


def verdict(integrity: LogIntegrity, e: Envelope, partition: int = 1) -> tuple[Verdict, str]:
    outcome = FoldState(integrity=integrity).apply(e, partition)
    assert outcome is not None
    return outcome.verdict, outcome.reason


def test_a_sealed_envelope_is_signed_over_its_content_and_accepted() -> None:
    integrity = LogIntegrity.generated("catalog-1")
    e = envelope()
    built = e.hash
    integrity.seal(e, 1)
    assert e.signing_key_id == "catalog-1" and len(e.signature) == 64 and e.partition == 1
    # The hash build_envelope set is final: sealing adds only what the signature covers.
    assert e.hash == built == content_hash(e)
    assert verdict(integrity, e) == (Verdict.ACCEPTED, "")


def test_unsigned_untrusted_tampered_and_misplaced_records_are_rejected() -> None:
    trusted = LogIntegrity.generated("catalog-1")
    mallory = LogIntegrity.generated("catalog-1")  # same key id, another key

    unsigned = sealed(LogIntegrity())
    assert verdict(trusted, unsigned) == (Verdict.REJECTED, "the envelope is not signed")

    unknown = sealed(LogIntegrity.generated("mallory"))
    assert verdict(trusted, unknown) == (Verdict.REJECTED, "signed by an untrusted key 'mallory'")

    forged_key = sealed(mallory)
    assert verdict(trusted, forged_key)[1] == "the signature by 'catalog-1' does not verify"

    # The payload changed after signing and the hash made to match: the signature fails.
    tampered = sealed(trusted)
    tampered.registered_model_created.registered_model.description = "changed"
    tampered.hash = content_hash(tampered)
    assert verdict(trusted, tampered)[1] == "the signature by 'catalog-1' does not verify"

    # ... and left as it was: the hash fails.
    stale = sealed(trusted)
    stale.actor = "mallory"
    assert verdict(trusted, stale)[1] == "hash does not match content"

    # A genuine record copied onto another partition ...
    assert verdict(trusted, sealed(trusted, partition=1), partition=2) == (
        Verdict.REJECTED,
        "found on partition 2, written to partition 1",
    )
    # ... with the partition it names changed to match: the signature covers it.
    moved = sealed(trusted, partition=1)
    moved.partition = 2
    assert verdict(trusted, moved, partition=2)[1] == "the signature by 'catalog-1' does not verify"


def test_a_rejected_record_changes_no_fold_state() -> None:
    trusted = LogIntegrity.generated()
    state = FoldState(integrity=trusted)
    genuine = sealed(trusted)
    forged = Envelope()
    forged.CopyFrom(genuine)
    forged.actor = "mallory"
    forged.hash = content_hash(forged)
    first = state.apply(forged, 1)
    assert first is not None and first.verdict is Verdict.REJECTED
    assert not state.heads and not state.known_event_ids
    second = state.apply(genuine, 1)
    assert second is not None and second.verdict is Verdict.ACCEPTED


def test_retired_keys_stay_verifiable_after_a_rotation() -> None:
    old, new = SigningKey.generate("catalog-2026-11"), SigningKey.generate("catalog-2026-12")
    trust = parse_trusted_keys(f"# retired\n{old.trust_line()}\n{new.trust_line()}  # current\n")
    before = sealed(LogIntegrity(old, trust))
    after = sealed(LogIntegrity(new, trust))
    assert verdict(LogIntegrity(new, trust), before)[0] is Verdict.ACCEPTED
    assert verdict(LogIntegrity(new, trust), after)[0] is Verdict.ACCEPTED
    assert verdict(LogIntegrity(new, {new.key_id: new.public_raw}), before)[0] is Verdict.REJECTED


def test_keys_from_files_and_the_environment(tmp_path: Path) -> None:
    env = ensure_local_keys(tmp_path / "keys", key_id="dev-1")
    assert (tmp_path / "keys" / "signing-key.pem").stat().st_mode & 0o077 == 0
    integrity = LogIntegrity.from_env(env)
    assert integrity.signer is not None and integrity.signer.key_id == "dev-1"
    assert verdict(integrity, sealed(integrity))[0] is Verdict.ACCEPTED
    # Kept across restarts: the same key signs the same log.
    assert ensure_local_keys(tmp_path / "keys", key_id="dev-1") == env
    assert LogIntegrity.from_env(env).signer == integrity.signer
    # The private key never shows in a repr (logs, tracebacks).
    assert base64.b64encode(integrity.signer.private_raw).decode() not in repr(integrity)
    assert integrity.signer.private_raw.hex() not in repr(integrity)


def test_bad_key_configuration_is_refused(tmp_path: Path) -> None:
    stranger = SigningKey.generate("other")
    trusted = tmp_path / "trusted"
    trusted.write_text(stranger.trust_line() + "\n")
    env = {**ensure_local_keys(tmp_path / "k"), "MODELREG_TRUSTED_KEYS": str(trusted)}
    with pytest.raises(KeyConfigError, match="not among the trusted keys"):
        LogIntegrity.from_env(env)
    for text, error in [
        ("onlyone", "expected"),
        ("k not-base64!", "not base64"),
        ("k " + base64.b64encode(b"short").decode(), "32 bytes"),
    ]:
        with pytest.raises(KeyConfigError, match=error):
            parse_trusted_keys(text)
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(KeyConfigError, match="signing key"):
        LogIntegrity.from_env({"MODELREG_SIGNING_KEY": str(tmp_path / "junk.pem")})


def test_the_partition_is_kafkas_default_partitioners() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    for i in range(200):
        key = f"namespaces/ns/models/m{i}".encode()
        assert partition_for(key, 3) == DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2])
