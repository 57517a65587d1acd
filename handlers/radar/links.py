"""Minting tracked links: what welcome messages, SOP pushes and task cards call.

A tracked link is ``{server.public_url}/r/{token}``; the token is sealed (encrypted and
authenticated, see ``tokens``) and carries material, sender, occurrence and, for 1:1 sends, the
customer, none of it readable by whoever the link is forwarded to. The target URL is not in the
token: the click view looks it up in the playbook, so a token can only lead to a material.

Typical use inside a handler's transaction::

    links = LinkMaker(settings)
    url = links.make_link("m-fund-weekly", userid, customer=ext, occurrence=occ)
    await record_send(session, links, url, clock.now())   # counts towards the open rate
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.radar.models import RadarSend
from handlers.radar.tokens import Claims, sign, signing_key, verify
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.config import Settings
from scrm.playbook.templates import RenderedMaterial

PATH_PREFIX = "/r/"
# A survey material's link (``survey:`` in materials/) leads to the service's own feedback form
# for the same token: ``/r/{token}`` counts the open, then redirects to ``/f/{token}``.
SURVEY_PATH = "/f/"


class LinkMaker:
    """Mints and reads tracked links with one configuration (key and public URL)."""

    def __init__(self, settings: Settings) -> None:
        self.key = signing_key(settings)
        self.base = settings.server.public_url.rstrip("/") + PATH_PREFIX

    def make_link(self, material_id: str, sender: str, *, customer: str | None = None,
                  occurrence: str | None = None) -> str:
        """The tracked URL of one send of ``material_id`` by ``sender``."""
        return self.base + sign(self.key, material_id, sender, customer=customer, occurrence=occurrence)

    def claims_of(self, link_or_token: str) -> Claims | None:
        """The claims of a link or bare token minted with this key; None if not genuine."""
        token = link_or_token.rsplit(PATH_PREFIX, 1)[-1]
        return verify(self.key, token)

    def track(self, material: RenderedMaterial, sender: str, *, customer: str | None = None,
              occurrence: str | None = None) -> RenderedMaterial:
        """``material`` with its link URL replaced by a tracked link (others unchanged)."""
        if material.link is None:
            return material
        url = self.make_link(material.id, sender, customer=customer, occurrence=occurrence)
        return dataclasses.replace(material, link=material.link.model_copy(update={"url": url}))


def make_link(settings: Settings, material_id: str, sender: str, *, customer: str | None = None,
              occurrence: str | None = None) -> str:
    """One-off convenience for :meth:`LinkMaker.make_link` (handlers minting many: keep a maker)."""
    return LinkMaker(settings).make_link(material_id, sender, customer=customer, occurrence=occurrence)


async def record_send(session: AsyncSession, links: LinkMaker, link: str, at: datetime) -> bool:
    """Count one send of a minted link (in the caller's transaction); a repeat counts nothing.

    Returns False when ``link`` is not a genuine tracked link.
    """
    claims = links.claims_of(link)
    if claims is None:
        return False
    row = {"token_id": claims.token_id, "material_id": claims.material, "sender": claims.sender,
           "external_userid": claims.customer, "occurrence": claims.occurrence, "at": at}
    await session.execute(insert_ignore(dialect_of(session), table_of(RadarSend), ["token_id"]), row)
    return True
