"""What other features may use of the SOP engine: its task cards (the console counts them)."""

from __future__ import annotations

from .models import SopTask

__all__ = ["SopTask"]
