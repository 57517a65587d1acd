"""A path task's ``script:`` (the suggested message the sidebar offers beside the card): read from
the YAML, and every misuse one ``file:line: key.path: message`` naming the key."""

from __future__ import annotations

from pathlib import Path

from .factory import errors, load

MATERIALS = """\
    - id: call-card
      type: text
      channels: [manager]
      text: 请回访{customer.name}。
      approved: {by: 合规-王, at: 2026-01-05}
    """
PATH = """\
    path: payroll-wealth
    name: 代发+理财
    when: {{all: [产品持有/代发]}}
    steps:
      - on: "payday + 3 workdays"
        at: "10:00"
        {actions}
    """


def test_a_task_carries_its_script(tmp_path: Path) -> None:
    pb = load(tmp_path, materials__calls_yaml=MATERIALS,
              sop__paths__wealth_yaml=PATH.format(actions="task: call-card\n        script: hello"))
    step = pb.paths["payroll-wealth"].steps[0]
    assert (step.task, step.script) == ("call-card", "hello")


def test_a_script_needs_a_task(tmp_path: Path) -> None:
    assert errors(tmp_path, materials__calls_yaml=MATERIALS,
                  sop__paths__wealth_yaml=PATH.format(actions="send: hello\n        script: hello")) == [
        "sop/paths/wealth.yaml:8: steps[0].script: a script is the suggested message of a task card, "
        "so it needs task:"]


def test_a_script_must_be_a_material_for_the_customer(tmp_path: Path) -> None:
    bad = errors(tmp_path, materials__calls_yaml=MATERIALS,
                 sop__paths__wealth_yaml=PATH.format(actions="task: call-card\n        script: call-card"))
    assert len(bad) == 1 and bad[0].startswith("sop/paths/wealth.yaml:8: steps[0].script: ")
    assert "private" in bad[0]
    missing = errors(tmp_path, materials__calls_yaml=MATERIALS,
                     sop__paths__wealth_yaml=PATH.format(actions="task: call-card\n        script: nope"))
    assert len(missing) == 1 and missing[0].startswith("sop/paths/wealth.yaml:8: steps[0].script: ")
