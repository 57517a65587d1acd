"""WeCom's latency for the benches that talk to the sandbox over HTTP, and their side-by-side table.

A sandbox answering in a millisecond hides what a slow WeCom does to a burst, so each such bench
runs twice by default: once with no latency and once with a realistic one, ``--latency 150``
± ``--jitter 50`` ms (every sandbox answer waits that long, a real sleep: see
``scrm.sandbox.latency``), and prints the two runs side by side. ``--latency-only`` skips the
run without latency; ``--latency 0 --jitter 0`` runs only that one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REALISTIC_MS = 150.0
REALISTIC_JITTER_MS = 50.0


@dataclass(frozen=True)
class Latency:
    """One run's WeCom latency, in milliseconds."""

    ms: float = 0.0
    jitter_ms: float = 0.0

    @property
    def none(self) -> bool:
        return self.ms == 0 and self.jitter_ms == 0

    @property
    def label(self) -> str:
        if self.none:
            return "no latency"
        return f"{self.ms:g}±{self.jitter_ms:g} ms" if self.jitter_ms else f"{self.ms:g} ms"

    @property
    def slug(self) -> str:
        """For file names: ``none``, ``150ms``, ``150ms-j50``."""
        if self.none:
            return "none"
        return f"{self.ms:g}ms" + (f"-j{self.jitter_ms:g}" if self.jitter_ms else "")

    def sandbox_kwargs(self, seed: int = 0) -> dict[str, Any]:
        """The ``SandboxServer`` arguments for this latency."""
        return {"latency_s": self.ms / 1000, "jitter_s": self.jitter_ms / 1000, "latency_seed": seed}


def add_latency_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "WeCom latency", "every sandbox answer waits LATENCY ± JITTER ms (uniform, seeded); by default the bench "
                         "runs without latency and with it, and prints the runs side by side")
    group.add_argument("--latency", type=float, default=REALISTIC_MS, metavar="MS",
                       help=f"WeCom's answer delay for the run beside the one without (default {REALISTIC_MS:g})")
    group.add_argument("--jitter", type=float, default=REALISTIC_JITTER_MS, metavar="MS",
                       help=f"uniform jitter around --latency, never below 0 (default {REALISTIC_JITTER_MS:g})")
    group.add_argument("--latency-only", action="store_true", help="skip the run without latency")


def latency_runs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Latency]:
    """The runs to make, in order: no latency first (unless skipped), then ``--latency``."""
    if args.latency < 0 or args.jitter < 0:
        parser.error("--latency and --jitter must be >= 0")
    chosen = Latency(args.latency, args.jitter)
    if chosen.none or args.latency_only:
        return [chosen]
    return [Latency(), chosen]


def side_by_side(labels: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]], *, indent: str = "  ",
                 title: str = "WeCom latency") -> None:
    """Print ``rows`` (name, one value per run) as a table with a column per run."""
    name_w = max(len(title), *(len(name) for name, _ in rows))
    widths = [max(len(label), *(len(values[i]) for _, values in rows)) for i, label in enumerate(labels)]
    print(f"{indent}{title:<{name_w}}  " + "  ".join(f"{label:>{w}}" for label, w in zip(labels, widths, strict=True)))
    for name, values in rows:
        print(f"{indent}{name:<{name_w}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True)))


def yes_no(ok: bool) -> str:
    return "yes" if ok else "NO"
