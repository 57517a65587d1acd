"""What the service needs of its playbook, without knowing what a playbook is.

The kernel loads, reloads and reports on a :class:`PlaybookSource`; the composition root hands
it ``scrm.playbook.holder.PlaybookHolder``. Handlers receive ``source.current`` by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# One metric family: (name, help text, samples of (labels, value)).
Gauge = tuple[str, str, Sequence[tuple[Mapping[str, str], float]]]


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: ``applied`` with the now running version, or refused with every error."""

    applied: bool
    version: str
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "version": self.version, "errors": list(self.errors),
                "warnings": list(self.warnings)}


class PlaybookSource(Protocol):
    """A reloadable playbook: the last good one stays ``current`` when a reload is refused."""

    @property
    def current(self) -> Any: ...

    @property
    def version(self) -> str: ...

    @property
    def reload_failed(self) -> bool: ...

    @property
    def last_errors(self) -> tuple[str, ...]: ...

    def load(self) -> Any:
        """Initial load; raises (the service refuses to start) when it does not validate."""
        ...

    def reload(self) -> ReloadOutcome: ...

    def changed_on_disk(self) -> bool: ...

    def gauges(self) -> list[Gauge]:
        """Extra metric families the playbook reports (e.g. materials that may not be sent)."""
        ...


class NoPlaybook:
    """The source of a service run without a playbook (pipeline tests, benches)."""

    current: Any = None
    version = ""
    reload_failed = False
    last_errors: tuple[str, ...] = ()

    def load(self) -> Any:
        return None

    def reload(self) -> ReloadOutcome:
        return ReloadOutcome(False, "", ("this service runs without a playbook",))

    def changed_on_disk(self) -> bool:
        return False

    def gauges(self) -> list[Gauge]:
        return []
