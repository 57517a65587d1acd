"""The HR file: the staff directory as a CSV, for banks whose WeCom app may not read the address
book (or to name team leads WeCom does not know).

Format (UTF-8, with or without the byte-order mark Excel writes), a header row, then one member
a row::

    userid,name,department,team_lead,status
    zhangwei,张伟,杭州分行/城西支行/代发服务团队,wangqiang,active

``department`` is the path from the top down, levels separated by ``/`` (may be empty);
``team_lead`` a userid (of this file or already known), empty for the department's leader;
``status`` ``active`` or ``resigned`` (also ``在职``/``离职``; empty = active). The column order is
free; ``department path`` and ``department_path`` name the department column too.

The whole file is checked before anything is stored: every problem is one ``file:line:
message``, and a file with any problem stores nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from handlers.staff.directory import ACTIVE, MAX_NAME, MAX_PATH, MAX_USERID, PATH_SEP, RESIGNED, HrRow

COLUMNS = ("userid", "name", "department", "team_lead", "status")
_ALIASES = {"department path": "department", "department_path": "department", "team lead": "team_lead"}
_STATUS = {"active": ACTIVE, "resigned": RESIGNED, "在职": ACTIVE, "离职": RESIGNED, "": ACTIVE}

_Err = Callable[[int, str], None]


@dataclass
class HrFile:
    """The file's members, or its problems (``file:line: message`` each)."""

    rows: list[HrRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_hr_file(data: bytes, name: str, known: Collection[str] = ()) -> HrFile:
    """Check and read an HR file's bytes; ``known``: userids already in the directory (a team lead
    may name them). A file with any problem gives its errors and no rows."""
    problems: list[tuple[int, str]] = []
    rows = _parse(data, known, lambda line, message: problems.append((line, message)))
    problems.sort(key=lambda p: p[0])  # stable: a line's problems keep their order
    if problems:
        return HrFile(errors=[f"{name}:{line}: {message}" for line, message in problems])
    return HrFile(rows=rows)


def _parse(data: bytes, known: Collection[str], err: _Err) -> list[HrRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        err(data[:exc.start].count(b"\n") + 1, "not UTF-8 text (save the file as CSV UTF-8)")
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    start = 1
    seen: dict[str, int] = {}
    rows: list[HrRow] = []
    try:
        for cells in reader:
            # A quoted cell may span lines: a row is named by the line it starts on.
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = _header(cells, line, err)
                if header is None:
                    return []
                continue
            row = _row(dict(zip(header, cells, strict=False)), len(cells), len(header), line, err)
            if row is None:
                continue
            if row.userid in seen:
                err(line, f"userid: {row.userid!r} is already on line {seen[row.userid]}")
                continue
            seen[row.userid] = line
            rows.append(row)
    except csv.Error as exc:
        err(reader.line_num, f"not a CSV file: {exc}")
        return []
    if header is None:
        err(1, f"empty file; the first row names the columns: {','.join(COLUMNS)}")
        return []
    check_team_leads(rows, seen, known, err)
    return rows


def check_team_leads(rows: list[HrRow], seen: Mapping[str, int], known: Collection[str], err: _Err) -> None:
    """A team lead must be a member of the same batch or of the directory, and not themselves;
    ``seen``: userid → where it was given (line or record number)."""
    for row in rows:
        if row.team_lead is None:
            continue
        if row.team_lead == row.userid:
            err(seen[row.userid], f"team_lead: {row.userid!r} cannot lead themselves")
        elif row.team_lead not in seen and row.team_lead not in known:
            err(seen[row.userid], f"team_lead: unknown member {row.team_lead!r} (neither in this file nor in the "
                                  "directory)")


def _header(cells: list[str], line: int, err: _Err) -> list[str] | None:
    names = [_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in cells]
    unknown = [c for c in names if c not in COLUMNS]
    missing = [c for c in COLUMNS if c not in names]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if unknown or missing or repeated:
        problems = [f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                    f"missing column(s) {', '.join(missing)}" if missing else "",
                    f"repeated column(s) {', '.join(repeated)}" if repeated else ""]
        err(line, f"header: {'; '.join(p for p in problems if p)} (expected {','.join(COLUMNS)})")
        return None
    return names


def _row(cells: dict[str, str], count: int, expected: int, line: int, err: _Err) -> HrRow | None:
    if count != expected:
        err(line, f"{count} cells, expected {expected} ({','.join(COLUMNS)})")
        return None
    return member_row(cells, line, err)


def member_row(cells: Mapping[str, str], line: int, err: _Err) -> HrRow | None:
    """One member from its five columns (the file's row, or a record of the CRM push), or None
    with every problem reported at ``line``."""
    userid, name = cells["userid"].strip(), cells["name"].strip()
    department, lead = cells["department"].strip(), cells["team_lead"].strip()
    status = _STATUS.get(cells["status"].strip().lower())
    problems = []
    if not userid:
        problems.append("userid: empty")
    elif len(userid) > MAX_USERID or any(ch.isspace() for ch in userid):
        problems.append(f"userid: {userid[:80]!r} is not a WeCom userid (1–{MAX_USERID} characters, no spaces)")
    if not name:
        problems.append("name: empty")
    elif len(name) > MAX_NAME:
        problems.append(f"name: longer than {MAX_NAME} characters")
    levels = [p.strip() for p in department.split(PATH_SEP)] if department else []
    if any(not p for p in levels):
        problems.append(f"department: empty level in {department[:80]!r} (levels are separated by '{PATH_SEP}')")
    path = PATH_SEP.join(levels)
    if len(path) > MAX_PATH:
        problems.append(f"department: longer than {MAX_PATH} characters")
    if lead and (len(lead) > MAX_USERID or any(ch.isspace() for ch in lead)):
        problems.append(f"team_lead: {lead[:80]!r} is not a WeCom userid")
    if status is None:
        problems.append(f"status: {cells['status'].strip()[:40]!r} is neither active nor resigned")
    for problem in problems:
        err(line, problem)
    if problems or status is None:
        return None
    return HrRow(userid=userid, name=name, department=path, team_lead=lead or None, status=status)
