"""Static API tokens kept as salted scrypt hashes in a JSON file.

A token looks like `mr_<id>_<secret>`: the id (public, 12 lowercase hex characters) finds
the entry, the secret (32 random bytes, urlsafe base64) is checked against the entry's
scrypt hash with a constant-time compare. The file never holds a token, only
`{id, principal, groups, salt, hash, created_at, expires_at, revoked_at, description}`.

`modelreg tokens create|list|revoke --file PATH` manages the file; a service reads it at
`MODELREG_AUTH_TOKEN_FILE` and re-reads it when it changes, so a revocation takes effect on
the next call without a restart. A verified token is remembered (by its SHA-256) until the
file changes, so scrypt runs once per token and process, not once per call.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelreg.errors import Unauthenticated

TOKEN_PREFIX = "mr_"
_TOKEN = re.compile(r"^mr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# scrypt at n=2**14, r=8, p=1 (16 MiB, the interactive-login cost of the scrypt paper).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
FILE_VERSION = 1


@dataclass(frozen=True, slots=True)
class TokenEntry:
    id: str
    principal: str
    groups: tuple[str, ...]
    salt: str
    hash: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    description: str = ""
    scrypt: dict[str, int] = field(default_factory=lambda: dict(_SCRYPT))

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= now

    def status(self, now: datetime) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if self.expired(now) else "active"


def _hash(secret: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=params["n"], r=params["r"], p=params["p"], dklen=32)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def read_entries(path: Path) -> list[TokenEntry]:
    if not path.exists():
        return []
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("version") != FILE_VERSION:
        raise ValueError(f"{path} is not a modelreg token file (version {FILE_VERSION})")
    return [
        TokenEntry(**{**raw, "groups": tuple(raw.get("groups", ())), "scrypt": dict(raw["scrypt"])})
        for raw in document.get("tokens", [])
    ]


def _write_entries(path: Path, entries: Sequence[TokenEntry]) -> None:
    """Atomically (a new file renamed over the old one), readable by its owner only."""
    document: dict[str, Any] = {"version": FILE_VERSION, "tokens": [asdict(e) for e in entries]}
    for raw in document["tokens"]:
        raw["groups"] = list(raw["groups"])
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialises writers (two `modelreg tokens create` at once both keep their token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def create_token(
    path: Path,
    principal: str,
    *,
    groups: Sequence[str] = (),
    expires_at: datetime | None = None,
    description: str = "",
    now: datetime | None = None,
) -> tuple[str, TokenEntry]:
    """Adds a token to the file and returns it (shown once: the file keeps only its hash)."""
    if not principal or not principal.strip():
        raise ValueError("a token needs a principal")
    now = now or datetime.now(UTC)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    entry = TokenEntry(
        id=token_id,
        principal=principal,
        groups=tuple(sorted(set(groups))),
        salt=_b64(salt),
        hash=_b64(_hash(secret, salt, _SCRYPT)),
        created_at=now.isoformat(),
        expires_at=expires_at.astimezone(UTC).isoformat() if expires_at else None,
        description=description,
    )
    with _locked(path):
        _write_entries(path, [*read_entries(path), entry])
    return f"{TOKEN_PREFIX}{token_id}_{secret}", entry


def revoke_token(path: Path, token_id: str, *, now: datetime | None = None) -> TokenEntry:
    now = now or datetime.now(UTC)
    with _locked(path):
        entries = read_entries(path)
        for index, entry in enumerate(entries):
            if entry.id == token_id:
                if entry.revoked_at is None:
                    entries[index] = entry = replace(entry, revoked_at=now.isoformat())
                    _write_entries(path, entries)
                return entry
    raise KeyError(token_id)


def looks_like_api_token(presented: str) -> bool:
    return presented.startswith(TOKEN_PREFIX)


class TokenFile:
    """The verifier a service uses: reloads the file when it changes (by inode, size, mtime)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[str, TokenEntry] = {}
        self._verified: dict[bytes, str] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if stamp == self._stamp and self._stamp is not None:
            return
        with self._lock:
            entries = read_entries(self.path) if stamp is not None else []
            self._entries = {e.id: e for e in entries}
            self._verified = {}
            self._stamp = stamp

    def __len__(self) -> int:
        return len(self._entries)

    def verify(
        self, presented: str, now: datetime | None = None, before_hash: Callable[[], None] | None = None
    ) -> TokenEntry:
        """The entry of a valid token; Unauthenticated with the reason otherwise.
        `before_hash` runs before scrypt does (not for a cached token): the interceptor
        raises there when the caller's denials bucket is empty, so failed guesses cannot
        make the service burn scrypt's CPU and memory at will."""
        match = _TOKEN.match(presented)
        if match is None:
            raise Unauthenticated("malformed API token: expected mr_<id>_<secret>")
        self._reload()
        token_id, secret = match.groups()
        entry = self._entries.get(token_id)
        if entry is None:
            raise Unauthenticated(f"unknown API token id {token_id}")
        now = now or datetime.now(UTC)
        if entry.revoked_at is not None:
            raise Unauthenticated(f"API token {token_id} was revoked at {entry.revoked_at}")
        if entry.expired(now):
            raise Unauthenticated(f"API token {token_id} expired at {entry.expires_at}")
        fingerprint = hashlib.sha256(presented.encode()).digest()
        if self._verified.get(fingerprint) == token_id:
            return entry
        if before_hash is not None:
            before_hash()
        expected = base64.b64decode(entry.hash)
        if not hmac.compare_digest(_hash(secret, base64.b64decode(entry.salt), entry.scrypt), expected):
            raise Unauthenticated(f"API token {token_id} does not match its secret")
        self._verified[fingerprint] = token_id
        return entry
