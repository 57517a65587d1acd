"""A small bank tenant for demos and end-to-end tests: its staff directory (departments, members,
team leads), customers, tags, groups.

Times are fixed in the past (October 2026, China time) so the data looks the same on every
run whatever the clock says. Tags are created as the app's own, so the service may edit them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scrm.sandbox.masssend import CHINA
from scrm.sandbox.state import SandboxState

DEMO_EPOCH = datetime(2026, 10, 1, 9, 0, tzinfo=CHINA).timestamp()
DAY = 86400.0

#: The address book: (id, name, parent id). One branch (the corp's root department), two
#: sub-branches, a team or two in each (branch → sub-branch → team).
DEPARTMENTS = [
    (1, "杭州分行", 0),
    (10, "城西支行", 1),
    (2, "代发服务团队", 10),
    (3, "财富管理团队", 10),
    (20, "城东支行", 1),
    (21, "零售客户团队", 20),
]

#: (userid, name, department, position)
MEMBERS = [
    ("zhangwei", "张伟", 2, "客户经理"),
    ("lina", "李娜", 2, "客户经理"),
    ("chenjing", "陈静", 3, "理财经理"),
    ("wangqiang", "王强", 2, "团队长"),
    ("sunhui", "孙慧", 3, "团队长"),
    ("gaofei", "高飞", 21, "客户经理"),
    ("xuming", "徐明", 21, "团队长"),
    ("mali", "马丽", 10, "支行行长"),
    ("hemin", "何敏", 20, "支行行长"),
    ("zhouhai", "周海", 1, "分行零售部总经理"),
]

#: Who leads which department (部门负责人): the team leads, the sub-branch heads, the branch's.
LEADERS = {"wangqiang": 2, "sunhui": 3, "xuming": 21, "mali": 10, "hemin": 20, "zhouhai": 1}

TAG_GROUPS = {
    "客户等级": ["V0", "V1", "V2", "V3", "VIP", "VVIP"],
    "产品持有": ["代发", "按揭", "理财", "信用卡"],
    "兴趣": ["理财", "健康", "旅游"],
}

#: (name, gender, manager, remark, [group/tag ...])
CUSTOMERS = [
    ("王芳", 2, "zhangwei", "王芳-代发", ["客户等级/V1", "产品持有/代发"]),
    ("刘洋", 1, "zhangwei", "刘洋-按揭", ["客户等级/V2", "产品持有/按揭", "兴趣/旅游"]),
    ("赵敏", 2, "zhangwei", "赵敏", ["客户等级/VIP", "产品持有/理财", "兴趣/理财"]),
    ("孙丽", 2, "lina", "孙丽-退休", ["客户等级/V1", "兴趣/健康"]),
    ("周杰", 1, "lina", "周杰", ["客户等级/V0", "产品持有/信用卡"]),
    ("吴刚", 1, "chenjing", "吴刚-私行", ["客户等级/VVIP", "产品持有/理财"]),
    ("郑秀英", 2, "lina", "郑阿姨", ["客户等级/V1", "兴趣/健康", "兴趣/旅游"]),
    ("黄磊", 1, "zhangwei", "黄磊-代发", ["客户等级/V0", "产品持有/代发"]),
]

#: (group name, owner, [customer names])
GROUPS = [
    ("代发工资群", "zhangwei", ["王芳", "黄磊"]),
    ("银发兴趣群", "lina", ["孙丽", "郑秀英"]),
    ("养生快闪群", "zhangwei", ["刘洋", "赵敏"]),
]


@dataclass
class DemoIds:
    """Ids created by :func:`seed_demo`, by readable name."""

    customers: dict[str, str] = field(default_factory=dict)  # name → external_userid
    tags: dict[str, str] = field(default_factory=dict)  # "group/tag" → tag_id
    tag_groups: dict[str, str] = field(default_factory=dict)  # group name → group_id
    groups: dict[str, str] = field(default_factory=dict)  # group chat name → chat_id


def seed_demo(state: SandboxState) -> DemoIds:
    """Fill ``state`` with the demo bank; returns the generated ids."""
    ids = DemoIds()
    for dept_id, dept_name, parent in DEPARTMENTS:
        state.add_department(dept_id, dept_name, parent, order=100 - len(state.departments))
    for userid, name, department, position in MEMBERS:
        lead = LEADERS.get(userid)
        state.add_member(userid, name, department=[department], position=position,
                         leader_in=[lead] if lead is not None else [])
    for order, (group_name, tag_names) in enumerate(TAG_GROUPS.items()):
        group = state.new_tag_group(group_name, DEMO_EPOCH, order=len(TAG_GROUPS) - order)
        ids.tag_groups[group_name] = group.group_id
        for tag_order, tag_name in enumerate(tag_names):
            tag = state.new_tag(group, tag_name, DEMO_EPOCH, order=len(tag_names) - tag_order)
            ids.tags[f"{group_name}/{tag_name}"] = tag.id
    for index, (name, gender, manager, remark, tags) in enumerate(CUSTOMERS):
        customer = state.add_customer(name, gender=gender)
        ids.customers[name] = customer.external_userid
        state.add_follow(
            manager,
            customer.external_userid,
            DEMO_EPOCH + index * DAY,
            remark=remark,
            add_way=1,
            tag_ids=[ids.tags[t] for t in tags],
        )
    # The team lead follows the VIP customers too, so they have two follow users.
    for name in ("赵敏", "吴刚"):
        state.add_follow("wangqiang", ids.customers[name], DEMO_EPOCH + 10 * DAY, add_way=201)
    for index, (group_name, owner, names) in enumerate(GROUPS):
        chat = state.create_group(
            owner,
            group_name,
            DEMO_EPOCH + (12 + index) * DAY,
            members=[ids.customers[n] for n in names],
            notice=f"欢迎加入{group_name}",
        )
        ids.groups[group_name] = chat.chat_id
    return ids
