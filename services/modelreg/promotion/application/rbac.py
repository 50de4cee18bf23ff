"""Roles per namespace, from the environment.

MODELREG_ROLES="alice=approver@ns1,bob=admin@*,carol=editor@ns1,carol=viewer@ns2"

Each entry grants `principal` a role in one namespace (`*` = every namespace);
a principal's role in a namespace is the highest that applies. Roles include
the ones below them: viewer < editor < approver < admin. When MODELREG_ROLES
is unset or empty, RBAC is off and every principal is admin everywhere (the
local dev mode, like open-mode auth).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelreg.promotion.domain.values import Role

ENV = "MODELREG_ROLES"
_ENTRY = re.compile(
    r"^(?P<principal>[^=@,\s]+)=(?P<role>[a-z]+)@(?P<namespace>\*|[a-z0-9][a-z0-9._-]{0,127})$"
)


@dataclass(frozen=True, slots=True)
class RoleMap:
    grants: Mapping[tuple[str, str], Role] = field(default_factory=dict)
    """(principal, namespace or '*') -> role."""
    enabled: bool = True

    @classmethod
    def parse(cls, spec: str) -> RoleMap:
        spec = spec.strip()
        if not spec:
            return cls({}, enabled=False)
        grants: dict[tuple[str, str], Role] = {}
        for raw in spec.split(","):
            entry = raw.strip()
            match = _ENTRY.match(entry)
            if match is None or match["role"].upper() not in Role.__members__:
                raise ValueError(f"{ENV}: {entry!r} is not principal=viewer|editor|approver|admin@namespace")
            key = (match["principal"], match["namespace"])
            grants[key] = max(grants.get(key, Role.VIEWER), Role[match["role"].upper()])
        return cls(grants)

    @classmethod
    def from_env(cls) -> RoleMap:
        return cls.parse(os.environ.get(ENV, ""))

    def role(self, principal: str, namespace: str) -> Role | None:
        if not self.enabled:
            return Role.ADMIN
        roles = [self.grants.get((principal, namespace)), self.grants.get((principal, "*"))]
        present = [r for r in roles if r is not None]
        return max(present) if present else None

    def allows(self, principal: str, namespace: str, needed: Role) -> bool:
        role = self.role(principal, namespace)
        return role is not None and role >= needed
