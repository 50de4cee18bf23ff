"""The registry's services, found by name at run time.

Libraries never import a service (an import-linter contract), yet the operator
tools (`modelreg ops`) need each service's schema and folds; they look the spec
up by module name, as `modelreg dev` starts a service by `python -m` module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from modelreg.runtime.host import ServiceSpec

SERVICE_NAMES = ("catalog", "versioning", "lineage", "promotion", "audit")


class UnknownService(ValueError):
    pass


def service_spec(name: str) -> ServiceSpec:
    """The spec of service `name` with its default schema."""
    if name not in SERVICE_NAMES:
        raise UnknownService(f"unknown service {name!r}: expected one of {', '.join(SERVICE_NAMES)} or all")
    spec: Callable[[], ServiceSpec] = importlib.import_module(f"modelreg.{name}.main").spec
    return spec()


def service_names(selection: str) -> list[str]:
    """`all`, or one service's name, as a list of names."""
    if selection == "all":
        return list(SERVICE_NAMES)
    service_spec(selection)  # names the mistake early
    return [selection]
