"""JSON Schema for the playbook files, for completion and red squiggles in editors.

One document holds a definition per file kind under ``$defs`` (``file.policy``,
``file.calendar`` ...) and ``x-scrm-files`` maps file globs to them, so ``scrm sop schema``
can write either the whole document or YAML-language-server associations. The schema checks
shape only; references between files are :func:`scrm.playbook.load_playbook`'s job.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from .claims import ClaimsFile
from .flows import GroupCalendar, PathSop, RemindersFile
from .holidays import HolidaysFile
from .models import ChannelsFile, GroupsFile, Material, Policy, TagsFile
from .surveys import FeedbackFile

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# kind → (type of the file's content, the files it applies to)
FILE_KINDS: dict[str, tuple[Any, str]] = {
    "policy": (Policy, "sop/policy.yaml"),
    "holidays": (HolidaysFile, "sop/holidays.yaml"),
    "tags": (TagsFile, "sop/tags.yaml"),
    "channels": (ChannelsFile, "sop/channels.yaml"),
    "groups": (GroupsFile, "sop/groups.yaml"),
    "reminders": (RemindersFile, "sop/reminders.yaml"),
    "calendar": (GroupCalendar, "sop/calendars/*.yaml"),
    "path": (PathSop, "sop/paths/*.yaml"),
    "materials": (list[Material], "materials/**/*.yaml"),
    "claims": (ClaimsFile, "sop/compliance/claims.yaml"),
    "feedback": (FeedbackFile, "sop/feedback.yaml"),
}


def file_json_schema(kind: str) -> dict[str, Any]:
    """A standalone schema for one file kind (a key of :data:`FILE_KINDS`)."""
    tp, glob = FILE_KINDS[kind]
    schema: dict[str, Any] = TypeAdapter(tp).json_schema(by_alias=True)
    schema["$schema"] = SCHEMA_DIALECT
    schema.setdefault("title", f"scrm {kind} ({glob})")
    return schema


def playbook_json_schema() -> dict[str, Any]:
    """One schema document covering every playbook file (plain JSON-serialisable data)."""
    defs: dict[str, Any] = {}
    files: dict[str, str] = {}
    for kind, (tp, glob) in FILE_KINDS.items():
        schema: dict[str, Any] = TypeAdapter(tp).json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        schema.setdefault("title", f"scrm {kind} file")
        defs[f"file.{kind}"] = schema
        files[glob] = f"#/$defs/file.{kind}"
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "https://scrm.invalid/schema/playbook.json",
        "title": "scrm playbook (sop/ and materials/)",
        "anyOf": [{"$ref": ref} for ref in files.values()],
        "$defs": defs,
        "x-scrm-files": files,
    }
