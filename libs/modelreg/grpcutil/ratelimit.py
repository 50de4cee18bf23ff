"""Rate limits: token buckets per caller and per method class (reads, writes, denials).

- `reads` and `writes` are charged by the authenticated principal on every call; a call
  is a read when the permission table gives it viewer, or its verb is Get/List/Watch/
  Search/Find/Diff/Download/Batch Get (otherwise a write).
- `denials` is charged after a call ends UNAUTHENTICATED or PERMISSION_DENIED (whoever
  raised it): by principal, or by peer IP address when the caller could not be
  authenticated. While a caller's denial bucket is empty its calls are refused before
  authorization runs, so no denial record is appended for them.

A refused call is RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` detail: the delay
after which the bucket holds a token again. Buckets live in each service process (a
replica limits on its own); the least recently used are forgotten beyond a bound.

`MODELREG_RATE_LIMITS="reads=200/400,denials=5"` (rate per second [/ burst, default the
rate]) overrides any class; `MODELREG_RATE_LIMITS=off` turns limiting off. The defaults
(reads 5000/s burst 10000, writes 2000/s burst 4000, denials 20/s burst 400, per caller
and process) are far above what the test suite and `make bench` reach.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from modelreg.access import TABLE, Role
from modelreg.errors import ModelregError

ENV = "MODELREG_RATE_LIMITS"
MAX_BUCKETS = 100_000
READ_VERBS = ("Get", "List", "Watch", "Search", "Find", "Diff", "Download", "BatchGet", "Check", "Explain")


class MethodClass(StrEnum):
    READS = "reads"
    WRITES = "writes"
    DENIALS = "denials"


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float
    """Tokens added per second."""
    burst: float
    """Bucket size: calls a caller may make at once."""


DEFAULT_LIMITS: Mapping[MethodClass, Limit] = {
    MethodClass.READS: Limit(5000, 10000),
    MethodClass.WRITES: Limit(2000, 4000),
    MethodClass.DENIALS: Limit(20, 400),
}


class RateLimited(ModelregError):
    """RESOURCE_EXHAUSTED; `retry_after_s` goes into the status as google.rpc.RetryInfo."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    limits: Mapping[MethodClass, Limit]
    enabled: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RateLimitSettings:
        raw = environ.get(ENV, "").strip()
        if raw.lower() in {"off", "0", "none"}:
            return cls(DEFAULT_LIMITS, enabled=False)
        limits = dict(DEFAULT_LIMITS)
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, _, spec = item.partition("=")
            rate, _, burst = spec.partition("/")
            try:
                klass = MethodClass(name.strip())
                limit = Limit(float(rate), float(burst) if burst else max(1.0, float(rate)))
            except ValueError:
                raise ValueError(
                    f"{ENV}: {item!r} is not reads|writes|denials=<per second>[/<burst>]"
                ) from None
            if not (limit.rate > 0 and limit.burst >= 1 and math.isfinite(limit.rate + limit.burst)):
                raise ValueError(f"{ENV}: {item!r} needs a rate > 0 and a burst >= 1")
            limits[klass] = limit
        return cls(limits)


def method_class(method: str) -> MethodClass:
    """reads or writes for a full gRPC method name (`/pkg.Service/Method`): a read when the
    permission table asks only viewer for it, or when its verb reads."""
    permission = TABLE.get(method)
    if permission is not None and permission.role is Role.VIEWER:
        return MethodClass.READS
    verb = method.rsplit("/", 1)[-1]
    return MethodClass.READS if verb.startswith(READ_VERBS) else MethodClass.WRITES


class RateLimiter:
    def __init__(
        self,
        settings: RateLimitSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        classify: Callable[[str], MethodClass] = method_class,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._classify = classify
        self._buckets: OrderedDict[tuple[MethodClass, str], _Bucket] = OrderedDict()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RateLimiter:
        return cls(RateLimitSettings.from_env(environ))

    def _refilled(self, klass: MethodClass, key: str) -> tuple[_Bucket, Limit]:
        limit = self.settings.limits[klass]
        now = self._clock()
        bucket = self._buckets.get((klass, key))
        if bucket is None:
            bucket = self._buckets[(klass, key)] = _Bucket(limit.burst, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end((klass, key))
            bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.updated) * limit.rate)
            bucket.updated = now
        return bucket, limit

    def _refuse(self, klass: MethodClass, key: str, bucket: _Bucket, limit: Limit) -> RateLimited:
        delay = max(0.001, (1 - bucket.tokens) / limit.rate)
        return RateLimited(
            f"rate limit: {klass.value} for {key} allow {limit.rate:g}/s (burst {limit.burst:g}); "
            f"retry in {delay:.3f}s",
            delay,
        )

    def take(self, klass: MethodClass, key: str) -> None:
        """Spends one token, or raises RateLimited."""
        if not self.settings.enabled:
            return
        bucket, limit = self._refilled(klass, key)
        if bucket.tokens < 1:
            raise self._refuse(klass, key, bucket, limit)
        bucket.tokens -= 1

    def check(self, klass: MethodClass, key: str) -> None:
        """Raises RateLimited when the bucket is empty, without spending."""
        if not self.settings.enabled:
            return
        bucket, limit = self._refilled(klass, key)
        if bucket.tokens < 1:
            raise self._refuse(klass, key, bucket, limit)

    def check_denials(self, key: str) -> None:
        """RateLimited when `key`'s denials bucket is empty (before expensive checks)."""
        self.check(MethodClass.DENIALS, key)

    def admit(self, method: str, principal: str) -> None:
        """A call of `principal`: its reads/writes bucket pays, and a caller whose denials
        bucket is empty waits (before authorization could record one more denial)."""
        self.check(MethodClass.DENIALS, principal)
        self.take(self._classify(method), principal)

    def charge_denial(self, key: str) -> RateLimited | None:
        """After an UNAUTHENTICATED/PERMISSION_DENIED outcome; the refusal to answer
        instead when the denials bucket was already empty."""
        try:
            self.take(MethodClass.DENIALS, key)
        except RateLimited as limited:
            return limited
        return None


def peer_key(peer: str | None) -> str:
    """`peer:<ip>` of a gRPC peer string (`ipv4:1.2.3.4:5678`, `ipv6:[::1]:5678`): the port is
    dropped, so reconnecting does not give a fresh bucket."""
    if not peer:
        return "peer:unknown"
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return "peer:" + rest[1 : rest.find("]")]
    if kind == "ipv4":
        return "peer:" + rest.rsplit(":", 1)[0]
    return "peer:" + peer
