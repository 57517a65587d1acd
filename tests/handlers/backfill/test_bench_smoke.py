"""The backfill bench end to end at a tiny size (the sandbox in its own process): it runs, and
the mirror it leaves is exact. Its figures are for the bench itself, not asserted here."""

from __future__ import annotations

from bench.backfill import limit_bound_s, one_run


def test_bench_smoke() -> None:
    out, sandbox, seeded = one_run(300, 60_000, 2, None)
    assert out["follows"] == seeded["relations"] == 300
    assert out["follow_tags"] == seeded["tags_on_relations"]
    assert sandbox["rejected_45009"] == 0 and sandbox["calls"]["externalcontact/batch/get_by_user"] >= 3
    assert limit_bound_s({"a": 1000 + 100}, 6000) == 1000 / ((6000 - 100) / 60)
