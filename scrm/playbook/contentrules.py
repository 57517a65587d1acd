"""Content rules at load time: banned claims, and approvals that no longer match their content.

Two audiences, two outcomes for the same findings:

- ``scrm sop validate`` (CI, the playbook repository's reviewers): every finding is an error at
  the offending ``file:line: key`` (the text's own line for a banned claim, ``approved`` for an
  approval), so an edit cannot be merged without a new approval.
- The running service (``withhold=True``): a finding must not refuse the reload or the start,
  which would stop every send; it is a warning, and the material is withheld: the send gate
  (``Material.compliance_problem``) refuses it like an unapproved one, each skip recorded.

A hash-less approval (written before approvals were bound to content) counts only where
sop/compliance/claims.yaml says ``approval_needs_hash: false`` (a warning at each, while
migrating) or where there is no such file (playbooks older than the content rules: silently).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .claims import CLAIMS_FILE, ClaimsFile, claim_hits
from .issues import KeyPath, PlaybookIssue, format_key_path
from .models import Material
from .references import Located


@dataclass(frozen=True)
class Finding:
    material: str
    path: KeyPath  # inside the material's item
    message: str
    blocking: bool  # False: a hash-less approval while migrating (a warning everywhere)
    offset: int = 0
    text: str = ""


def findings_of(material: Material, rules: ClaimsFile | None) -> list[Finding]:
    """What the content rules say about one material, in key order (``rules``: None without
    sop/compliance/claims.yaml: no banned claims, and hash-less approvals pass silently)."""
    out = [Finding(material.id, hit.path, hit.message, True, hit.offset, hit.text)
           for hit in claim_hits(material, rules)] if rules is not None else []
    approved = material.approved
    if approved is None:
        return out
    again = f"run `scrm materials approve {material.id}`"
    if approved.hash is not None and approved.hash != material.content_hash:
        out.append(Finding(material.id, ("approved",),
                           f"the content changed since it was approved by {approved.by} on {approved.at}; {again}",
                           True))
    elif approved.hash is None and rules is not None:
        needed = rules.approval_needs_hash
        why = f"sop/{CLAIMS_FILE} requires one" if needed else "approval_needs_hash: false while migrating"
        out.append(Finding(material.id, ("approved",), f"approval has no content hash ({why}); {again}", needed))
    return out


def gate_reason(material: Material, findings: Sequence[Finding]) -> str | None:
    """What the send gate says about a withheld material (a stale hash it finds by itself)."""
    for f in (f for f in findings if f.blocking):
        if f.path != ("approved",):
            return f"material {material.id!r} has a {f.message}"
        if material.approved is not None and material.approved.hash is None:
            return f"material {material.id!r} is approved without a content hash; " \
                   f"run `scrm materials approve {material.id}`"
    return None


@dataclass
class ContentCheck:
    """The content rules over every loaded material."""

    materials: Mapping[str, Located[Material]]
    rules: ClaimsFile | None
    withhold: bool
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    def run(self) -> set[str]:
        """Check every material, withhold the failing ones; returns their ids (the compliance
        check then leaves them to :meth:`issues`, which says it once, at the right line)."""
        for mid, loc in self.materials.items():
            found = findings_of(loc.value, self.rules)
            if found:
                self.findings[mid] = found
            reason = gate_reason(loc.value, found)
            if reason is not None:
                loc.value._withheld = reason
        return {mid for mid, found in self.findings.items() if any(f.blocking for f in found)}

    def issues(self, uses: Mapping[str, Sequence[str]]) -> tuple[list[PlaybookIssue], list[PlaybookIssue]]:
        """(errors, warnings); ``uses`` are the active steps sending each material (skipped while
        the service withholds it)."""
        errors: list[PlaybookIssue] = []
        warnings: list[PlaybookIssue] = []
        for mid, found in self.findings.items():
            loc = self.materials[mid]
            src = loc.source
            for f in found:
                path = (*loc.path, *f.path)
                line = src.text_line(path, f.offset, f.text) if f.text else src.line_of(path)
                message = f.message
                if f.blocking and self.withhold:
                    skipped = "; ".join(uses.get(mid, ()))
                    message += f"; not sent until fixed{': skipped ' + skipped if skipped else ''}"
                issue = PlaybookIssue(src.display, line, format_key_path(path), message,
                                      "error" if f.blocking and not self.withhold else "warning")
                (errors if issue.severity == "error" else warnings).append(issue)
        return errors, warnings
