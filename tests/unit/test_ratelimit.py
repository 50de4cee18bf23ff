from __future__ import annotations

import pytest

from modelreg.grpcutil.ratelimit import (
    DEFAULT_LIMITS,
    Limit,
    MethodClass,
    RateLimited,
    RateLimiter,
    RateLimitSettings,
    method_class,
    peer_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_settings_parse_overrides_and_refuse_nonsense() -> None:
    settings = RateLimitSettings.from_env({"MODELREG_RATE_LIMITS": "reads=10/20, denials=2"})
    assert settings.limits[MethodClass.READS] == Limit(10, 20)
    assert settings.limits[MethodClass.DENIALS] == Limit(2, 2)
    assert settings.limits[MethodClass.WRITES] == DEFAULT_LIMITS[MethodClass.WRITES]
    assert not RateLimitSettings.from_env({"MODELREG_RATE_LIMITS": "off"}).enabled
    for bad in ("reads", "reads=x", "lunch=1/2", "reads=0/1", "reads=1/0", "reads=inf"):
        with pytest.raises(ValueError, match="MODELREG_RATE_LIMITS"):
            RateLimitSettings.from_env({"MODELREG_RATE_LIMITS": bad})


def test_a_bucket_refuses_beyond_its_burst_with_the_delay_until_the_next_token() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitSettings({**DEFAULT_LIMITS, MethodClass.WRITES: Limit(2, 3)}), clock=clock)
    method = "/modelreg.catalog.v1.CatalogService/CreateRegisteredModel"
    for _ in range(3):
        limiter.admit(method, "alice")
    with pytest.raises(RateLimited) as refused:
        limiter.admit(method, "alice")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    limiter.admit(method, "bob")  # a bucket per caller
    clock.now += 0.5
    limiter.admit(method, "alice")
    with pytest.raises(RateLimited):
        limiter.admit(method, "alice")


def test_denials_empty_block_the_caller_until_refilled() -> None:
    clock = Clock()
    limiter = RateLimiter(
        RateLimitSettings({**DEFAULT_LIMITS, MethodClass.DENIALS: Limit(1, 2)}), clock=clock
    )
    read = "/modelreg.catalog.v1.CatalogService/GetRegisteredModel"
    assert limiter.charge_denial("mallory") is None
    assert limiter.charge_denial("mallory") is None
    assert isinstance(limiter.charge_denial("mallory"), RateLimited)
    with pytest.raises(RateLimited, match="denials"):
        limiter.admit(read, "mallory")
    clock.now += 1
    limiter.admit(read, "mallory")


def test_method_classes_and_peer_keys() -> None:
    assert method_class("/modelreg.catalog.v1.CatalogService/ListRegisteredModels") is MethodClass.READS
    assert method_class("/modelreg.lineage.v1.LineageService/FindDownstream") is MethodClass.READS
    assert method_class("/modelreg.catalog.v1.CatalogService/DeleteRegisteredModel") is MethodClass.WRITES
    assert method_class("/x.Y/Frobnicate") is MethodClass.WRITES
    assert peer_key("ipv4:10.0.0.7:51234") == "peer:10.0.0.7"
    assert peer_key("ipv6:[::1]:51234") == "peer:::1"
    assert peer_key(None) == "peer:unknown"
