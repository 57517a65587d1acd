"""The playbook: what ops admins write in sop/ and materials/, loaded, checked and rendered.

Public API::

    load_playbook(sop_dir, materials_dir, *, today) -> Playbook         # raises PlaybookError
    material_findings(playbook, today) -> list[MaterialFinding]         # expired/expiring in use
    render_material(material, context, policy) -> RenderedMaterial     # raises TemplateError
    playbook_json_schema() -> dict                                      # for editors
    plan_playbook(playbook, start, days) -> list[Occurrence]            # `scrm sop plan`
    WorkCalendar.is_workday(day) / add_workdays(day, n)                 # 调休-aware

This package does no I/O beyond reading the playbook files, and nothing here sends anything.
"""

from __future__ import annotations

from .compliance import MaterialFinding, material_findings
from .expr import (
    Condition,
    DateExpr,
    EvaluationError,
    ExprError,
    MissingValue,
    parse_condition,
    parse_date_expr,
)
from .flows import (
    Branch,
    CalendarStep,
    Goal,
    GroupCalendar,
    PathSop,
    PathStep,
    RecurringRule,
    Reminder,
    TagFilter,
)
from .holidays import WorkCalendar
from .issues import PlaybookError, PlaybookIssue
from .loader import load_playbook
from .models import Channel, GroupType, Material, Policy, TagGroup
from .plan import Occurrence, calendar_occurrences, format_plan, path_occurrences, plan_playbook
from .playbook import Playbook
from .schema import file_json_schema, playbook_json_schema
from .templates import (
    VARIABLES,
    RenderedMaterial,
    TemplateError,
    date_variables,
    render_material,
    render_template,
)

__all__ = [
    "VARIABLES",
    "Branch",
    "CalendarStep",
    "Channel",
    "Condition",
    "DateExpr",
    "EvaluationError",
    "ExprError",
    "Goal",
    "GroupCalendar",
    "GroupType",
    "Material",
    "MaterialFinding",
    "MissingValue",
    "Occurrence",
    "PathSop",
    "PathStep",
    "Playbook",
    "PlaybookError",
    "PlaybookIssue",
    "Policy",
    "RecurringRule",
    "Reminder",
    "RenderedMaterial",
    "TagFilter",
    "TagGroup",
    "TemplateError",
    "WorkCalendar",
    "calendar_occurrences",
    "date_variables",
    "file_json_schema",
    "format_plan",
    "load_playbook",
    "material_findings",
    "parse_condition",
    "parse_date_expr",
    "path_occurrences",
    "plan_playbook",
    "playbook_json_schema",
    "render_material",
    "render_template",
]
