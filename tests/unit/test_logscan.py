from __future__ import annotations

from pathlib import Path

import pytest

from tests.logscan import SESSION_MARKER, check_session_logs, register_secret, scan

SECRET = register_secret("unit-scan-secret-91c0d2e4")


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_the_scan_finds_a_known_secret_and_credential_looking_text(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "a.log",
        SESSION_MARKER,
        '{"event": "ok", "authorization": "[REDACTED]"}',
        f'{{"event": "leak", "detail": "{SECRET}"}}',
        '{"event": "leak", "header": "Bearer abcdefgh12345678"}',
        '{"event": "leak", "jwt": "eyJhbGciOi.eyJzdWIiOi.c2ln"}',
    )
    findings = scan([log], [SECRET]).findings
    assert [f.line for f in findings] == [3, 4, 5]
    assert all(SECRET not in str(f) for f in findings)  # the report never repeats the secret


def test_a_clean_log_passes_but_a_missing_or_unmarked_one_fails(tmp_path: Path) -> None:
    assert check_session_logs(_write(tmp_path / "ok.log", SESSION_MARKER, '{"event": "x"}'), [SECRET]) == []
    assert "never written" in check_session_logs(tmp_path / "absent.log", [SECRET])[0]
    assert "session marker" in check_session_logs(_write(tmp_path / "u.log", '{"event": "x"}'), [SECRET])[0]


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        register_secret("ta")
