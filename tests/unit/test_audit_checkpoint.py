"""Checkpoint bodies, signatures and key rotation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelreg.audit.adapters.keys import KeyRing
from modelreg.auditlog.checkpoint import GENESIS, BadCheckpoint, Checkpoint, SignedCheckpoint, Signer


def checkpoint(signer: Signer, size: int = 3) -> Checkpoint:
    return Checkpoint(
        "t.modelreg.catalog.v1", 1, size, b"\x01" * 32, GENESIS, datetime.now(UTC), signer.key_id
    )


def test_a_body_round_trips_and_a_changed_one_is_refused() -> None:
    signer = Signer.generate()
    signed = signer.sign_checkpoint(checkpoint(signer))
    again = SignedCheckpoint.from_json(signed.to_json())
    assert again == signed
    again.verify({signer.key_id: signer.public_key})
    forged = SignedCheckpoint(checkpoint(signer, size=2), signed.signature)
    with pytest.raises(BadCheckpoint, match="does not verify"):
        forged.verify({signer.key_id: signer.public_key})
    with pytest.raises(BadCheckpoint, match="canonical"):
        Checkpoint.parse(signed.checkpoint.body().replace(b"size: 3", b"size: 03"))


def test_a_rotated_out_key_still_verifies_its_checkpoints_and_an_unknown_key_fails(tmp_path: Path) -> None:
    old, new, stranger = Signer.generate(), Signer.generate(), Signer.generate()
    old.save(tmp_path / "old.pem")
    new.save(tmp_path / "new.pem")
    assert (tmp_path / "old.pem").stat().st_mode & 0o777 == 0o600
    ring = KeyRing.from_env(
        {
            "MODELREG_AUDIT_SIGNING_KEY": str(tmp_path / "new.pem"),
            "MODELREG_AUDIT_RETIRED_KEYS": str(tmp_path / "old.pem.pub"),
        }
    )
    assert [(kid, current) for kid, _, current in ring.listed()] == [(new.key_id, True), (old.key_id, False)]
    keys = {new.key_id: new.public_key, **ring.retired}
    old.sign_checkpoint(checkpoint(old)).verify(keys)
    new.sign_checkpoint(checkpoint(new)).verify(keys)
    with pytest.raises(BadCheckpoint, match="unknown key"):
        stranger.sign_checkpoint(checkpoint(stranger)).verify(keys)
