"""Signed checkpoints of the audit trees: (topic, partition, tree size, root, the previous
checkpoint's hash, time, key id), signed with Ed25519.

The signed bytes are a small canonical text (one `name: value` line per field, in a fixed
order, like a C2SP signed-note body), so any language can rebuild and check them. A
checkpoint's hash is SHA-256 of that text; the next checkpoint of the same partition
names it as `previous`, so checkpoints form a chain that a replaced or removed one breaks.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "modelreg-audit-checkpoint/v1"
GENESIS = bytes(32)
"""The `previous` of a partition's first checkpoint."""


class BadCheckpoint(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Checkpoint:
    topic: str
    partition: int
    size: int
    root: bytes
    previous: bytes
    time: datetime
    key_id: str

    def body(self) -> bytes:
        """The signed bytes."""
        return (
            f"{FORMAT}\n"
            f"topic: {self.topic}\n"
            f"partition: {self.partition}\n"
            f"size: {self.size}\n"
            f"root: {self.root.hex()}\n"
            f"previous: {self.previous.hex()}\n"
            f"time: {self.time.astimezone(UTC).isoformat(timespec='microseconds')}\n"
            f"key: {self.key_id}\n"
        ).encode()

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.body()).digest()

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        try:
            lines = body.decode().split("\n")
            if lines[0] != FORMAT or lines[-1] != "":
                raise ValueError("not a checkpoint body")
            fields = dict(line.split(": ", 1) for line in lines[1:-1])
            checkpoint = cls(
                topic=fields["topic"],
                partition=int(fields["partition"]),
                size=int(fields["size"]),
                root=bytes.fromhex(fields["root"]),
                previous=bytes.fromhex(fields["previous"]),
                time=datetime.fromisoformat(fields["time"]),
                key_id=fields["key"],
            )
        except (UnicodeDecodeError, ValueError, KeyError) as error:
            raise BadCheckpoint(f"unreadable checkpoint: {error}") from None
        if checkpoint.body() != body:
            raise BadCheckpoint("the checkpoint body is not in canonical form")
        return checkpoint


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: bytes

    def to_json(self) -> dict[str, object]:
        c = self.checkpoint
        return {
            "topic": c.topic,
            "partition": c.partition,
            "size": c.size,
            "root": c.root.hex(),
            "previous": c.previous.hex(),
            "time": c.time.astimezone(UTC).isoformat(timespec="microseconds"),
            "key_id": c.key_id,
            "hash": c.hash.hex(),
            "body": base64.b64encode(c.body()).decode(),
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, document: dict[str, object]) -> SignedCheckpoint:
        """Trusts only the signed body (the other fields are for people); raises BadCheckpoint."""
        try:
            body = base64.b64decode(str(document["body"]), validate=True)
            signature = base64.b64decode(str(document["signature"]), validate=True)
        except (KeyError, ValueError) as error:
            raise BadCheckpoint(f"unreadable checkpoint: {error}") from None
        return cls(Checkpoint.parse(body), signature)

    def verify(self, keys: dict[str, Ed25519PublicKey]) -> None:
        """Raises BadCheckpoint unless a known key signed it."""
        key = keys.get(self.checkpoint.key_id)
        if key is None:
            raise BadCheckpoint(f"signed with the unknown key {self.checkpoint.key_id!r}")
        try:
            key.verify(self.signature, self.checkpoint.body())
        except InvalidSignature:
            raise BadCheckpoint(
                f"the signature does not verify with key {self.checkpoint.key_id!r}"
            ) from None


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise BadCheckpoint(f"not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadCheckpoint("not an Ed25519 public key")
    return key


class Signer:
    """An Ed25519 private key and its id."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> Signer:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    def save(self, path: Path) -> None:
        """Writes the private key (PKCS#8 PEM, mode 0600) and its public key beside it (.pub)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_bytes(pem)
        path.with_name(path.name + ".pub").write_text(public_pem(self.public_key))

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def sign_checkpoint(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        if checkpoint.key_id != self.key_id:
            raise ValueError("the checkpoint names another key")
        return SignedCheckpoint(checkpoint, self.sign(checkpoint.body()))
