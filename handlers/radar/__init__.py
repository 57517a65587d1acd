"""Customer radar: tracked links (``/r/{token}``), clicks, interest tags, manager alerts and
the daily digest (``scrm radar``)."""

from __future__ import annotations

from .feature import FEATURE
from .handlers import DIGEST, DIGEST_JOB, router

__all__ = ["DIGEST", "DIGEST_JOB", "FEATURE", "router"]
