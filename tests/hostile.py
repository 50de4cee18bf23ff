"""Hostile token bodies every token parser must refuse (unit tests and the fuzz suite share them)."""

from __future__ import annotations

HOSTILE_JSON: list[bytes] = [
    b'{"t":{"0":1e400}}',
    b'{"t":{"0":99999999999999999999}}',
    b'{"t":{"0":NaN}}',
    b'{"t":{"0":-Infinity}}',
    b'{"t":{"0":-1}}',
    b'{"t":{"0":"1"}}',
    b'{"t":{"0":1.5}}',
    b'{"t":{"0":true}}',
    b'{"t":{"-1":1}}',
    b'{"t":{"\xd9\xa1":1}}',
    b'{"t":[1]}',
    b"[1]",
    b'"x"',
    b'{"t\\u0000":{"0":1}}',
    b'{"\\ud800":{"0":1}}',
    b"[" * 2500 + b"]" * 2500,
    b'{"a":' * 2500 + b"1" + b"}" * 2500,
    b"\xff\xfe",
    b"",
    b'{"t":{"0":1}' + b" " * 40_000 + b"}",
]
