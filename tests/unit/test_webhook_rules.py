"""Webhook rules that need no server: the Standard Webhooks signature (checked against the
spec's published test vector), the address guard's verdicts, and the retry policy."""

from __future__ import annotations

import ipaddress

import pytest

from modelreg.errors import InvalidArgument
from modelreg.events.domain import signing
from modelreg.events.domain.addresses import AllowList, check_addresses
from modelreg.events.domain.webhooks import Attempt, Outcome, RetryPolicy

# The Standard Webhooks specification's test vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_reproduces_the_specs_published_test_vector() -> None:
    assert signing.sign(signing.key_of(SECRET), MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert signing.verify(SECRET, MSG_ID, TIMESTAMP, BODY, SIGNATURE)
    assert not signing.verify(SECRET, MSG_ID, TIMESTAMP + 1, BODY, SIGNATURE)


def test_during_a_rotation_the_header_lists_one_signature_per_secret_and_either_verifies() -> None:
    other = "whsec_" + "QUJD" * 8
    header = signing.signature_header(
        [signing.key_of(other), signing.key_of(SECRET)], MSG_ID, TIMESTAMP, BODY
    )
    assert header.split(" ")[1] == SIGNATURE
    assert signing.verify(SECRET, MSG_ID, TIMESTAMP, BODY, header)
    assert signing.verify(other, MSG_ID, TIMESTAMP, BODY, header)


@pytest.mark.parametrize("secret", ["plain", "whsec_***", "whsec_" + "QUJD" * 2])
def test_a_secret_that_is_not_whsec_base64_of_24_to_64_bytes_is_refused(secret: str) -> None:
    with pytest.raises(InvalidArgument):
        signing.key_of(secret)


ALLOW = AllowList.parse("127.0.0.1, 10.20.0.0/16, hooks.internal")


@pytest.mark.parametrize(
    ("host", "address", "kind"),
    [
        ("10.1.2.3", "10.1.2.3", "private"),
        ("127.0.0.2", "127.0.0.2", "loopback"),
        ("169.254.169.254", "169.254.169.254", "link-local"),
        ("::1", "::1", "loopback"),
        ("evil.example", "127.0.0.1", "loopback"),  # a hostname resolving to loopback
        ("fe80::1", "fe80::1", "link-local"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1", "private"),
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(host: str, address: str, kind: str) -> None:
    refusal = check_addresses(host, [ipaddress.ip_address(address)], ALLOW)
    assert refusal is not None and kind in refusal


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),  # named in the allow-list
        ("hooks.internal", "10.9.9.9"),
        ("anything", "10.20.3.4"),  # in an allowed network
        ("example.com", "93.184.215.14"),  # public
    ],
)
def test_allowed_and_public_addresses_pass(host: str, address: str) -> None:
    assert check_addresses(host, [ipaddress.ip_address(address)], ALLOW) is None


def test_one_refused_address_among_several_refuses_the_host() -> None:
    addresses = [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.1")]
    assert check_addresses("split.example", addresses, ALLOW) is not None


def test_the_retry_policy() -> None:
    policy = RetryPolicy(max_attempts=3, base_s=1.0, cap_s=10.0)
    assert policy.outcome(1, Attempt(204)) is Outcome.DELIVERED
    assert policy.outcome(1, Attempt(500)) is Outcome.RETRYING
    assert policy.outcome(1, Attempt(429)) is Outcome.RETRYING
    assert policy.outcome(1, Attempt(0, "timed out")) is Outcome.RETRYING
    assert policy.outcome(3, Attempt(503)) is Outcome.DEAD
    assert policy.outcome(1, Attempt(400)) is Outcome.FAILED
    assert policy.outcome(1, Attempt(404)) is Outcome.FAILED
    assert policy.outcome(1, Attempt(410)) is Outcome.DISABLED
    # Exponential with jitter, capped; Retry-After wins when longer.
    assert 0.5 <= policy.delay_s(1, Attempt(500), 0.0) <= policy.delay_s(1, Attempt(500), 0.99) < 1.0
    assert 2.0 <= policy.delay_s(3, Attempt(500), 0.0) < 4.0
    assert policy.delay_s(30, Attempt(500), 0.99) <= 10.0
    assert policy.delay_s(1, Attempt(429, retry_after_s=7), 0.0) == 7


def test_annotations_are_bounded_and_replaced_as_a_whole_by_an_update() -> None:
    from modelreg.events.domain.webhooks import (
        MAX_ANNOTATION_VALUE,
        MAX_ANNOTATIONS,
        Update,
        Webhook,
        WebhookUpdated,
        check_annotations,
        decide,
    )

    assert check_annotations({"b": "2", "a": ""}) == (("a", ""), ("b", "2"))
    for bad in (
        {f"k{i}": "" for i in range(MAX_ANNOTATIONS + 1)},
        {"": "v"},
        {"k" * 129: "v"},
        {"k": "v" * (MAX_ANNOTATION_VALUE + 1)},
    ):
        with pytest.raises(InvalidArgument):
            check_annotations(bad)
    name = "namespaces/ns/webhooks/hook"
    current = Webhook(name=name, url="https://example.com/h", annotations=(("a", "1"), ("b", "2")))
    changes = Webhook(name=name, url="", annotations=(("c", "3"),))
    event = decide(current, Update(name, changes, ("annotations",)))
    assert isinstance(event, WebhookUpdated)
    assert event.webhook.annotations == (("c", "3"),) and event.webhook.url == current.url
