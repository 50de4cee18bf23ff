"""Signed envelopes: who may write the log, checked by every fold.

Each service signs each envelope it appends with its Ed25519 key; every fold
(projectors, reference caches, replay) verifies it against the trusted public
keys before the fold rule looks at it. A record that does not verify -- no
signature, an unknown key, a signature that does not match, a payload changed
after signing, or a copy found on another partition than the one its producer
wrote it to -- is *rejected*: it never changes state, it does not use up its
event id, and it is recorded by its position (`rejected_records`), the same
way in every fold, since the verdict depends on the record alone.

What is signed (`signed_bytes`): `SIGNATURE_CONTEXT`, the envelope's content hash
(SHA-256 over prev_hash and the deterministic serialisation without `hash` and
the three fields the producer adds on append), the partition (4 bytes, big
endian) and the key id (UTF-8). The verifier recomputes the hash from the
content, so the signature covers every field.

Configuration (README, "Signed log"):
- `MODELREG_SIGNING_KEY`: a PEM (PKCS #8) Ed25519 private key file; the service
  signs with it. `MODELREG_SIGNING_KEY_ID` names it (default: `ed25519-` and the
  first 16 hex digits of the SHA-256 of the raw public key).
- `MODELREG_TRUSTED_KEYS`: a file of `<key-id> <public key>` lines (the raw
  32-byte key in base64; `#` starts a comment). When set, every fold requires a
  valid signature by one of these keys. Retired keys stay in the file, so the
  events they signed stay valid.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelreg.eventlog.envelope import content_hash
from modelreg.gen.events.v1.envelope_pb2 import Envelope

log = structlog.get_logger(__name__)

SIGNATURE_CONTEXT = b"modelreg-envelope-v1\x00"
"""Prefixed to the content hash before signing, so an envelope signature can never be
mistaken for (or replayed as) a signature by the same key over anything else."""

SIGNING_KEY_ENV = "MODELREG_SIGNING_KEY"
SIGNING_KEY_ID_ENV = "MODELREG_SIGNING_KEY_ID"
TRUSTED_KEYS_ENV = "MODELREG_TRUSTED_KEYS"


class KeyConfigError(ValueError):
    """A signing key or trusted-keys file that cannot be used."""


def default_key_id(public_raw: bytes) -> str:
    return "ed25519-" + hashlib.sha256(public_raw).hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """Loaded once per process and key: loading is a tenth of a verify."""
    return Ed25519PublicKey.from_public_bytes(raw)


@functools.lru_cache(maxsize=16)
def _private_key(raw: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(raw)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A service's private key; plain bytes so settings stay picklable (replay workers)."""

    key_id: str
    private_raw: bytes = field(repr=False)

    @classmethod
    def generate(cls, key_id: str = "") -> SigningKey:
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(key_id or default_key_id(public), raw)

    @classmethod
    def load(cls, path: str | Path, key_id: str = "") -> SigningKey:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyConfigError(f"signing key {path}: {type(exc).__name__}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyConfigError(f"signing key {path}: not an Ed25519 key")
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(key_id or default_key_id(public), raw)

    @property
    def public_raw(self) -> bytes:
        return (
            _private_key(self.private_raw)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def pem(self) -> bytes:
        """The private key as a PKCS #8 PEM file's content (for `make dev` and fixtures)."""
        return _private_key(self.private_raw).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def trust_line(self) -> str:
        """This key's line in a trusted-keys file."""
        return f"{self.key_id} {base64.b64encode(self.public_raw).decode()}"

    def sign(self, message: bytes) -> bytes:
        return _private_key(self.private_raw).sign(message)


def signed_bytes(digest: bytes, partition: int, key_id: str) -> bytes:
    """What an envelope's signature is over: its content hash, its partition and its key id."""
    return SIGNATURE_CONTEXT + digest + partition.to_bytes(4, "big", signed=True) + key_id.encode()


def parse_trusted_keys(text: str, source: str = "trusted keys") -> dict[str, bytes]:
    """`<key-id> <base64 raw public key>` per line; blank lines and `#` comments ignored."""
    keys: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise KeyConfigError(f"{source} line {number}: expected '<key-id> <base64 public key>'")
        key_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise KeyConfigError(f"{source} line {number}: the public key is not base64") from None
        if len(raw) != 32:
            raise KeyConfigError(f"{source} line {number}: an Ed25519 public key has 32 bytes")
        if key_id in keys and keys[key_id] != raw:
            raise KeyConfigError(f"{source} line {number}: key id {key_id!r} is listed twice")
        keys[key_id] = raw
    return keys


@dataclass(frozen=True, slots=True)
class LogIntegrity:
    """How a process signs what it appends and what every fold it runs trusts.

    `trusted` None: folds do not require signatures (a laptop without keys; the
    service logs a warning). Otherwise every record must carry a valid signature by
    one of these keys (key id -> raw public key).
    """

    signer: SigningKey | None = None
    trusted: Mapping[str, bytes] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LogIntegrity:
        signer = None
        if path := environ.get(SIGNING_KEY_ENV):
            signer = SigningKey.load(path, environ.get(SIGNING_KEY_ID_ENV, ""))
        trusted = None
        if path := environ.get(TRUSTED_KEYS_ENV):
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise KeyConfigError(f"trusted keys {path}: {exc.strerror}") from None
            trusted = parse_trusted_keys(text, path)
        if signer is not None and trusted is not None and trusted.get(signer.key_id) != signer.public_raw:
            raise KeyConfigError(
                f"the signing key {signer.key_id!r} is not among the trusted keys:"
                " its own events would be rejected"
            )
        return cls(signer, trusted)

    @classmethod
    def generated(cls, key_id: str = "dev") -> LogIntegrity:
        """A fresh key that signs and is the only one trusted (tests)."""
        signer = SigningKey.generate(key_id)
        return cls(signer, {signer.key_id: signer.public_raw})

    @property
    def required(self) -> bool:
        return self.trusted is not None

    def seal(self, envelope: Envelope, partition: int) -> None:
        """Names the partition it is written to and signs it, in place (its hash, which
        build_envelope set, is left as it is)."""
        envelope.partition = partition
        if self.signer is None:
            envelope.signing_key_id = ""
            envelope.signature = b""
        else:
            envelope.signing_key_id = self.signer.key_id
            envelope.signature = self.signer.sign(signed_bytes(envelope.hash, partition, self.signer.key_id))

    def verify(self, envelope: Envelope, digest: bytes) -> str:
        """Why `envelope` (whose content hash is `digest`) is not trusted; "" when it is."""
        if self.trusted is None:
            return ""
        if not envelope.signature:
            return "the envelope is not signed"
        key_id = envelope.signing_key_id
        public = self.trusted.get(key_id)
        if public is None:
            return f"signed by an untrusted key {_printable(key_id)!r}"
        if not envelope.HasField("partition"):
            return "the envelope names no partition"
        try:
            _public_key(public).verify(envelope.signature, signed_bytes(digest, envelope.partition, key_id))
        except InvalidSignature:
            return f"the signature by {key_id!r} does not verify"
        return ""


NO_INTEGRITY = LogIntegrity()


def screen(envelope: Envelope, partition: int | None, integrity: LogIntegrity) -> str:
    """Why this record, found on `partition`, can never count; "" when the fold rule may judge it.

    A function of the record and its partition alone, so every fold, live or
    replaying with any number of workers, screens a record the same way.

    The hash is checked on the canonical re-serialisation (content_hash), not on the
    record's bytes: the bytes less the sealed fields hash the same only if those fields sit
    at a field boundary, and checking that costs what re-serialising does (bench/RESULTS.md).
    """
    if partition is not None and envelope.HasField("partition") and envelope.partition != partition:
        return f"found on partition {partition}, written to partition {envelope.partition}"
    if not _is_uuid(envelope.event_id):
        return "the event_id is not a UUID"
    digest = content_hash(envelope)
    if digest != envelope.hash:
        return "hash does not match content"
    return integrity.verify(envelope, digest)


def _is_uuid(value: str) -> bool:
    """What uuid.UUID accepts in 36 characters. The canonical spelling (every event_id
    new_event_id writes) is matched by a regular expression, a tenth of uuid.UUID's cost;
    anything else uuid.UUID still decides, so the accepted set is unchanged."""
    if len(value) != 36:
        return False
    if _CANONICAL_UUID.fullmatch(value):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# ASCII hex only (re's [0-9a-f] would not take other scripts' digits, nor would \d here).
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _printable(text: str) -> str:
    return text[:64].encode("unicode_escape").decode()


def ensure_local_keys(directory: Path, key_id: str = "dev") -> dict[str, str]:
    """A signing key and a trusted-keys file naming it under `directory`, made on first use
    and kept (`make dev` signs the same log across restarts); returns the environment that
    configures a service with them."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "signing-key.pem"
    trusted_path = directory / "trusted-keys"
    if not key_path.exists():
        key = SigningKey.generate(key_id)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.pem())
        trusted_path.write_text(f"# key-id public-key (Ed25519, base64)\n{key.trust_line()}\n")
    return {SIGNING_KEY_ENV: str(key_path), SIGNING_KEY_ID_ENV: key_id, TRUSTED_KEYS_ENV: str(trusted_path)}


def warn_if_unsigned(integrity: LogIntegrity, service: str) -> None:
    """Loud in the logs, like MODELREG_AUTH=none: a log anyone who can produce to may forge."""
    if integrity.signer is None:
        log.warning("log_signing_off", service=service, hint=f"set {SIGNING_KEY_ENV} to sign appended events")
    if integrity.trusted is None:
        log.warning(
            "log_verification_off",
            service=service,
            hint=f"set {TRUSTED_KEYS_ENV}: without it, a record forged onto a topic is folded",
        )
