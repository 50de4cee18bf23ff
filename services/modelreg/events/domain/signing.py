"""Standard Webhooks 1.0 signatures (and MLflow's, for MLflow receivers). Pure.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; a signature is
`v1,` + base64(HMAC-SHA256(key, content)); during a secret rotation the header lists
one signature per secret, space-separated. A secret is `whsec_` + base64 of the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from modelreg.errors import InvalidArgument

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64


def key_of(secret: str, field_name: str = "webhook.secret") -> bytes:
    """The HMAC key of a `whsec_...` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidArgument.of(
            field_name, "must be 'whsec_' followed by base64 (e.g. `modelreg webhooks create` makes one)"
        )
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument.of(field_name, "is not valid base64 after 'whsec_'") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidArgument.of(
            field_name, f"must hold {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}"
        )
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def signature_header(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(k, message_id, timestamp, body) for k in keys)


def verify(secret: str, message_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does: any of the listed signatures made with the secret."""
    expected = sign(key_of(secret), message_id, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in header.split())


def mlflow_signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """MLflow's X-MLflow-Signature: the same scheme, keyed by the secret's UTF-8 text."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()
