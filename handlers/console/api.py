"""What other features may use of the console: its database-backed sessions (under their own
cookie and path), the CSRF token kept in a session, and the audit log (the sidebar's sends and
task actions are audited beside the console's own actions), and who holds which role (the
message trail's export is for auditors)."""

from __future__ import annotations

from .access import Role
from .audit import record as record_audit
from .audit import remote_of
from .holder import AccessHolder
from .sessions import DatabaseStorage
from .settings import cookie_is_secure
from .web import CSRF_HEADER, csrf_token

__all__ = ["CSRF_HEADER", "AccessHolder", "DatabaseStorage", "Role", "cookie_is_secure", "csrf_token", "record_audit",
           "remote_of"]
