"""Sealing webhook secrets (AES-256-GCM), so the log, its archive and every export hold
only ciphertext.

The key is MODELREG_WEBHOOK_SECRET_KEY (base64 of 32 bytes). Without it the relay makes
one on first start and keeps it in its schema (`relay_keys`, not a read model: a replay
leaves it alone); a warning says so, since whoever reads that table can unseal.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

import asyncpg
import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from modelreg.projections.schema import quote_schema

log = structlog.get_logger(__name__)

KEY_ENV = "MODELREG_WEBHOOK_SECRET_KEY"
NONCE_BYTES = 12


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"{KEY_ENV} must be base64 of 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    async def load(
        cls, pool: asyncpg.Pool, schema: str, environ: Mapping[str, str] = os.environ
    ) -> SecretBox:
        given = environ.get(KEY_ENV)
        if given:
            return cls(base64.b64decode(given))
        s = quote_schema(schema)
        async with pool.acquire() as conn:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.relay_keys (id int PRIMARY KEY, key bytea NOT NULL)"
            )
            await conn.execute(
                f"INSERT INTO {s}.relay_keys (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                os.urandom(32),
            )
            key = await conn.fetchval(f"SELECT key FROM {s}.relay_keys WHERE id = 1")
        log.warning("webhook_secret_key_in_database", hint=f"set {KEY_ENV} to keep the key out of PostgreSQL")
        return cls(bytes(key))

    def seal(self, secret: str, name: str) -> bytes:
        """Bound to the webhook's name: a sealed secret copied to another subscription fails."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), name.encode())

    def unseal(self, sealed: bytes, name: str) -> str:
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], name.encode()).decode()


class LazySecretBox:
    """The box, loaded on first use (the key may live in the database)."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._box: SecretBox | None = None

    async def box(self) -> SecretBox:
        if self._box is None:
            self._box = await SecretBox.load(self._pool, self._schema)
        return self._box

    async def seal(self, secret: str, name: str) -> bytes:
        return (await self.box()).seal(secret, name)
