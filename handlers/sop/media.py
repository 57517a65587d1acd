"""Mass-send attachments that need a WeCom media id, filled in when the outbox sends.

A media id lives 3 days, and an add_msg_template may wait in the outbox longer than that
(rate limits, a backlog, an operator's retry), so the executor queues a placeholder naming the
file and :class:`MediaPreparer` resolves it through the lifecycle's content-hash cache
(:class:`scrm.adapters.wecom.media.MediaResolver`) just before the call::

    {"msgtype": "file", "file": {}, "_media": {"media_id": {"path": "docs/a.pdf", "type": "file"}}}
    → {"msgtype": "file", "file": {"media_id": "3a8..."}}

A file that is not there fails the action with its name (a text-only mass send would look
delivered while missing what it was for); an upload or download that fails is retried.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, cast

from scrm.adapters.wecom.media import MediaError, MediaResolver, Uploader
from scrm.adapters.wecom.models_messages import MediaType, UploadMediaResponse
from scrm.kernel.outbox import Outbox, PrepareError
from scrm.playbook import RenderedMaterial

log = logging.getLogger("handlers.sop.media")

ADD_MSG_TEMPLATE = "externalcontact/add_msg_template"
PLACEHOLDER = "_media"


def _source(where: str, media_type: MediaType) -> dict[str, str]:
    """A placeholder's file: a path under materials/ or an http(s) URL."""
    key = "url" if where.startswith(("http://", "https://")) else "path"
    return {key: where, "type": media_type}


def attachment_of(m: RenderedMaterial) -> dict[str, Any] | None:
    """WeCom's ``{"msgtype": kind, kind: {...}}`` for ``m``, media ids as placeholders (None: text)."""
    if m.link is not None:
        link: dict[str, Any] = {"title": m.link.title, "url": m.link.url, "desc": m.link.desc}
        if m.link.cover:
            link["picurl"] = m.link.cover
        return {"msgtype": "link", "link": link}
    if m.image is not None:
        if m.image.url:  # WeCom fetches a pic_url itself: no upload
            return {"msgtype": "image", "image": {"pic_url": m.image.url}}
        return {"msgtype": "image", "image": {}, PLACEHOLDER: {"media_id": _source(m.image.path or "", "image")}}
    if m.file is not None:
        return {"msgtype": "file", "file": {},
                PLACEHOLDER: {"media_id": _source(m.file.path or m.file.url or "", "file")}}
    if m.miniprogram is not None:
        mini = m.miniprogram
        return {"msgtype": "miniprogram", "miniprogram": {"title": mini.title, "appid": mini.appid, "page": mini.page},
                PLACEHOLDER: {"pic_media_id": _source(mini.cover, "image")}}
    return None


def moment_attachment_of(m: RenderedMaterial) -> dict[str, Any] | None:
    """add_moment_task's attachment for ``m`` (None: text only). Moments take media ids, never a
    picture URL: an image, or a link's cover, is a placeholder the outbox resolves when it sends.
    Mini programs and files are refused when the campaign is validated."""
    if m.link is not None:
        link: dict[str, Any] = {"title": m.link.title, "url": m.link.url}
        item: dict[str, Any] = {"msgtype": "link", "link": link}
        if m.link.cover:
            item[PLACEHOLDER] = {"media_id": _source(m.link.cover, "image")}
        return item
    if m.image is not None:
        return {"msgtype": "image", "image": {},
                PLACEHOLDER: {"media_id": _source(m.image.path or m.image.url or "", "image")}}
    return None


def has_placeholders(body: dict[str, Any]) -> bool:
    return any(isinstance(a, dict) and PLACEHOLDER in a for a in body.get("attachments") or [])


class MomentUploader:
    """Uploads as Moments attachments (media/upload_attachment, attachment_type 1): add_moment_task
    refuses ids from media/upload."""

    def __init__(self, wecom: Any) -> None:
        self.wecom = wecom

    async def upload_media(self, media_type: MediaType, filename: str, content: bytes, *,
                           content_type: str = "application/octet-stream") -> UploadMediaResponse:
        reply: UploadMediaResponse = await self.wecom.upload_attachment(media_type, filename, content,
                                                                        content_type=content_type)
        return reply


class MediaPreparer:
    """The outbox preparer for add_msg_template (and, ``moments``, add_moment_task): placeholders →
    media ids (cached 3 days)."""

    def __init__(self, materials_dir: Path, *, moments: bool = False) -> None:
        self.materials_dir = Path(materials_dir)
        self.moments = moments
        self._moment_uploaders: dict[int, MomentUploader] = {}  # one per client: shared in-flight uploads
        # One resolution at a time per process: two queued sends of the same new file would
        # otherwise both miss the cache and upload it twice. Uploads are rare (one per file
        # per 3 days), so this costs nothing on the common, cached path.
        self._lock = asyncio.Lock()

    async def __call__(self, outbox: Outbox, body: dict[str, Any]) -> dict[str, Any]:
        if not has_placeholders(body):
            return body
        self._check_files(body)
        upload = "upload_attachment" if self.moments else "upload_media"
        if getattr(outbox.wecom, upload, None) is None:
            raise PrepareError("attachments need media uploads but the WeCom client cannot upload", retry=False)
        uploader = cast(Uploader, outbox.wecom)
        if self.moments:
            uploader = self._moment_uploaders.setdefault(id(outbox.wecom), MomentUploader(outbox.wecom))
        async with self._lock, outbox.sessions() as session:
            resolver = MediaResolver(session, uploader, outbox.clock, self.materials_dir,
                                     namespace="moment:" if self.moments else "")
            try:
                items = [await self._resolve(item, resolver) for item in body["attachments"]]
            except MediaError as exc:
                raise PrepareError(f"attachment: {exc}", retry=True) from None
            # End the read before writing (SQLite cannot upgrade an old read to a write).
            await session.rollback()
            try:
                async with session.begin():
                    await resolver.flush()
            except Exception:  # the ids are good; only the cache missed them: send anyway
                log.exception("media cache write failed; the next send uploads again")
        return {**body, "attachments": items}

    def _check_files(self, body: dict[str, Any]) -> None:
        root = self.materials_dir.resolve()
        for item in body.get("attachments") or []:
            for source in (item.get(PLACEHOLDER) or {}).values() if isinstance(item, dict) else ():
                path = source.get("path")
                if path is None:
                    continue
                full = (self.materials_dir / path).resolve()
                if not full.is_relative_to(root):
                    raise PrepareError(f"attachment: {path!r} is outside materials/", retry=False)
                if not full.is_file():
                    raise PrepareError(f"attachment: no file materials/{path}", retry=False)

    @staticmethod
    async def _resolve(item: dict[str, Any], resolver: MediaResolver) -> dict[str, Any]:
        sources = item.get(PLACEHOLDER)
        if not isinstance(sources, dict):
            return item
        kind = str(item["msgtype"])
        inner = dict(item.get(kind) or {})
        for field, source in sources.items():
            media_type = cast(MediaType, source["type"])
            inner[field] = (await resolver.media_id_for_url(source["url"], media_type) if "url" in source
                            else await resolver.media_id(source["path"], media_type))
        return {"msgtype": kind, kind: inner}
