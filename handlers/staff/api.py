"""What other features may use of the staff directory: its departments table (read only)."""

from __future__ import annotations

from .models import StaffDepartment

__all__ = ["StaffDepartment"]
