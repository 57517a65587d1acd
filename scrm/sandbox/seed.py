"""Seed a sandbox corp with what a bank already has before it installs the service: members,
customers and their follow relations with corp tags, customer groups, 「联系我」 ways.

For the backfill's tests and benchmark (hundreds of thousands of relations in seconds) and for
``scrm serve --sandbox --existing N``. Deterministic for a given ``seed``; times lie before
``now`` (days to years ago), as existing data does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from scrm.sandbox.records import ContactWay
from scrm.sandbox.state import SandboxState

DAY = 86400.0
#: Relations per member when ``members`` is not given (a client manager's usual book).
DEFAULT_BOOK = 100


@dataclass
class Seeded:
    """What :func:`seed_existing` created."""

    members: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    relations: int = 0
    tags: list[str] = field(default_factory=list)  # tag ids, the library's order
    groups: list[str] = field(default_factory=list)
    ways: list[str] = field(default_factory=list)
    unionids: dict[str, str] = field(default_factory=dict)  # external_userid → unionid


def seed_existing(state: SandboxState, now: float, *, relations: int, members: int | None = None,
                  tags: int = 20, tags_per_relation: int = 2, shared_every: int = 10, groups: int = 0,
                  group_size: int = 20, ways: int = 0, prefix: str = "ex", seed: int = 1) -> Seeded:
    """Add ``relations`` existing follow relations to ``state``.

    ``members`` new members (default: one per :data:`DEFAULT_BOOK` relations) share them round
    robin; every ``shared_every``-th customer is followed by a second member too (0: never).
    ``tags`` corp tags in groups of five, created by the admin (not the app), and up to
    ``tags_per_relation`` of them on each relation. ``groups`` customer groups of about
    ``group_size`` customers, owned by the members in turn; ``ways`` 「联系我」 ways with a
    ``state`` each, made within the last 90 days.
    """
    rng = random.Random(seed)
    out = Seeded()
    count = members if members is not None else max(1, -(-relations // DEFAULT_BOOK))
    for i in range(count):
        userid = f"{prefix}m{i:05d}"
        state.add_member(userid, f"经理{prefix}{i}")
        out.members.append(userid)
    for g in range(-(-tags // 5) if tags else 0):
        group = state.new_tag_group(f"存量{prefix}{g}", now - 400 * DAY, created_by="admin")
        for t in range(min(5, tags - 5 * g)):
            out.tags.append(state.new_tag(group, f"标签{g}-{t}", now - 400 * DAY, created_by="admin").id)
    member_index = 0
    while out.relations < relations:
        n = len(out.customers)
        ext = f"wm{prefix}{n:07d}"
        unionid = f"u{prefix}{n:07d}"
        state.add_customer(f"客户{n}", external_userid=ext, unionid=unionid, gender=1 + n % 2)
        out.customers.append(ext)
        out.unionids[ext] = unionid
        followers = 2 if shared_every and n % shared_every == shared_every - 1 else 1
        for _ in range(min(followers, relations - out.relations, count)):
            userid = out.members[member_index % count]
            member_index += 1
            picked = rng.sample(out.tags, min(tags_per_relation, len(out.tags))) if out.tags else []
            state.add_follow(userid, ext, now - rng.randrange(1, 1000) * DAY, remark=f"客户{n}", add_way=1,
                             tag_ids=picked)
            out.relations += 1
    for g in range(groups):
        owner = out.members[g % count]
        start = (g * group_size) % max(1, len(out.customers))
        chat = state.create_group(owner, f"存量群{prefix}{g}", now - rng.randrange(1, 500) * DAY,
                                  members=out.customers[start:start + group_size])
        out.groups.append(chat.chat_id)
    for w in range(ways):
        config_id = state.new_id("sbcontactway")
        body = {"config_id": config_id, "type": 1, "scene": 2, "style": 1, "remark": f"存量活码{w}",
                "skip_verify": True, "state": f"{prefix}-way-{w}", "user": [out.members[w % count]], "party": [],
                "is_temp": False, "qr_code": f"https://sandbox.invalid/contactway/{config_id}.png"}
        state.contact_ways[config_id] = ContactWay(config_id=config_id, create_time=now - (w % 80 + 1) * DAY,
                                                   body=body)
        out.ways.append(config_id)
    return out
