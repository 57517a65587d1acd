"""Judge a chaos run: the summary a CI log shows, and every broken promise with its evidence.

The promises (issue "Crash-proof and burst-proof", part 1):

1. no welcome lost whose window was still open when the event was acknowledged;
2. no duplicates: one welcome per customer, no tag added twice to one relation, no manager
   notice twice (delivered, or queued twice under two keys);
3. nothing stuck: every event acknowledged, inbox and outbox settled, nothing dead-lettered;
4. the outbox tells the truth: every welcome WeCom accepted is ``sent``, every one that missed
   its window is ``failed`` and its manager was asked to greet by hand (请手动问候).
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
from collections import Counter
from datetime import datetime
from typing import Any

from tests.chaos.playbook import CHANNELS, ELDERLY_CAP, FLASH_CAP
from tests.chaos.run import ChaosResult
from tests.chaos.workload import GROUPS, Add

GREET_BY_HAND = "请手动问候"
SHOW = 8  # examples per problem


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _rel(at: float | None, origin: float) -> str:
    return "-" if at is None else f"{at - origin:+.2f}s"


def _text(row: dict[str, Any]) -> str:
    body = row["payload"].get("body") or {}
    return str((body.get("text") or {}).get("content", ""))


_MERGED_HEADER = re.compile(r"【\d+条提醒】\n")
_MERGED_ITEM = re.compile(r"\n\n(?=\d+\. )")


def notices_in(text: str) -> list[str]:
    """The notices one app message carries: the outbox merges a burst of notices to one member
    into "【3条提醒】\n1. …\n\n2. …" (scrm.kernel.outbox.merge_notices)."""
    header = _MERGED_HEADER.match(text)
    if header is None:
        return [text]
    return [re.sub(r"^\d+\. ", "", item, count=1) for item in _MERGED_ITEM.split(text[header.end():])]


def own_notice(row: dict[str, Any]) -> str:
    """The notice an outbox row queued (a row that carried others has their texts appended)."""
    text = _text(row)
    return notices_in(text)[0] if (row["result"] or {}).get("merged") else text


class Verdict:
    def __init__(self, result: ChaosResult) -> None:
        self.r = result
        self.problems: list[str] = []
        snap = result.snapshot
        self.adds = result.workload.adds
        self.outbox_by_key = {row["idempotency_key"]: row for row in snap.outbox}
        self.welcomed = {code: min(times) for code, times in snap.welcome_calls.items()}
        self._judge()

    # ------------------------------------------------------------------ summary
    def summary(self) -> str:
        r, snap = self.r, self.r.snapshot
        adds = self.adds
        acked = [a for a in adds if a.ack_at is not None]
        in_window = [a for a in adds if a.acked_in_window]
        welcomed = [a for a in adds if a.code in self.welcomed]
        lost = [a for a in in_window if a.code not in self.welcomed]
        missed = [a for a in adds if a.code not in self.welcomed]
        lat = [self.welcomed[a.code] - a.issued_at for a in welcomed]
        ack_lat = [a.ack_at - a.issued_at for a in acked if a.ack_at is not None]
        from_ack = [self.welcomed[a.code] - a.ack_at for a in welcomed if a.ack_at is not None]
        incs = r.fleet.all_incarnations()
        startups = [i.startup_s for i in incs if i.startup_s is not None]
        startup_cpu = [i.startup_cpu_s for i in incs if i.startup_cpu_s is not None]
        kills = [k[0] for k in r.fleet.kills]
        gaps = [b - a for a, b in itertools.pairwise(kills)]
        deliveries = sum(r.poster.outcomes.values())
        refused = {k: n for k, n in r.poster.outcomes.items() if k != "200"}
        outbox = Counter(row["status"] for row in snap.outbox)
        apis = Counter(f"{row['payload'].get('api')}:{row['status']}" for row in snap.outbox)
        repeats = sum(n - 1 for n in snap.app_calls.values() if n > 1)
        lines = [
            f"chaos [{r.db}, {r.config.instances} instance(s), seed {r.config.seed}]: {len(adds)} adds at "
            f"{r.config.rate:g}/s + {sum(v for k, v in r.workload.events.items() if k != 'add_external_contact')} "
            f"group/tag events {dict(sorted(r.workload.events.items()))}",
            f"  wall {r.wall_s:.1f} s: chaos {r.chaos_s:.1f} s, then settled in {r.settle_s:.1f} s "
            f"({'yes' if r.settled else 'NO'})",
            f"  kills {len(kills)} (every {statistics.fmean(gaps) if gaps else 0:.1f} s on average, "
            f"{min(gaps) if gaps else 0:.1f}-{max(gaps) if gaps else 0:.1f} s); incarnations {len(incs)}; "
            f"start-up (spawn → listening) p50 {_pct(startups, 50):.1f} s max {max(startups, default=0):.1f} s "
            f"(CPU {statistics.fmean(startup_cpu) if startup_cpu else 0:.1f} s each); "
            f"unexpected exits {len(r.fleet.crashes)}",
            f"  CPU: service {r.service_cpu_s:.1f} s ({r.service_cpu_s / max(1, len(adds)) * 1000:.0f} ms per add, "
            f"restarts and group/tag events included), sandbox + driver {r.driver_cpu_s:.1f} s, on "
            f"{os.cpu_count()} cores; load average {r.load[0]:.1f} at the start, {r.load[1]:.1f} at the end",
            f"  callback deliveries {deliveries} for {sum(r.workload.events.values())} events acknowledged; "
            f"the others: {refused}",
            f"  adds acked {len(acked)}/{len(adds)}; acked in window {len(in_window)}; welcomed {len(welcomed)}; "
            f"LOST (acked in window, no welcome) {len(lost)}; missed windows {len(missed)} "
            f"(acked after the window {len([a for a in acked if not a.acked_in_window])})",
            f"  latency code issued → welcome accepted: p50 {_pct(lat, 50) * 1000:.0f} ms p99 "
            f"{_pct(lat, 99) * 1000:.0f} ms max {max(lat, default=0) * 1000:.0f} ms; issued → ack p50 "
            f"{_pct(ack_lat, 50) * 1000:.0f} ms p99 {_pct(ack_lat, 99) * 1000:.0f} ms max "
            f"{max(ack_lat, default=0) * 1000:.0f} ms; ack → welcome p99 {_pct(from_ack, 99) * 1000:.0f} ms",
            f"  outbox {dict(sorted(outbox.items()))}; inbox {dict(sorted(snap.inbox_status.items()))}",
            f"  outbox by api {dict(sorted(apis.items()))}",
            f"  message/send: {sum(snap.app_calls.values())} accepted calls ({repeats} repeats, WeCom-deduplicated), "
            f"{sum(snap.app_delivered.values())} delivered, dropped {dict(snap.app_dropped)}; "
            f"mark_tag tag adds {sum(snap.mark_tags.values())}",
        ]
        if r.log_lines:
            lines.append(f"  service log (WARNING+), {sum(r.log_lines.values())} lines, most frequent:")
            lines += [f"    {n:5d}  {line}" for line, n in r.log_lines.most_common(12)]
        lines.append(f"  logs: {r.logs}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ judging
    def _problem(self, title: str, examples: list[str], total: int | None = None) -> None:
        n = len(examples) if total is None else total
        self.problems.append(f"{title}: {n}\n" + "\n".join(f"    {e}" for e in examples[:SHOW]))

    def _judge(self) -> None:
        r, snap = self.r, self.r.snapshot
        # 1. lost welcomes
        lost = [a for a in self.adds if a.acked_in_window and a.code not in self.welcomed]
        if lost:
            self._problem("welcomes LOST (acknowledged while the code was valid, never welcomed)",
                          [self._story(a) for a in lost])
        # 2. duplicates
        twice = {c: t for c, t in snap.welcome_calls.items() if len(t) > 1}
        if twice:
            self._problem("welcome codes accepted twice", [f"{c}: {len(t)}" for c, t in twice.items()])
        customers = [f"{ext}: {n} welcomes" for ext, n in snap.welcomes_to.items() if n > 1]
        if customers:
            self._problem("customers welcomed twice", customers)
        tags = [f"{k}: added {n} times" for k, n in snap.mark_tags.items() if n > 1]
        if tags:
            self._problem("tags added twice to one relation (mark_tag)", tags)
        seen: Counter[tuple[str, str]] = Counter()  # each distinct accepted message, split into its notices
        for to, text in snap.app_calls:
            for notice in notices_in(text):
                seen[(to, notice)] += 1
        shown = [f"to {to}: {n}x {text[:70]}" for (to, text), n in seen.items() if n > 1]
        if shown:
            self._problem("manager notices sent twice (in two different messages)", shown)
        delivered = [f"to {to}: {n}x {text[:70]}" for (to, text), n in snap.app_delivered.items() if n > 1]
        if delivered:
            self._problem("manager messages delivered twice", delivered)
        queued: Counter[tuple[str, str]] = Counter(
            (str(row["payload"]["body"].get("touser")), own_notice(row)) for row in snap.outbox
            if row["payload"].get("api") == "message/send")
        twice_queued = [f"to {to}: {n} outbox rows {text[:70]}" for (to, text), n in queued.items() if n > 1]
        if twice_queued:
            self._problem("manager notices queued twice (two outbox rows, same text)", twice_queued)
        # 3. stuck
        unacked = [a for a in self.adds if a.ack_at is None]
        if unacked or r.workload.pending():
            self._problem("events never acknowledged", [self._story(a) for a in unacked],
                          total=len(unacked) + r.workload.pending())
        if not r.settled:
            unfinished = [self._row(row) for row in snap.outbox if row["status"] in ("pending", "sending", "unknown")]
            pending = [str(row) for row in snap.inbox_bad if row["status"] == "pending"]
            self._problem(f"not settled {r.config.settle_s:.0f} s after the last event (outbox unfinished "
                          f"{len(unfinished)}, inbox pending {snap.inbox_status['pending']})",
                          unfinished + pending, total=len(unfinished) + snap.inbox_status["pending"])
        dead = [str(row) for row in snap.inbox_bad if row["status"] == "dead"]
        if dead:
            self._problem("inbox events dead-lettered", dead, total=snap.inbox_status["dead"])
        if r.fleet.crashes:
            self._problem("service incarnations that exited on their own",
                          [f"{i.slot}#{i.number} exit {i.exitcode} ({i.log_path.with_suffix('.out')})"
                           for i in r.fleet.crashes])
        # 4. the outbox tells the truth
        wrong_sent, wrong_failed, untold = [], [], []
        for a in self.adds:
            row = self.outbox_by_key.get(f"welcome:{a.code}")
            status = row["status"] if row else "(no outbox row)"
            if a.code in self.welcomed:
                if status != "sent":
                    wrong_sent.append(f"{a.name} {a.code}: WeCom accepted it, outbox says {status} "
                                      f"({row and row['last_error']})")
            elif a.ack_at is not None:
                if status != "failed":
                    wrong_failed.append(f"{a.name} {a.code}: never welcomed, outbox says {status}")
                told = self.outbox_by_key.get(f"welcome_failed:{a.code}")
                notice = own_notice(told) if told is not None else ""
                said = GREET_BY_HAND in notice and a.name in notice and any(
                    to == a.userid and notice in notices_in(text) for to, text in snap.app_calls)
                if not said:
                    untold.append(f"{a.name} {a.code} ({a.userid}): notice row "
                                  f"{'missing' if told is None else self._row(told)}")
        if wrong_sent:
            self._problem("welcomes WeCom accepted that the outbox does not record as sent", wrong_sent)
        if wrong_failed:
            self._problem("missed welcomes the outbox does not record as failed", wrong_failed)
        if untold:
            self._problem(f"missed welcomes whose manager was not asked to greet by hand ({GREET_BY_HAND})", untold)
        failed = [self._row(row) for row in snap.outbox if row["status"] == "failed"
                  and not str(row["idempotency_key"]).startswith("welcome:")]
        if failed:
            self._problem("outbox actions failed (other than missed welcomes)", failed)
        self._judge_other_effects()

    def _judge_other_effects(self) -> None:
        """Nothing else lost either: channel tags, the group registry, the owners' notices."""
        snap, work = self.r.snapshot, self.r.workload
        untagged = []
        for a in self.adds:
            wanted = {snap.tag_ids.get(name, name) for name in CHANNELS[a.state].tags}
            missing = wanted - snap.relation_tags.get((a.userid, a.ext), set())
            if missing:
                untagged.append(f"{a.name} ({a.userid}, {a.state}): missing {sorted(missing)}")
        if untagged:
            self._problem("relations without their channel's tags in WeCom", untagged)
        registry = []
        for chat_id, (version, members) in snap.chats_wecom.items():
            mine = snap.chats_service.get(chat_id)
            if mine is None or mine[0] != version or mine[2] != members or mine[1] != len(members):
                got = "no row" if mine is None else f"version {mine[0]} count {mine[1]} members {len(mine[2])}"
                registry.append(f"{work.chat_names[chat_id]}: WeCom version {version} members {len(members)}; "
                                f"service {got}")
        if registry:
            self._problem("group registry differs from WeCom", registry)
        names = {a.ext: a.name for a in self.adds}
        notices = {(to, notice) for to, text in snap.app_calls for notice in notices_in(text)}
        owners = {name: owner for name, owner, _ in GROUPS}
        untold = []
        for chat_id, joined in work.joined.items():
            chat, owner = work.chat_names[chat_id], owners[work.chat_names[chat_id]]
            if chat.startswith("快闪"):
                for ext in joined:
                    told = [n for to, n in notices if to == owner and n.startswith(f"【快闪群任务】「{chat}」")
                            and names[ext] in n]
                    if len(told) != 1:
                        untold.append(f"{chat}: {names[ext]} joined, named in {len(told)} notices to {owner}")
            cap = FLASH_CAP if chat.startswith("快闪") else ELDERLY_CAP if chat.startswith("乐龄") else None
            if cap is not None and len(snap.chats_wecom[chat_id][1]) > cap:
                over = [n for to, n in notices if to == owner and n.startswith(f"【群人数超限】「{chat}」")]
                if len(over) != 1:
                    untold.append(f"{chat}: over its cap of {cap}, {len(over)} notices to {owner}")
        if untold:
            self._problem("group owners' notices missing or repeated", untold)

    # ------------------------------------------------------------------ evidence
    def _row(self, row: dict[str, Any]) -> str:
        return (f"#{row['id']} {row['idempotency_key']} {row['payload'].get('api')} {row['status']} "
                f"attempts {row['attempts']} error {row['last_error']!r}")

    def _story(self, a: Add) -> str:
        """Where the time went for one add: every moment relative to the code's issue."""
        t0 = a.issued_at
        snap = self.r.snapshot
        row = self.outbox_by_key.get(f"welcome:{a.code}")
        inbox = snap.add_rows.get(a.code, {})
        kills = [f"{slot}#{n}@{_rel(self._epoch(at), t0)}" for at, slot, n in self.r.fleet.kills
                 if -5 <= self._epoch(at) - t0 <= 30]
        out = (f"outbox {row['status']} attempts {row['attempts']} queued {_rel(_ts(row['created_at']), t0)} "
               f"sent {_rel(_ts(row['sent_at']), t0)} error {row['last_error']!r}" if row else "no outbox row")
        deliveries = a.delivery.attempts if a.delivery else "-"
        return (f"{a.name} {a.userid} {a.state} code {a.code[:10]}…: ack {_rel(a.ack_at, t0)} after {deliveries} "
                f"deliveries; inbox received {_rel(_ts(inbox.get('received_at')), t0)} done "
                f"{_rel(_ts(inbox.get('done_at')), t0)} attempts {inbox.get('attempts', '-')}; {out}; "
                f"kills nearby {kills}")

    def _epoch(self, loop_time: float) -> float:
        """A loop time of this run as seconds since the epoch."""
        return loop_time + self.r.epoch_offset
