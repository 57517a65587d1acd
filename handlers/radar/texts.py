"""What managers read about radar clicks (user-facing text in one place)."""

from __future__ import annotations

from collections.abc import Sequence


def alert(customer: str, title: str, times_today: int, *, seen_at: str | None = None) -> str:
    """客户 X opened 《…》, with how often today when it is not the first time.

    ``seen_at`` (local HH:MM) is for an alert held back by quiet hours: read the next morning,
    it says when the customer looked, and "today" would be the wrong day.
    """
    day = "今天" if seen_at is None else "当天"
    again = f"，{day}第 {times_today} 次" if times_today > 1 else ""
    when = f"于 {seen_at} " if seen_at is not None else ""
    return f"客户 {customer} {when}打开了《{title}》{again}。可趁热跟进。"


def digest(lines: Sequence[tuple[str, str, int]]) -> str:
    """Clicks that got no alert of their own (customer, title, count), one line each."""
    body = "\n".join(f"· {customer} 又打开《{title}》{count} 次" for customer, title, count in lines)
    return f"客户雷达今日汇总：\n{body}"
