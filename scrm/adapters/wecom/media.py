"""Media ids for material files (images, files, mini-program covers) used in welcomes and
group welcome templates.

WeCom keeps an uploaded temporary media for 3 days; ids are cached in ``media_cache`` by
content hash and re-uploaded shortly before they expire. Uploads are WeCom calls made before
any write (see :mod:`handlers.tags.catalog`), so the resolver collects the cache rows and the caller
writes them with :meth:`MediaResolver.flush` once its reads are done.

The cache can be wrong: a restored database, a WeCom tenant that forgot the upload (the sandbox
restarted). WeCom then refuses the id with ``40007``. A body whose ids may need that repair keeps,
next to each id, the file it was made from (``SOURCES``, the same shape as the SOP engine's
placeholders), so :class:`StaleMediaRefresher` can upload again and the outbox resend at once;
the hints are stripped before every call (:func:`without_sources`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.adapters.db.engine import dialect_of, table_of, upsert
from scrm.adapters.wecom.errors import WeComClientError, WeComError
from scrm.adapters.wecom.models_messages import MediaType, UploadMediaResponse
from scrm.adapters.wecom.tables import MediaCache
from scrm.kernel.clock import Clock

if TYPE_CHECKING:
    from scrm.kernel.outbox import Outbox

log = logging.getLogger("scrm.adapters.wecom.media")

# WeCom's "invalid media_id": unknown to this corp, or older than 3 days.
INVALID_MEDIA_ID = 40007
# An attachment's media sources: {field: {"path"|"url": where, "type": media type}}.
SOURCES = "_media"

MEDIA_TTL = timedelta(days=3)
# Re-upload when less than this is left: a welcome may be queued a little before it is sent.
MEDIA_MARGIN = timedelta(hours=1)
# Downloading a cover given as a URL happens on a welcome's 20-second path: keep it short, and
# after a failure do not try the same URL again for a while (every welcome would wait for it).
DOWNLOAD_TIMEOUT_S = 2.0
MAX_DOWNLOAD_BYTES = 10 * 2**20
RETRY_FAILED_URL_S = 300.0
_failed_urls: dict[str, tuple[float, str]] = {}  # url → (monotonic time, reason), per process


class _Upload(NamedTuple):
    media_id: str
    uploaded_at: datetime
    expires_at: datetime


# This process's uploads, per WeCom client, shared by every resolver: handlers run concurrently,
# and one handler's cache row commits only with its own transaction, so without this two
# welcomes with the same cover would each upload it. An upload in progress is awaited, not repeated.
_uploads: WeakKeyDictionary[Any, dict[str, asyncio.Future[_Upload]]] = WeakKeyDictionary()


class Uploader(Protocol):
    async def upload_media(self, media_type: MediaType, filename: str, content: bytes, *,
                           content_type: str = "application/octet-stream") -> UploadMediaResponse: ...


class MediaError(Exception):
    """A material file cannot be read or uploaded; the message names it."""


async def _download(url: str) -> bytes:
    try:
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
            if resp.status != 200:
                raise MediaError(f"cannot download {url}: HTTP {resp.status}")
            content = await resp.content.read(MAX_DOWNLOAD_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise MediaError(f"cannot download {url}: {type(exc).__name__}") from None
    if len(content) > MAX_DOWNLOAD_BYTES:
        raise MediaError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
    return content


class MediaResolver:
    """Turns ``materials/<path>`` into a WeCom media id, caching by content hash."""

    def __init__(self, session: AsyncSession, wecom: Uploader, clock: Clock, materials_dir: Path, *,
                 namespace: str = "") -> None:
        self.session = session
        self.wecom = wecom
        self.clock = clock
        self.materials_dir = materials_dir
        # Ids from another upload API live apart in the cache (Moments take only ids from
        # media/upload_attachment): e.g. "moment:" gives keys "image:moment:<hash>".
        self.namespace = namespace
        self._pending: list[dict[str, Any]] = []

    async def media_id(self, rel_path: str, media_type: MediaType, *, fresh: bool = False) -> str:
        """The media id of a file under materials/ (uploading it when not cached or expiring,
        or always with ``fresh``: WeCom refused the cached id)."""
        path = self.materials_dir / rel_path
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read materials/{rel_path}: {exc.strerror or exc}") from None
        key = f"{media_type}:{self.namespace}{hashlib.sha256(content).hexdigest()}"
        cached = None if fresh else await self._cached(key)
        return cached or await self._upload(key, media_type, path.name, content, fresh=fresh)

    async def media_id_for_url(self, url: str, media_type: MediaType, *, fresh: bool = False) -> str:
        """The media id of a file given as a URL (WeCom wants an upload, e.g. mini program covers).

        Cached by URL, so only the first use in three days downloads it (``fresh``: download again).
        """
        key = f"{media_type}:{self.namespace}url:{hashlib.sha256(url.encode()).hexdigest()}"
        cached = None if fresh else await self._cached(key)
        if cached:
            return cached
        failed = _failed_urls.get(url)
        if failed is not None and self.clock.monotonic() - failed[0] < RETRY_FAILED_URL_S:
            raise MediaError(f"{failed[1]} (not retried for {RETRY_FAILED_URL_S:.0f} s)")
        try:
            content = await _download(url)
        except MediaError as exc:
            _failed_urls[url] = (self.clock.monotonic(), str(exc))
            raise
        _failed_urls.pop(url, None)
        name = Path(urlsplit(url).path).name or "cover.jpg"
        return await self._upload(key, media_type, name, content, fresh=fresh)

    def _fresh_enough(self, expires_at: datetime) -> bool:
        return expires_at - MEDIA_MARGIN > self.clock.now()

    async def _from_flight(self, key: str) -> str | None:
        """The id this process uploaded (or is uploading) for ``key``, when still fresh."""
        flight = _uploads.get(self.wecom, {}).get(key)
        if flight is None:
            return None
        if not flight.done():
            return await self._await_upload(key, flight)
        if not flight.cancelled() and flight.exception() is None and self._fresh_enough(flight.result().expires_at):
            return flight.result().media_id
        return None

    async def _cached(self, key: str) -> str | None:
        from_flight = await self._from_flight(key)
        if from_flight is not None:
            return from_flight
        cached = await self.session.get(MediaCache, key)
        if cached is not None and self._fresh_enough(cached.expires_at):
            return cached.media_id
        return None

    async def _await_upload(self, key: str, flight: asyncio.Future[_Upload]) -> str | None:
        """Another resolver is uploading the same content: its id, or None if its upload failed."""
        await asyncio.wait([flight])  # never raises the other's error or cancellation here
        if flight.cancelled() or flight.exception() is not None:
            return None
        done = flight.result()
        self._remember(key, done)
        return done.media_id

    async def _upload(self, key: str, media_type: MediaType, filename: str, content: bytes, *,
                      fresh: bool = False) -> str:
        flights = _uploads.setdefault(self.wecom, {})
        if not fresh:  # another handler may have uploaded it while we read the cache table
            uploaded = await self._from_flight(key)
            if uploaded is not None:
                return uploaded
        flight: asyncio.Future[_Upload] = asyncio.get_running_loop().create_future()
        flights[key] = flight
        now = self.clock.now()
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        try:
            reply = await self.wecom.upload_media(media_type, filename, content, content_type=content_type)
        except WeComClientError as exc:
            error = MediaError(f"cannot upload {filename}: {exc}")
            flight.set_exception(error)
            flight.exception()  # retrieved: nobody else may be waiting
            if flights.get(key) is flight:
                del flights[key]
            raise error from None
        except BaseException:
            flight.cancel()
            if flights.get(key) is flight:
                del flights[key]
            raise
        done = _Upload(reply.media_id, now, now + MEDIA_TTL)
        flight.set_result(done)
        self._remember(key, done)
        return reply.media_id

    def _remember(self, key: str, done: _Upload) -> None:
        """Write this upload's cache row with the handler's transaction (``flush``); the key
        starts with the media type."""
        self._pending.append({"content_hash": key, "media_type": key.split(":", 1)[0], "media_id": done.media_id,
                              "uploaded_at": done.uploaded_at, "expires_at": done.expires_at})

    async def flush(self) -> None:
        """Write the cache rows of this resolver's uploads (call after every WeCom read)."""
        if self._pending:
            await self.session.execute(upsert(dialect_of(self.session), table_of(MediaCache),
                                              ["content_hash"], ["media_type", "media_id", "uploaded_at",
                                                                 "expires_at"]), self._pending)
            self._pending = []


def source(where: str, media_type: MediaType) -> dict[str, str]:
    """The ``SOURCES`` entry of one media id: a path under materials/ or an http(s) URL."""
    key = "url" if where.startswith(("http://", "https://")) else "path"
    return {key: where, "type": media_type}


def without_sources(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as WeCom gets it: the attachments' media sources are ours alone."""
    items = body.get("attachments")
    if not isinstance(items, list) or not any(isinstance(a, dict) and SOURCES in a for a in items):
        return body
    return {**body, "attachments": [{k: v for k, v in a.items() if k != SOURCES} if isinstance(a, dict) else a
                                    for a in items]}


async def reuploaded(body: dict[str, Any], resolver: MediaResolver) -> dict[str, Any] | None:
    """``body`` (sources stripped) with every media id uploaded again from its source; None
    when it names no source. Raises :class:`MediaError`."""
    items = body.get("attachments")
    if not isinstance(items, list) or not any(isinstance(a, dict) and SOURCES in a for a in items):
        return None
    fresh = [await _reupload_one(a, resolver) if isinstance(a, dict) else a for a in items]
    return {**body, "attachments": fresh}


async def _reupload_one(item: dict[str, Any], resolver: MediaResolver) -> dict[str, Any]:
    sources = item.get(SOURCES)
    if not isinstance(sources, dict):
        return item
    kind = str(item["msgtype"])
    inner = dict(item.get(kind) or {})
    for field, src in sources.items():
        media_type = cast(MediaType, src["type"])
        inner[field] = (await resolver.media_id_for_url(src["url"], media_type, fresh=True) if "url" in src
                        else await resolver.media_id(src["path"], media_type, fresh=True))
    return {"msgtype": kind, kind: inner}


class StaleMediaRefresher:
    """Outbox hooks for a WeCom call whose body carries media ids with their sources.

    ``prepare`` strips the sources before each call (nothing else: the ids were resolved when
    the body was built). ``refresh`` answers a ``40007`` by uploading the files again (the new ids
    replace the cached ones) and returns the body to send once more, or None.
    """

    def __init__(self, materials_dir: Path) -> None:
        self.materials_dir = Path(materials_dir)

    async def prepare(self, outbox: Outbox, body: dict[str, Any]) -> dict[str, Any]:
        return without_sources(body)

    async def refresh(self, outbox: Outbox, body: dict[str, Any], error: WeComError) -> dict[str, Any] | None:
        upload = getattr(outbox.wecom, "upload_media", None)
        if error.errcode != INVALID_MEDIA_ID or upload is None:
            return None
        async with outbox.sessions() as session:
            resolver = MediaResolver(session, cast(Uploader, outbox.wecom), outbox.clock, self.materials_dir)
            try:
                fresh = await reuploaded(body, resolver)
            except MediaError as exc:
                log.error("stale media id: uploading again failed", extra={"api": error.api, "error": str(exc)})
                return None
            await session.rollback()  # end the read before writing (SQLite)
            try:
                async with session.begin():
                    await resolver.flush()
            except Exception:  # the new ids are good; only the cache missed them: send anyway
                log.exception("media cache write failed; the next send uploads again")
        if fresh is not None:
            log.warning("WeCom forgot a cached media id; uploaded again", extra={"api": error.api})
        return fresh
