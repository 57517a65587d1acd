"""The sandbox's follow relations, indexed by member and by customer.

A seeded corp holds hundreds of thousands of relations; ``batch/get_by_user`` and
``externalcontact/get`` look up one member's or one customer's, which a scan of every relation
made O(corp) per call. The table is still a plain ``dict`` keyed by ``(userid, external_userid)``:
every way of changing it keeps both indexes right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, overload

from scrm.sandbox.records import Follow

Key = tuple[str, str]  # (userid, external_userid)
_MISSING: Any = object()
_T = TypeVar("_T")


class FollowTable(dict[Key, Follow]):
    """``(userid, external_userid) → Follow`` with per-member and per-customer indexes."""

    def __init__(self) -> None:
        super().__init__()
        self._by_member: dict[str, dict[str, Follow]] = {}
        self._by_customer: dict[str, dict[str, Follow]] = {}

    def of_member(self, userid: str) -> list[Follow]:
        return list(self._by_member.get(userid, {}).values())

    def of_customer(self, external_userid: str) -> list[Follow]:
        return list(self._by_customer.get(external_userid, {}).values())

    def _index(self, key: Key, follow: Follow) -> None:
        self._by_member.setdefault(key[0], {})[key[1]] = follow
        self._by_customer.setdefault(key[1], {})[key[0]] = follow

    def _unindex(self, key: Key) -> None:
        for index, outer, inner in ((self._by_member, key[0], key[1]), (self._by_customer, key[1], key[0])):
            bucket = index.get(outer)
            if bucket is not None:
                bucket.pop(inner, None)
                if not bucket:
                    del index[outer]

    def __setitem__(self, key: Key, follow: Follow) -> None:
        super().__setitem__(key, follow)
        self._index(key, follow)

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        self._unindex(key)

    @overload
    def pop(self, key: Key, /) -> Follow: ...

    @overload
    def pop(self, key: Key, default: Follow, /) -> Follow: ...

    @overload
    def pop(self, key: Key, default: _T, /) -> Follow | _T: ...

    def pop(self, key: Key, default: Any = _MISSING, /) -> Any:
        if key in self:
            self._unindex(key)
            return super().pop(key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[Key, Follow]:
        key, follow = super().popitem()
        self._unindex(key)
        return key, follow

    def setdefault(self, key: Key, default: Follow, /) -> Follow:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Follow) -> None:
        items = other.items() if isinstance(other, Mapping) else other
        for key, follow in items:
            self[key] = follow
        if kwargs:
            raise TypeError("follow keys are (userid, external_userid) tuples")

    def clear(self) -> None:
        super().clear()
        self._by_member.clear()
        self._by_customer.clear()
