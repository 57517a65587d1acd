"""What the typed API mixins need from the client: ``call`` plus cursor paging.

The mixins (:mod:`api_contacts`, :mod:`api_groups`, :mod:`api_messages`) only build bodies and
parse replies; transport, token, retries and rate limits live in :class:`scrm.adapters.wecom.api.WeComClient`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

from scrm.adapters.wecom.models import PagedResponse

log = logging.getLogger("scrm.adapters.wecom.api")

P = TypeVar("P", bound=PagedResponse)

JsonDict = dict[str, Any]


class ApiBase:
    """Abstract base of the API mixins."""

    @property
    def agent_id(self) -> int:
        """The self-built app's AgentId (filled into message bodies)."""
        raise NotImplementedError

    async def call(self, api: str, body: Mapping[str, Any] | None = None, *, method: str = "POST",
                   params: Mapping[str, Any] | None = None) -> JsonDict:
        """Call one WeCom API and return the decoded reply (errcode 0); see WeComClient.call."""
        raise NotImplementedError

    async def _pages(self, api: str, body: Mapping[str, Any], model: type[P], *,
                     method: str = "POST") -> AsyncIterator[P]:
        """Yield every page of a cursor API, following ``next_cursor`` until it is empty.

        GET APIs take the cursor as a query parameter, POST APIs in the body. A cursor seen
        twice stops the walk: a server bug must not turn into an endless loop of calls.
        """
        cursor = str(body.get("cursor", "") or "")
        seen: set[str] = set()
        while True:
            if method == "GET":
                data = await self.call(api, method="GET", params={**body, "cursor": cursor})
            else:
                data = await self.call(api, {**body, "cursor": cursor})
            page = model.model_validate(data)
            yield page
            cursor = page.next_cursor
            if not cursor:
                return
            if cursor in seen:
                log.warning("cursor repeated; stopping pagination", extra={"api": api})
                return
            seen.add(cursor)


def without_none(**fields: Any) -> JsonDict:
    """A body from keyword arguments, leaving out the ones not given (WeCom applies defaults)."""
    return {k: v for k, v in fields.items() if v is not None}
