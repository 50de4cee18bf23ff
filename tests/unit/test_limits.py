"""The one input policy (modelreg.limits) and its users: names, tokens, page tokens, decoding."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from modelreg import limits
from modelreg.errors import InvalidArgument
from modelreg.eventlog import ConsistencyToken, InvalidToken
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.grpcutil import decoding
from modelreg.names import check_id, parse_model_name, parse_version_name
from modelreg.paging import KeyType, decode_token, encode_token, page_request
from tests.hostile import HOSTILE_JSON


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def field_of(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return error.value.violations[0].field


@pytest.mark.parametrize("bad", ["a\x00b", "a\x01", "tab\there", "new\nline", "del\x7f", "c1\x85", "\ud800"])
def test_single_line_text_refuses_control_characters(bad: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        limits.check_text(bad, "model.title")
    assert field_of(error) == "model.title"


def test_free_text_allows_newline_and_tab_but_not_nul() -> None:
    assert limits.check_text("line 1\n\tline 2\r\n", "description", multiline=True)
    with pytest.raises(InvalidArgument, match="U\\+0000"):
        limits.check_text("a\x00", "description", multiline=True)


def test_text_limits_count_utf8_bytes() -> None:
    limits.check_text("é" * 5, "f", 10)
    with pytest.raises(InvalidArgument, match="11 bytes"):
        limits.check_text("é" * 5 + "x", "f", 10)


@pytest.mark.parametrize("bad", ["dup\n", "dup\r", " dup", "Dup", "", "a" * 129, "d\x00p"])
def test_names_fully_match(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        check_id(bad, "model")
    with pytest.raises(InvalidArgument):
        parse_model_name(f"namespaces/ns/models/{bad}")


def test_version_numbers_are_ascii_digits() -> None:
    assert parse_version_name("namespaces/a/models/b/versions/12", "v").number == 12
    for digits in ("١٢", "²", "１２", "12\n", "0", "01", "9" * 19):
        with pytest.raises(InvalidArgument):
            parse_version_name(f"namespaces/a/models/b/versions/{digits}", "v")
    with pytest.raises(InvalidArgument):
        limits.parse_decimal("١٢", "n")


def test_timestamps_out_of_range_name_the_field() -> None:
    limits.check_timestamp(limits.MAX_TIMESTAMP_SECONDS, 999_999_999, "as_of")
    bad = ((limits.MAX_TIMESTAMP_SECONDS + 1, 0), (limits.MIN_TIMESTAMP_SECONDS - 1, 0), (0, -1))
    for seconds, nanos in bad:
        with pytest.raises(InvalidArgument) as error:
            limits.check_timestamp(seconds, nanos, "as_of")
        assert field_of(error) == "as_of"


@pytest.mark.parametrize("raw", HOSTILE_JSON, ids=range(len(HOSTILE_JSON)))
def test_consistency_tokens_are_parsed_defensively(raw: bytes) -> None:
    with pytest.raises(InvalidToken):
        ConsistencyToken.decode(b64(raw))


def test_a_real_consistency_token_round_trips() -> None:
    token = ConsistencyToken({("modelreg.catalog.v1", 0): 12, ("modelreg.catalog.v1", 3): 0})
    assert ConsistencyToken.decode(token.encode()) == token
    with pytest.raises(InvalidToken):
        ConsistencyToken.decode("!!!" * 20_000)


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        (b'{"q":"F","k":[1e400]}', [int]),
        (b'{"q":"F","k":[99999999999999999999]}', [int]),
        (b'{"q":"F","k":[NaN]}', [int]),
        (b'{"q":"F","k":["x\\u0000"]}', [str]),
        (b'{"q":"F","k":["0001-01-01T00:00:00+01:00"]}', [datetime]),
        (b'{"q":"F","k":["2026-01-01T00:00:00"]}', [datetime]),
        (b'{"q":"F","k":[true]}', [int]),
        (b'{"q":"F","k":[]}', [int]),
        (b'{"q":"F","k":{"a":1}}', [int]),
        (b'{"q":"F","k":[' * 2500 + b"]}" * 2500, [int]),
    ],
)
def test_page_tokens_are_parsed_defensively(raw: bytes, keys: list[KeyType]) -> None:
    with pytest.raises(InvalidArgument) as error:
        decode_token(b64(raw), "F", keys)
    assert field_of(error) == "page_token"


@pytest.mark.parametrize(
    "token", [b64(b"[" * 2500 + b"]" * 2500), "99999999999999999999", "\x00", "A" * 100_000]
)
def test_hostile_page_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        page_request(10, token, [str], parent="namespaces/a")
    assert field_of(error) == "page_token"


def test_a_real_page_token_round_trips() -> None:
    request = page_request(10, "", [str, int], parent="p")
    token = encode_token(request.fingerprint, ("m", 3))
    assert page_request(10, token, [str, int], parent="p").after == ("m", 3)


def test_decoding_refuses_undecodable_bytes() -> None:
    deserialize = decoding.checking(catalog_pb2.GetRegisteredModelRequest.FromString)
    assert deserialize is not None
    refused = deserialize(b"\x0a\x05ab")  # a length-delimited field cut short
    assert isinstance(refused, decoding.Refused)
    assert isinstance(deserialize(b"\x0a\x02\xff\xfe"), decoding.Refused)  # invalid UTF-8 in a string
    ok = deserialize(catalog_pb2.GetRegisteredModelRequest(name="namespaces/a/models/b").SerializeToString())
    assert isinstance(ok, catalog_pb2.GetRegisteredModelRequest)


def test_decoding_walks_every_field() -> None:
    deserialize = decoding.checking(catalog_pb2.CreateRegisteredModelRequest.FromString)
    assert deserialize is not None
    request = catalog_pb2.CreateRegisteredModelRequest(request_id="r\x00")
    refused = deserialize(request.SerializeToString())
    assert isinstance(refused, decoding.Refused)
    assert refused.error.violations[0].field == "request_id"
    request = catalog_pb2.CreateRegisteredModelRequest()
    request.registered_model.tags["k"] = "v\x00"
    refused = deserialize(request.SerializeToString())
    assert isinstance(refused, decoding.Refused)
    assert refused.error.violations[0].field == "registered_model.tags['k']"
    request = catalog_pb2.CreateRegisteredModelRequest()
    request.registered_model.description = "# Title\n\n\tbody"
    assert not isinstance(deserialize(request.SerializeToString()), decoding.Refused)


def test_decoding_refuses_out_of_range_timestamps() -> None:
    message = promotion_pb2.GetPointersRequest(as_of=Timestamp(seconds=limits.MAX_TIMESTAMP_SECONDS + 1))
    with pytest.raises(InvalidArgument) as error:
        decoding.check_message(message)
    assert field_of(error) == "as_of"
    message = promotion_pb2.GetPointersRequest(as_of=Timestamp(seconds=0, nanos=-5))
    with pytest.raises(InvalidArgument):
        decoding.check_message(message)


def test_an_etag_is_ascii_digits() -> None:
    from modelreg.catalog.api.mapping import expected_revision

    assert expected_revision('W/"12"', "etag") == 12
    for etag in ('"١٢"', "²", "12\n", '"1"x'):
        with pytest.raises(InvalidArgument):
            expected_revision(etag, "etag")
