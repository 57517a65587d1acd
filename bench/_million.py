"""The 1,000,000-customer data set of the console and sidebar benches, generated on PostgreSQL.

    .venv/bin/python -m bench._million --customers 1000000 [--db URL]   # (re)generate, print the time
    .venv/bin/python -m bench._million --db URL --reuse                  # only say what the database holds

Every row is made by the database itself (``INSERT … SELECT … FROM generate_series``): nothing
crosses the wire, so 10,000,000 timeline rows take minutes, not an hour of ORM adds. The schema is
the project's own (``scrm.adapters.db.migrate.upgrade``); on a large run each big table's
secondary indexes are dropped before its load and rebuilt after it (the definitions read back
from ``pg_indexes``/``pg_constraint``, so they are the migrations' own), then everything is
``VACUUM ANALYZE``d, as autovacuum would leave a long-lived database.

The bank, for N customers (all figures scale with N; the default N is 1,000,000):

* 3 branches × 2 sub-branches × 3 teams (``杭州分行/城西支行/代发服务团队`` …), M = max(36, N/3333)
  client managers (``m00001`` …; 300 for 1,000,000) spread over the 18 teams, the first of each
  team its lead (``member.team_lead`` of the others), and a head per sub-branch (``bh01`` …);
* N customers (``wm00000001`` …), 80 % with a CRM record (tier, segment, products, AUM, risk,
  payday) reached through ``customer.crm_id`` or a binding; one follow relation each (a second
  for every tenth), added over the 120 days before :data:`ANCHOR` through the playbook's
  channels, 8 % lost and 2 % removed since; two corp tags per relation;
* 10 timeline rows per customer, spread over the 120 days in ten waves (rows of one customer lie
  far apart on disk, as rows written over months do);
* SOP: a push to every second customer (``sop_send`` + its ``occurrence``), a skipped step for
  every twentieth, a task card for every fifth (open, snoozed, done, not relevant, escalated);
* radar: a tracked link sent to every tenth customer, opened by a third of them;
* N/100 customer groups of 30 customers (a tenth of them left again) and their owner (the
  managers from the last one down, so that even a small data set's last managers own one).

Reuse: the database's comment (``COMMENT ON DATABASE``: no table added to the project's schema)
says what it holds (N, :data:`ANCHOR`, the generator's :data:`VERSION`); a bench run with
``--reuse`` skips generation when it matches.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/_million.py`
    sys.path.insert(0, str(ROOT))

from bench._pg import bench_postgres_url, database_comment, fresh_database, is_postgres

#: "Now" in the data set (10:00 in Asia/Shanghai): the service under test runs on a FakeClock
#: set to it, so a reused database always means the same days.
ANCHOR = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
ZONE = "Asia/Shanghai"
SPAN_S = 120 * 86400  # relations, timeline, sends … spread over the 120 days before ANCHOR
VERSION = 3
#: Below this many customers the indexes stay in place during the load (fast enough, and a
#: small run in a shared test database never leaves a table without its indexes).
DROP_INDEXES_FROM = 100_000

BRANCHES = {"杭州分行": ("城西支行", "城东支行"), "宁波分行": ("海曙支行", "江北支行"),
            "温州分行": ("鹿城支行", "瓯海支行")}
TEAM_NAMES = ("代发服务团队", "财富管理团队", "零售客户团队")
SUB_BRANCHES = [f"{b}/{s}" for b, subs in BRANCHES.items() for s in subs]
TEAMS = [f"{sb}/{t}" for sb in SUB_BRANCHES for t in TEAM_NAMES]
CHANNELS = ("payroll-onboarding", "lobby-chengxi", "wealth-salon", "cc-campaign-q4", "")  # sop/channels.yaml
GROUP_TYPES = ("payroll", "elderly", "event", "regional", "vip")  # sop/groups.yaml
MATERIAL = "elderly-fraud-awareness"  # a link material of the shipped playbook
#: The steps the SOP rows belong to, as the engine keys them (``sop:path:NAME:STEP`` job keys,
#: ``sop:path:NAME:STEP:TARGET:DAY`` send keys): the first step of two shipped paths, so the
#: effect page finds them in the playbook (a bench run fails loudly if a path loses its step).
PUSH_SOURCE, PUSH_STEP = "path:payroll-wealth", "payday+1workday-1000-wealth-plan-after-payday"
SKIP_SOURCE, SKIP_STEP = "path:new-contact", "added_at+1day-1000-new-contact-day1"
TAG_GROUPS = (  # (group id, name, owner, tags): the shipped tag map's groups
    ("etg01", "客户等级", "crm", ("V1", "V2", "V3", "V4", "V5", "私行")),
    ("etg02", "产品持有", "crm", ("代发", "按揭", "理财", "信用卡", "养老金")),
    ("etg03", "资产规模", "crm", ("5万以下", "5万-50万", "50万-600万", "600万以上")),
    ("etg04", "客群", "crm", ("银发", "代发员工", "新客")),
    ("etg05", "渠道", "manager", ("代发开卡", "网点大堂", "理财沙龙", "信用卡活动", "快闪活动")),
    ("etg06", "兴趣", "manager", ("基金", "保险", "贵金属")),
)
SKIP_REASONS = ("quiet hours 21:00-08:30", "cap per_week 2 reached", "opt-out tag 营销/退订",
                "material 'x' expired on 2026-10-01", "manager_daily_tasks 30 reached for m00001", "misfire: late")
BIG_TABLES = ("customer", "crm_customer", "binding", "follow", "follow_tag", "timeline", "sop_send", "occurrence",
              "sop_task", "radar_send", "radar_click", "group_member")


@dataclass(frozen=True)
class Shape:
    """How big each part of the bank is for ``customers`` customers."""

    customers: int

    @property
    def managers(self) -> int:
        return max(36, self.customers // 3333)

    @property
    def groups(self) -> int:
        return max(1, self.customers // 100)


def manager_id(i: int) -> str:
    return f"m{i:05d}"


def customer_id(i: int) -> str:
    return f"wm{i:08d}"


def team_of(manager: int) -> str:
    """Manager number (1-based) → their team's path (the generator's rule, for the benches)."""
    return TEAMS[(manager - 1) % len(TEAMS)]


def lead_of_team(team: str) -> str:
    return manager_id(TEAMS.index(team) + 1)


def head_of(sub_branch: str) -> str:
    return f"bh{SUB_BRANCHES.index(sub_branch) + 1:02d}"


def _h(expr: str, salt: int) -> str:
    """SQL: a stable pseudo-random non-negative int of ``expr`` (an int expression) and ``salt``.
    Hashed, not ``i % k``: a choice made by ``i % k`` would follow the manager (``(i - 1) % M``)
    and give some managers every lost relation and others no SOP send."""
    return f"(hashint4(({expr})::int + {salt * 1_000_003}) & 2147483647)"


def _arr(items: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def statements(shape: Shape) -> list[tuple[str, str, str]]:
    """(label, table, SQL) in load order. Integers and constants only are formatted in."""
    n, m, g = shape.customers, shape.managers, shape.groups
    a = f"timestamptz '{ANCHOR.isoformat()}'"
    ext = "'wm' || lpad(i::text, 8, '0')"
    mgr = f"'m' || lpad((((i - 1) % {m}) + 1)::text, 5, '0')"
    ago = f"make_interval(secs => {_h('i', 0)} % {SPAN_S})"  # a stable spread over 120 days
    local = f"AT TIME ZONE '{ZONE}'"
    teams = _arr(TEAMS)
    leads = f"'m' || lpad(((((k - 1) % {len(TEAMS)}) + 1))::text, 5, '0')"
    tag_rows = ", ".join(f"('et{gi + 1}{ti + 1:02d}', '{gid}', '{name}', {len(tags) - ti}, false)"
                         for gi, (gid, _g, _o, tags) in enumerate(TAG_GROUPS) for ti, name in enumerate(tags))
    n_tags = sum(len(t) for *_x, t in TAG_GROUPS)
    return [
        ("members", "member", f"""
            INSERT INTO member (userid, name, department, team_lead, status)
            SELECT 'm' || lpad(k::text, 5, '0'), '经理' || k, ({teams})[((k - 1) % {len(TEAMS)}) + 1],
                   CASE WHEN k > {len(TEAMS)} THEN {leads} END, 'active'
            FROM generate_series(1, {m}) k
            UNION ALL
            SELECT 'bh' || lpad(k::text, 2, '0'), '支行长' || k, ({_arr(SUB_BRANCHES)})[k], NULL, 'active'
            FROM generate_series(1, {len(SUB_BRANCHES)}) k"""),
        ("tag catalog", "tag_group", "INSERT INTO tag_group (group_id, name, \"order\", owner, deleted) VALUES "
         + ", ".join(f"('{gid}', '{name}', {100 - i}, '{owner}', false)"
                     for i, (gid, name, owner, _t) in enumerate(TAG_GROUPS))),
        ("tags", "tag", f"INSERT INTO tag (tag_id, group_id, name, \"order\", deleted) VALUES {tag_rows}"),
        ("customers", "customer", f"""
            INSERT INTO customer (external_userid, name, unionid, type, gender, corp_name, crm_id, updated_at)
            SELECT {ext}, '客户' || i, 'un' || i, 1, i % 3, NULL,
                   CASE WHEN {_h('i', 1)} % 5 IN (1, 2) THEN 'C' || lpad(i::text, 8, '0') END, {a} - {ago}
            FROM generate_series(1, {n}) i"""),
        ("CRM records", "crm_customer", f"""
            INSERT INTO crm_customer (crm_id, attributes, unionid, updated_at)
            SELECT 'C' || lpad(i::text, 8, '0'),
                   json_build_object('name', '客户' || i, 'tier', (ARRAY['V1','V2','V3','V4','V5','P'])[i % 6 + 1],
                                     'segment', (ARRAY['elderly','payroll','new'])[i % 3 + 1],
                                     'products', CASE i % 4 WHEN 0 THEN json_build_array('payroll', 'wealth')
                                                 WHEN 1 THEN json_build_array('mortgage')
                                                 WHEN 2 THEN json_build_array('credit_card', 'pension')
                                                 ELSE json_build_array() END,
                                     'aum', (i::bigint * 7919) % 8000000, 'risk_level', 'C' || (i % 5 + 1),
                                     'payday', i % 28 + 1),
                   'un' || i, {a} - {ago}
            FROM generate_series(1, {n}) i WHERE {_h('i', 1)} % 5 <> 0"""),
        ("bindings", "binding", f"""
            INSERT INTO binding (crm_id, external_userid, source, bound_at)
            SELECT 'C' || lpad(i::text, 8, '0'), {ext}, 'unionid', {a} - {ago}
            FROM generate_series(1, {n}) i WHERE {_h('i', 1)} % 5 <> 0"""),
        ("follow relations", "follow", f"""
            INSERT INTO follow (userid, external_userid, remark, description, state, add_way, created_at, status,
                                status_at, status_reason, last_contact_at)
            SELECT 'm' || lpad((((i - 1 + j * ({m} / 2)) % {m}) + 1)::text, 5, '0'), {ext}, '备注' || i, '',
                   ({_arr(CHANNELS)})[ch + 1], CASE WHEN ch = {len(CHANNELS) - 1} THEN 0 ELSE 1 END,
                   c, st, CASE WHEN st <> 'active' THEN c + ({a} - c) * ((i % 97) / 97.0) END,
                   CASE WHEN st = 'lost' THEN 'customer deleted' WHEN st = 'removed' THEN 'manager deleted' END,
                   c + ({a} - c) * ((i % 89) / 89.0)
            FROM (SELECT i, j, {a} - make_interval(secs => {_h('i * 2 + j', 3)} % {SPAN_S}) AS c,
                         CASE WHEN {_h('i * 2 + j', 4)} % 100 < 8 THEN 'lost'
                              WHEN {_h('i * 2 + j', 4)} % 100 < 10 THEN 'removed' ELSE 'active' END AS st,
                         {_h('i', 5)} % {len(CHANNELS)} AS ch
                  FROM generate_series(1, {n}) i, generate_series(0, 1) j WHERE j = 0 OR {_h('i', 2)} % 10 = 0) s"""),
        ("relation tags", "follow_tag", f"""
            INSERT INTO follow_tag (userid, external_userid, tag_id, added_at)
            SELECT f.userid, f.external_userid, t.tag_id, f.created_at
            FROM follow f CROSS JOIN generate_series(0, 1) j
            JOIN (SELECT tag_id, row_number() OVER (ORDER BY tag_id) - 1 AS k FROM tag) t
              ON t.k = ({_h('f.id', 6)} + j * 7) % {n_tags}"""),
        ("timeline", "timeline", f"""
            INSERT INTO timeline (subject_type, subject_id, at, kind, detail, inbox_event_id)
            SELECT 'customer', {ext},
                   {a} - make_interval(secs => {SPAN_S // 10} * (10 - k) - {_h('i * 10 + k', 7)} % {SPAN_S // 10}),
                   (ARRAY['external_contact.add', 'radar.click', 'sidebar.send', 'external_chat.update',
                          'crm.changed'])[k % 5 + 1],
                   CASE k % 5 WHEN 0 THEN json_build_object('user_id', {mgr})
                              WHEN 1 THEN json_build_object('material', '{MATERIAL}')
                              WHEN 2 THEN json_build_object('manager', {mgr}, 'title', '防诈骗提醒', 'material',
                                                            '{MATERIAL}')
                              WHEN 3 THEN json_build_object('chat_id', 'wr' || lpad((i % {g} + 1)::text, 7, '0'),
                                                            'update_detail', 'add_member')
                              ELSE json_build_object('changed', 'tier') END,
                   NULL
            FROM generate_series(0, 9) k, generate_series(1, {n}) i"""),
        ("SOP sends", "sop_send", f"""
            INSERT INTO sop_send (key, target, target_type, source, step, sender, material, day, created_at)
            SELECT 'sop:{PUSH_SOURCE}:{PUSH_STEP}:' || {ext} || ':' || ((at {local})::date)::text, {ext},
                   'customer', '{PUSH_SOURCE}', '{PUSH_STEP}', {mgr}, '{MATERIAL}', (at {local})::date, at
            FROM (SELECT i, {a} - make_interval(secs => {_h('i', 9)} % {SPAN_S}) AS at
                  FROM generate_series(1, {n}) i WHERE {_h('i', 8)} % 2 = 0) s"""),
        ("SOP occurrences", "occurrence", f"""
            INSERT INTO occurrence (job_key, occurrence_key, outcome, reason, at)
            SELECT 'sop:{PUSH_SOURCE}:{PUSH_STEP}', target || ':' || day, 'done', NULL, created_at FROM sop_send
            UNION ALL
            SELECT 'sop:{SKIP_SOURCE}:{SKIP_STEP}', {ext} || ':' || ((at {local})::date), 'skipped',
                   ({_arr(SKIP_REASONS)})[{_h('i', 11)} % {len(SKIP_REASONS)} + 1], at
            FROM (SELECT i, {a} - make_interval(secs => {_h('i', 12)} % {SPAN_S}) AS at
                  FROM generate_series(1, {n}) i WHERE {_h('i', 10)} % 20 = 0) s"""),
        ("SOP task cards", "sop_task", f"""
            INSERT INTO sop_task (task_id, key, userid, target, source, title, text, day, status, snoozes,
                                  escalated_to, created_at, handled_at, detail)
            SELECT 'task' || i, 'reminder:no-contact:' || {ext}, {mgr}, {ext}, 'reminder:no-contact', '联系客户',
                   '客户已30天未联系，请跟进', day, st, CASE WHEN st = 'snoozed' THEN 1 ELSE 0 END,
                   CASE WHEN st = 'escalated' THEN 'm' || lpad(((((i - 1) % {m}) % {len(TEAMS)}) + 1)::text, 5, '0')
                   END,
                   made, CASE WHEN st IN ('done', 'not_relevant')
                              THEN made + make_interval(secs => {_h('i', 16)} % 28800) END, '{{}}'::json
            FROM (SELECT i, day, (day + time '09:00') {local} AS made,
                         CASE WHEN day >= ({a} {local})::date - 2 THEN
                                   (ARRAY['open','open','open','open','open','snoozed','done','done','done',
                                          'not_relevant'])[{_h('i', 15)} % 10 + 1]
                              ELSE (ARRAY['done','done','done','done','done','done','not_relevant',
                                          'escalated','open','snoozed'])[{_h('i', 15)} % 10 + 1] END AS st
                  FROM (SELECT i, ({a} {local})::date - {_h('i', 14)} % 120 AS day
                        FROM generate_series(1, {n}) i WHERE {_h('i', 13)} % 5 = 0) d) s"""),
        ("radar sends", "radar_send", f"""
            INSERT INTO radar_send (token_id, material_id, sender, external_userid, occurrence, at)
            SELECT 'tk' || i, '{MATERIAL}', {mgr}, {ext}, NULL, {a} - make_interval(secs => {_h('i', 18)} % {SPAN_S})
            FROM generate_series(1, {n}) i WHERE {_h('i', 17)} % 10 = 0"""),
        ("radar clicks", "radar_click", f"""
            INSERT INTO radar_click (token_id, material_id, sender, external_userid, viewer_userid, occurrence, at)
            SELECT token_id, material_id, sender, external_userid, NULL, NULL,
                   LEAST(at + make_interval(secs => {_h('id::int', 20)} % 7200), {a})
            FROM radar_send WHERE {_h('id::int', 19)} % 3 = 0"""),
        ("groups", "group_chat", f"""
            INSERT INTO group_chat (chat_id, name, owner, group_type, created_at, member_version, member_count,
                                    status, updated_at)
            SELECT 'wr' || lpad(k::text, 7, '0'), '客户群' || k, 'm' || lpad(({m} - ((k - 1) % {m}))::text, 5, '0'),
                   ({_arr(GROUP_TYPES)})[k % {len(GROUP_TYPES)} + 1], {a} - interval '120 days', 'v1', 31,
                   'active', {a}
            FROM generate_series(1, {g}) k"""),
        ("group members", "group_member", f"""
            INSERT INTO group_member (chat_id, member_id, type, join_scene, joined_at, left_at, quit_scene)
            SELECT chat_id, owner, 1, 0, created_at, NULL, NULL FROM group_chat
            UNION ALL
            SELECT 'wr' || lpad(k::text, 7, '0'), 'wm' || lpad((((k - 1) * 30 + j) % {n} + 1)::text, 8, '0'), 2, 1,
                   joined, CASE WHEN j % 10 = 0 THEN joined + ({a} - joined) / 2 END,
                   CASE WHEN j % 10 = 0 THEN 0 END
            FROM (SELECT k, j, {a} - make_interval(secs => {_h('k * 30 + j', 21)} % {SPAN_S}) AS joined
                  FROM generate_series(1, {g}) k, generate_series(0, 29) j) s
            ON CONFLICT DO NOTHING"""),
    ]


async def _secondary_indexes(conn: AsyncConnection, table: str) -> list[tuple[str, str]]:
    """(drop, create) statements of ``table``'s unique constraints and plain indexes, but its
    primary key (ids are appended in order: cheap to keep) and its foreign keys."""
    out: list[tuple[str, str]] = []
    cons = (await conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'u'"), {"t": table})).all()
    for name, definition in cons:
        out.append((f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"',
                    f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
    owned = {name for name, _ in cons}
    idx = (await conn.execute(text(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_index x ON x.indexrelid = "
        "CAST(quote_ident(i.indexname) AS regclass) WHERE i.tablename = :t AND NOT x.indisprimary"),
        {"t": table})).all()
    for name, definition in idx:
        if name not in owned:
            out.append((f'DROP INDEX "{name}"', definition))
    return out


async def ensure_database(url: str) -> None:
    """Create the bench database when it does not exist yet (connecting to ``postgres``)."""
    from scrm.adapters.db.engine import make_engine

    u = make_url(url)
    admin = make_engine(u.set(database="postgres").render_as_string(hide_password=False))
    try:
        async with admin.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await auto.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": u.database}):
                await auto.execute(text(f'CREATE DATABASE "{u.database}"'))
    finally:
        await admin.dispose()


def _marker(customers: int) -> str:
    return f"bench._million v{VERSION} customers={customers} anchor={ANCHOR.isoformat()}"


async def held(url: str, customers: int) -> bool:
    """Does ``url`` hold this generator's data set of ``customers`` (the database's comment)?"""
    return await database_comment(url) == _marker(customers)


async def generate(url: str, customers: int, *, log: bool = True) -> dict[str, float]:
    """Empty ``url`` (migrated first) and fill it with the data set; seconds per step."""
    from scrm.adapters.db.engine import make_engine

    if not is_postgres(url):
        raise SystemExit("the data set is generated on PostgreSQL only (--db postgresql+asyncpg://...)")
    await ensure_database(url)
    await fresh_database(url, Path(tempfile.gettempdir()))
    shape = Shape(customers)
    drop = customers >= DROP_INDEXES_FROM
    took: dict[str, float] = {}
    engine = make_engine(url)
    t_all = time.perf_counter()
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            await conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            await conn.execute(text("SET LOCAL work_mem = '64MB'"))
            await conn.execute(text(f'COMMENT ON DATABASE "{make_url(url).database}" IS NULL'))
            rebuild: list[str] = []
            for label, table, sql in statements(shape):
                t0 = time.perf_counter()
                if drop and table in BIG_TABLES:
                    for drop_sql, create_sql in await _secondary_indexes(conn, table):
                        await conn.execute(text(drop_sql))
                        rebuild.append(create_sql)
                res = await conn.execute(text(sql))
                took[label] = time.perf_counter() - t0
                if log:
                    print(f"  {label}: {res.rowcount:,} rows in {took[label]:.1f} s", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            for create_sql in rebuild:
                await conn.execute(text(create_sql))
            took["indexes"] = time.perf_counter() - t0
            if log and rebuild:
                print(f"  {len(rebuild)} indexes rebuilt in {took['indexes']:.1f} s", file=sys.stderr, flush=True)
            await conn.execute(text(f'COMMENT ON DATABASE "{make_url(url).database}" IS '
                                    f"'{_marker(customers)}'"))
        t0 = time.perf_counter()
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE"))
        took["vacuum analyze"] = time.perf_counter() - t0
        if log:
            print(f"  VACUUM ANALYZE in {took['vacuum analyze']:.1f} s", file=sys.stderr, flush=True)
    finally:
        await engine.dispose()
    took["total"] = time.perf_counter() - t_all
    return took


async def ready(url: str, customers: int, *, reuse: bool) -> tuple[str, float | None]:
    """The data set of ``customers`` in ``url``: reused when asked and present, else generated;
    (what happened, the generation's seconds or None)."""
    if not is_postgres(url):
        raise SystemExit("the data set is generated on PostgreSQL only (--db postgresql+asyncpg://...)")
    await ensure_database(url)
    if reuse and await held(url, customers):
        from scrm.adapters.db import migrate

        await asyncio.to_thread(migrate.upgrade, url)  # a migration added since (an index) applies to it too
        return "reused", None
    print(f"generating {customers:,} customers in {make_url(url).database} ...", file=sys.stderr, flush=True)
    took = await generate(url, customers)
    return "generated", took["total"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", default=bench_postgres_url("scrm_million"),
                        help="a PostgreSQL bench database (created if missing, EMPTIED and refilled)")
    parser.add_argument("--reuse", action="store_true", help="keep the data set when it already has --customers")
    a = parser.parse_args()
    if a.customers < 100:
        raise SystemExit("--customers must be at least 100")
    how, seconds = asyncio.run(ready(a.db, a.customers, reuse=a.reuse))
    print(f"data set: {a.customers:,} customers, {how}" + (f" in {seconds:.1f} s" if seconds is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
