"""The post-suite log scan: no test token, secret or key may appear in any service log.

conftest points `MODELREG_LOG_FILE` at a file of this session before anything starts, so
the services in the test process and the service processes the tests spawn (which inherit
the environment) all append their rendered log lines to it. At the end of the session the
file is scanned for
- every secret a test registered with `register_secret` (API tokens, JWT signing secrets,
  private keys) and
- anything that looks like a credential the redactor should have caught (an unredacted
  `Bearer <token>`, a modelreg API token, a JWT, a PEM private key).
The scan fails the run on any finding, and also when it has nothing to read: a log file
missing or without the session's own marker line means the services did not log where the
scan looks, and a scan of nothing would pass for the wrong reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelreg.observability.logging import _SECRET_TEXT

SESSION_MARKER = "modelreg_test_log_scan_started"
MIN_SECRET_CHARS = 8

_known: set[str] = set()
_ran = False


def marker_logged() -> None:
    """Called by the session's marker fixture, which runs before the first test."""
    global _ran
    _ran = True


def tests_ran() -> bool:
    return _ran


def register_secret(value: str) -> str:
    """Adds a secret the tests use to the scan's list; returns it, for `x = register_secret(...)`."""
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"a scanned secret needs at least {MIN_SECRET_CHARS} characters to be found")
    _known.add(value)
    return value


def known_secrets() -> frozenset[str]:
    return frozenset(_known)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


@dataclass(frozen=True)
class ScanResult:
    files: int
    lines: int
    findings: list[Finding]


def scan(paths: Iterable[Path], secrets: Iterable[str]) -> ScanResult:
    wanted = sorted(set(secrets))
    findings: list[Finding] = []
    files = lines = 0
    for path in paths:
        files += 1
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                lines += 1
                for secret in wanted:
                    if secret in line:
                        findings.append(Finding(path, number, f"a known secret ({_hint(secret)})"))
                for match in _SECRET_TEXT.finditer(line):
                    what = f"credential-looking text ({_hint(match.group())})"
                    findings.append(Finding(path, number, what))
    return ScanResult(files, lines, findings)


def check_session_logs(path: Path, secrets: Iterable[str]) -> list[str]:
    """The problems with a session's log file, empty when it is clean and was really written."""
    if not path.exists():
        return [f"log scan: {path} was never written: the services did not log where the scan reads"]
    if SESSION_MARKER not in path.read_text(encoding="utf-8", errors="replace"):
        return [f"log scan: {path} lacks the session marker {SESSION_MARKER!r}: logging was not configured"]
    result = scan([path], secrets)
    return [f"log scan: secret in a service log: {finding}" for finding in result.findings]


def _hint(secret: str) -> str:
    """Enough of a secret to find it in the test code, never the whole of it."""
    shown = re.sub(r"\s+", " ", secret)[:6]
    return f"starts {shown!r}, {len(secret)} chars"
