"""Media ids for the image and file materials a manager sends from the sidebar.

``sendChatMessage`` sends an image or a file only by a WeCom media id (``{"mediaid": …}``),
which lives three days. The ids come from the service's media cache
(:class:`scrm.adapters.wecom.media.MediaResolver`, the one the SOP engine's attachments and the
welcomes use, keyed by the file's content hash): a file is uploaded once per three days
whoever sends it, not once per tap. The page asks for the id on the tap, not with the panel,
so a panel load never waits on an upload.

A mini program's cover is not a media id in the JS-SDK but an ``imgUrl`` the WeCom client
fetches: :func:`cover_file` is the file the sidebar's public cover route serves for it.
"""

from __future__ import annotations

from pathlib import Path

from scrm.adapters.wecom.media import MediaResolver
from scrm.adapters.wecom.models_messages import MediaType
from scrm.playbook import Material

#: The JS-SDK's field for a media id (``image: {mediaid}``), lower case unlike the server API's.
MEDIA_FIELD = "mediaid"


async def media_id_of(resolver: MediaResolver, material: Material) -> str:
    """The media id of an image or file material (cached, else uploaded); raises
    :class:`scrm.adapters.wecom.media.MediaError` naming the file, ValueError for other types."""
    spec, media_type = ((material.image, "image") if material.type == "image"
                        else (material.file, "file") if material.type == "file" else (None, ""))
    if spec is None:
        raise ValueError(f"material {material.id!r} is a {material.type}, not an image or a file")
    kind: MediaType = "image" if media_type == "image" else "file"
    if spec.url is not None:
        return await resolver.media_id_for_url(spec.url, kind)
    return await resolver.media_id(spec.path or "", kind)


def cover_file(materials_dir: Path, material: Material) -> Path | None:
    """The local cover file of a mini program material (None: none, or an http(s) cover)."""
    mini = material.miniprogram
    if mini is None or mini.cover.startswith(("http://", "https://")):
        return None
    root = materials_dir.resolve()
    path = (materials_dir / mini.cover).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None
