"""The HR file: parsing and checking (pure), one ``file:line: message`` per problem."""

from __future__ import annotations

from handlers.staff.directory import HrRow
from handlers.staff.hrfile import parse_hr_file

GOOD = ("userid,name,department,team_lead,status\n"
        "wangqiang,王强,杭州分行/城西支行/代发服务团队,,active\n"
        "zhangwei, 张伟 ,杭州分行 / 城西支行 / 代发服务团队,wangqiang,在职\n"
        "\n"
        "olduser,老员工,,,resigned\n")


def test_a_good_file() -> None:
    parsed = parse_hr_file(("\ufeff" + GOOD).encode("utf-8"), "hr.csv")  # Excel's byte-order mark
    assert parsed.errors == []
    assert parsed.rows == [
        HrRow("wangqiang", "王强", "杭州分行/城西支行/代发服务团队", None, "active"),
        HrRow("zhangwei", "张伟", "杭州分行/城西支行/代发服务团队", "wangqiang", "active"),
        HrRow("olduser", "老员工", "", None, "resigned"),
    ]


def test_columns_in_any_order_and_the_department_path_alias() -> None:
    text = "status,team_lead,department path,name,userid\nactive,lead1,A/B,甲,u1\n"
    parsed = parse_hr_file(text.encode(), "hr.csv", known={"lead1"})
    assert parsed.errors == [] and parsed.rows == [HrRow("u1", "甲", "A/B", "lead1", "active")]


def test_every_problem_is_one_line_and_nothing_is_kept() -> None:
    text = ("userid,name,department,team_lead,status\n"
            "u1,甲,A/B,,active\n"
            ",乙,A,,active\n"                    # 3: no userid
            "u2,,A//B,u2,gone\n"                 # 4: no name, empty level, leads themselves, bad status
            "u1,丙,A,,active\n"                  # 5: repeated userid
            "u3,丁,A,nobody,active\n"            # 6: unknown lead
            "u4,戊,A,,active,extra\n"            # 7: a cell too many
            '"u5","己\n'                         # 8-9: a quoted cell spanning lines, then fine
            '(续)",A,u1,resigned\n')
    parsed = parse_hr_file(text.encode(), "hr.csv")
    assert parsed.rows == []
    assert parsed.errors == [
        "hr.csv:3: userid: empty",
        "hr.csv:4: name: empty",
        "hr.csv:4: department: empty level in 'A//B' (levels are separated by '/')",
        "hr.csv:4: status: 'gone' is neither active nor resigned",
        "hr.csv:5: userid: 'u1' is already on line 2",
        "hr.csv:6: team_lead: unknown member 'nobody' (neither in this file nor in the directory)",
        "hr.csv:7: 6 cells, expected 5 (userid,name,department,team_lead,status)",
    ]


def test_a_bad_header_an_empty_file_and_a_file_that_is_not_utf8() -> None:
    assert parse_hr_file(b"userid,name,dept,status\n", "a.csv").errors == [
        "a.csv:1: header: unknown column(s) dept; missing column(s) department, team_lead "
        "(expected userid,name,department,team_lead,status)"]
    assert parse_hr_file(b"\n\n", "b.csv").errors == [
        "b.csv:1: empty file; the first row names the columns: userid,name,department,team_lead,status"]
    gbk = ("userid,name,department,team_lead,status\nu1," + "张伟" + ",A,,active\n").encode("gbk")
    assert parse_hr_file(gbk, "c.csv").errors == ["c.csv:2: not UTF-8 text (save the file as CSV UTF-8)"]
    assert parse_hr_file(b"userid,name,department,team_lead,status\nme,me,A,me,active\n", "d.csv").errors == [
        "d.csv:2: team_lead: 'me' cannot lead themselves"]
