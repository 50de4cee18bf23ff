"""Registry URIs: `modelreg://ns/model`, `@alias`, `@v1.2.0`, `/3`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelreg.names import ID_PATTERN

_ID = ID_PATTERN.pattern.removeprefix("^").removesuffix("$")
_URI = re.compile(
    rf"^(?:modelreg://)?(?P<ns>{_ID})/(?P<model>{_ID})"
    r"(?:/(?P<number>[1-9][0-9]*)|@(?P<ref>[A-Za-z0-9._-]{1,128}))?$"
)


@dataclass(frozen=True, slots=True)
class ModelUri:
    namespace: str
    model: str
    version: int | None = None
    """A version number, from `/3`."""
    reference: str | None = None
    """An alias, stage or semantic version, from `@production` or `@v1.2.0`."""

    @property
    def model_name(self) -> str:
        return f"namespaces/{self.namespace}/models/{self.model}"

    @property
    def parent(self) -> str:
        return f"namespaces/{self.namespace}"

    def __str__(self) -> str:
        suffix = f"/{self.version}" if self.version else f"@{self.reference}" if self.reference else ""
        return f"modelreg://{self.namespace}/{self.model}{suffix}"


def parse_uri(text: str) -> ModelUri:
    """Parses `modelreg://ns/model[/n|@ref]`; the scheme may be omitted."""
    match = _URI.match(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a model URI: expected modelreg://namespace/model, optionally "
            "followed by /<version number> or @<alias|stage|vMAJOR.MINOR.PIPELINE>"
        )
    number = match["number"]
    return ModelUri(match["ns"], match["model"], int(number) if number else None, match["ref"])
