"""Which materials in use may not be sent today, or soon: what ops admins must act on.

A material's ``approved``/``valid_until`` is a compliance date, not a syntax error: on the day it
passes, the steps that send the material are skipped (each skip recorded with its reason) and
the service keeps running. This module only answers the question; the service logs it at start,
exports it in ``/metrics`` and tells the playbook's ``ops_contacts`` once a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .playbook import Playbook
from .references import EXPIRY_WARNING_DAYS


@dataclass(frozen=True)
class MaterialFinding:
    """One material an active step uses that is (``blocked``) or will soon be unsendable."""

    material: str
    problem: str
    blocked: bool
    uses: tuple[str, ...]

    def __str__(self) -> str:
        verb = "skipped" if self.blocked else "then skipped"
        return f"{self.problem}; {verb}: {'; '.join(self.uses)}"


def material_findings(playbook: Playbook, today: date, *, horizon_days: int = EXPIRY_WARNING_DAYS
                      ) -> list[MaterialFinding]:
    """Materials in use that may not be sent on ``today``, then those expiring within the horizon."""
    blocked: list[MaterialFinding] = []
    expiring: list[MaterialFinding] = []
    for mid in sorted(playbook.material_uses):
        material = playbook.materials.get(mid)
        uses = playbook.material_uses[mid]
        if material is None:
            continue
        problem = material.compliance_problem(today)
        notice = material.expiry_notice(today, horizon_days)
        if problem is not None:
            blocked.append(MaterialFinding(mid, problem, True, uses))
        elif notice is not None:
            expiring.append(MaterialFinding(mid, notice, False, uses))
    return blocked + expiring
