"""The checkpoint signing key and the retired public keys still listed.

MODELREG_AUDIT_SIGNING_KEY: a PEM (PKCS#8) Ed25519 private key file. Without one the
service keeps its trees but signs no checkpoints (and says so at WARNING).
MODELREG_AUDIT_RETIRED_KEYS: comma-separated PEM public key files of keys that signed
earlier checkpoints: listed by ListAuditKeys and put in exports, so those checkpoints
still verify after a rotation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelreg.auditlog.checkpoint import Signer, key_id, load_public_key, public_pem

SIGNING_KEY_ENV = "MODELREG_AUDIT_SIGNING_KEY"
RETIRED_KEYS_ENV = "MODELREG_AUDIT_RETIRED_KEYS"


@dataclass(frozen=True)
class KeyRing:
    signer: Signer | None
    retired: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> KeyRing:
        path = environ.get(SIGNING_KEY_ENV, "")
        signer = Signer.load(Path(path)) if path else None
        retired = {}
        for item in filter(None, (p.strip() for p in environ.get(RETIRED_KEYS_ENV, "").split(","))):
            key = load_public_key(Path(item).read_bytes())
            retired[key_id(key)] = key
        return cls(signer, retired)

    def listed(self) -> list[tuple[str, str, bool]]:
        """(key id, public PEM, current), the current key first."""
        keys = []
        if self.signer is not None:
            keys.append((self.signer.key_id, public_pem(self.signer.public_key), True))
        current = self.signer.key_id if self.signer else None
        keys += [(kid, public_pem(key), False) for kid, key in self.retired.items() if kid != current]
        return keys
