"""Events that do not come from WeCom: scheduler ticks, CRM changes, radar clicks.

They travel through the same inbox and dispatcher as callbacks (one pipeline, one error path).

Each kind is one typed class, owned by one feature (``handlers/<name>/events.py``) and declared
in its ``Feature.events``::

    class CrmChanged(Internal):
        KIND: ClassVar[str] = "crm.changed"
        SOURCE: ClassVar[str] = "crm"
        crm_ids: tuple[str, ...]
        generation: str

Producers build the class (``CrmChanged(at=now, crm_ids=..., generation=...)``) and add it to
the inbox; handlers register with ``@router.on(CrmChanged)`` and read typed attributes.
:class:`Scheduled` kinds are (also) fired by scheduler jobs, whose ``due_job`` rows keep the kind
as a string; the fired event carries ``job_key`` and ``fire_time``.

Stored form (unchanged, so rows already in a database still parse): the inbox keeps an internal
event as the JSON of :class:`InternalEvent`, ``{"source", "kind", "at", "payload"}``; the payload
holds the typed fields by name (or by their ``serialization_alias`` where the name is taken, e.g.
a ``sop.due`` slot's ``at``). :class:`EventKinds` (kind → class, filled from the composed
features) turns a stored event into its typed class; a kind nobody declares stays an untyped
:class:`InternalEvent`, so nothing is lost. A payload that does not fit its class raises
:class:`EventPayloadError` naming the kind and the fields.

A leaf module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

ENVELOPE = frozenset({"source", "at"})  # typed fields that are not payload keys


class InternalEvent(BaseModel):
    """An internal event as stored (and, for a kind no feature declares, as dispatched)."""

    model_config = ConfigDict(frozen=True)

    source: str  # scheduler | crm | radar | ...
    kind: str
    at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)


class EventKindError(Exception):
    """Event kinds cannot be registered: a class without KIND, or one kind declared twice."""


class EventPayloadError(Exception):
    """A stored event's payload does not fit the class of its kind (one line: kind, class, fields)."""


class Internal(BaseModel):
    """Base of the typed internal events: one subclass per kind.

    ``KIND`` names the kind (what the inbox row stores); ``SOURCE`` is who adds it when a
    producer builds it (the scheduler stores its own, ``"scheduler"``). ``at`` is when it
    happened; every other field is a key of the stored payload.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")  # a misspelt field is an error, not lost

    KIND: ClassVar[str]
    SOURCE: ClassVar[str]

    at: datetime
    source: str = ""  # filled with SOURCE when not given (the stored row's own when parsed)

    def model_post_init(self, context: Any, /) -> None:
        if not self.source:
            object.__setattr__(self, "source", type(self).SOURCE)

    @property
    def kind(self) -> str:
        return self.KIND

    # ------------------------------------------------------------------ stored form
    @classmethod
    def payload_keys(cls) -> Mapping[str, str]:
        """Field name → payload key (the ``serialization_alias`` where the name is taken);
        computed once per class, since every stored or parsed event reads it."""
        return _payload_keys(cls)

    def stored(self) -> InternalEvent:
        """The stored form (what the inbox writes).

        The payload holds the fields that were given (by the producer, or by the stored row this
        event was parsed from): a field left to its default, e.g. ``fire_time`` of an event no
        scheduler fired, is left out, so a parsed row is written back with exactly its keys.
        """
        keys = type(self).payload_keys()
        dumped = self.model_dump(mode="json", exclude=set(ENVELOPE), exclude_unset=True)
        payload = {keys[name]: value for name, value in dumped.items()}
        return InternalEvent(source=self.source, kind=self.KIND, at=self.at, payload=payload)

    @classmethod
    def from_stored(cls, event: InternalEvent) -> Internal:
        """This class from a stored event of its kind; payload keys it does not know are ignored.

        Raises :class:`EventPayloadError` when the payload does not fit.
        """
        payload = event.payload
        data: dict[str, Any] = {name: payload[key] for name, key in cls.payload_keys().items() if key in payload}
        try:
            typed: Internal = cls.model_validate({**data, "at": event.at, "source": event.source})
        except ValidationError as exc:
            raise EventPayloadError(f"{event.kind}: payload does not fit {cls.__name__}: "
                                    f"{_problems(exc, cls.payload_keys())}") from None
        return typed


class Scheduled(Internal):
    """A kind (also) fired by scheduler jobs: the job's key and the fire time it stands for.

    Both are None when a producer added the event itself.
    """

    SOURCE: ClassVar[str] = "scheduler"

    job_key: str | None = None
    fire_time: datetime | None = None

    @field_serializer("fire_time")
    def _fire_time_iso(self, value: datetime | None) -> str | None:
        # As the scheduler writes it (``datetime.isoformat``).
        return value.isoformat() if value is not None else None


AnyInternal = Internal | InternalEvent


def stored_form(event: AnyInternal) -> InternalEvent:
    """The stored (untyped) form of a typed or untyped internal event."""
    return event if isinstance(event, InternalEvent) else event.stored()


class EventKinds:
    """Kind → typed class: the kinds a service's features declare (``Feature.events``)."""

    def __init__(self, classes: Iterable[type[Internal]] = ()) -> None:
        self._by_kind: dict[str, type[Internal]] = {}
        for cls in classes:
            self.add(cls)

    def add(self, cls: type[Internal]) -> None:
        """Register ``cls`` for its KIND; a class without KIND/SOURCE, or a taken kind, is refused."""
        kind = getattr(cls, "KIND", None)
        if not isinstance(kind, str) or not kind:
            raise EventKindError(f"{cls.__qualname__} declares no KIND")
        if not isinstance(getattr(cls, "SOURCE", None), str):
            raise EventKindError(f"{cls.__qualname__} ({kind!r}) declares no SOURCE")
        keys = list(cls.payload_keys().values())
        clash = sorted({k for k in keys if keys.count(k) > 1})
        if clash:
            raise EventKindError(f"{cls.__qualname__} ({kind!r}): two fields store the payload key {clash[0]!r}")
        known = self._by_kind.get(kind)
        if known is not None and known is not cls:
            raise EventKindError(f"event kind {kind!r} is declared twice: {_name(known)} and {_name(cls)}")
        self._by_kind[kind] = cls

    def get(self, kind: str) -> type[Internal] | None:
        return self._by_kind.get(kind)

    def __contains__(self, kind: object) -> bool:
        return kind in self._by_kind

    def __iter__(self) -> Iterator[type[Internal]]:
        return iter(self._by_kind.values())

    def __len__(self) -> int:
        return len(self._by_kind)

    def typed(self, event: InternalEvent) -> AnyInternal:
        """The typed class of ``event``'s kind, or ``event`` itself for a kind nobody declares.

        Raises :class:`EventPayloadError` when the payload does not fit that class.
        """
        cls = self._by_kind.get(event.kind)
        return event if cls is None else cls.from_stored(event)

    def parse_json(self, raw: str) -> AnyInternal:
        """A stored row's JSON → its typed event (``ValueError`` for JSON that is no event at all)."""
        return self.typed(InternalEvent.model_validate_json(raw))


@functools.cache
def _payload_keys(cls: type[Internal]) -> Mapping[str, str]:
    return MappingProxyType({name: info.serialization_alias or name
                             for name, info in cls.model_fields.items() if name not in ENVELOPE})


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _problems(exc: ValidationError, keys: Mapping[str, str]) -> str:
    """Pydantic's errors on one line, by payload key: ``key: message (got value)``; ``a; b`` for several."""
    parts = []
    for err in exc.errors():
        loc = [keys.get(str(p), str(p)) if i == 0 else str(p) for i, p in enumerate(err["loc"])]
        where = ".".join(loc) or "payload"
        got = repr(err.get("input"))
        got = got if len(got) <= 40 else got[:37] + "..."
        parts.append(f"{where}: {err['msg']}" + ("" if err["type"] == "missing" else f" (got {got})"))
    return "; ".join(parts)
