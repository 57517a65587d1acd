"""What other features may use of the staff directory: its departments table (read only), and
the address-book sync itself (read WeCom's directory, then apply it), as `scrm staff sync` runs it."""

from __future__ import annotations

from .directory import Report, Snapshot, apply_snapshot
from .models import StaffDepartment
from .sync import NOT_READABLE, read_directory

__all__ = ["NOT_READABLE", "Report", "Snapshot", "StaffDepartment", "apply_snapshot", "read_directory"]
