"""朋友圈 APIs: add_moment_task (async job), get_moment_task_result (95094) and get_moment_task
(93333: each sender's publish status of an enterprise moment).

An enterprise moment is a task: each sender of its ``visible_range`` must publish it from the
WeCom client (``SandboxState.publish_moment`` / ``CallbackDriver.publish_moment``); only then do
that sender's customers see it.

WeCom limits moment creation to 10 per minute per corp; the server applies that as a
per-API rate override (45009 beyond it).
"""

from __future__ import annotations

from scrm.sandbox.errors import invalid
from scrm.sandbox.params import Json, dict_items, get_int, get_list, get_obj, get_str, get_str_list, page
from scrm.sandbox.records import MomentTask
from scrm.sandbox.routing import Call, RouteTable

router = RouteTable()
PER_MINUTE = 10


def _check_attachments(call: Call) -> list[Json]:
    items = dict_items(get_list(call.body, "attachments"), "attachments")
    kinds = {get_str(a, "msgtype", required=True) for a in items}
    if len(kinds) > 1:
        raise invalid("attachments must all be of one type")
    kind = next(iter(kinds), "")
    if kind not in ("", "image", "video", "link"):
        raise invalid("attachments msgtype must be image, video or link")
    if (kind == "image" and len(items) > 9) or (kind in ("video", "link") and len(items) > 1):
        raise invalid("attachments: up to 9 images, or 1 video, or 1 link")
    for index, item in enumerate(items):
        payload = get_obj(item, kind, required=True)
        if kind == "link":
            get_str(payload, "url", required=True)
            if get_str(payload, "media_id"):
                call.state.require_media(get_str(payload, "media_id"), call.now, f"attachments[{index}].link.media_id")
        else:
            call.state.require_media(
                get_str(payload, "media_id", required=True), call.now, f"attachments[{index}].media_id"
            )
    return items


@router.post("externalcontact/add_moment_task")
def add_moment_task(call: Call) -> Json:
    """Create a moment job; invalid senders and tags are reported in the job result."""
    state, body = call.state, call.body
    text = get_obj(body, "text")
    content = get_str(text, "content", max_chars=2000)
    attachments = _check_attachments(call)
    if not content and not attachments:
        raise invalid("text.content or attachments is required")
    visible = get_obj(body, "visible_range")
    users = get_str_list(get_obj(visible, "sender_list"), "user_list", max_items=100000)
    tags = get_str_list(get_obj(visible, "external_contact_list"), "tag_list")
    jobid = state.new_id("sbmomentjob")
    state.moment_tasks[jobid] = MomentTask(
        jobid=jobid,
        created_at=call.now,
        body={"text": text, "attachments": attachments, "visible_range": visible},
        moment_id=state.new_id("sbmoment"),
        invalid_senders=[u for u in users if state.active_member(u) is None],
        senders=list(dict.fromkeys(u for u in users if state.active_member(u) is not None)),
        invalid_external_tags=[t for t in tags if state.live_tag(t) is None],
    )
    return {"jobid": jobid}


@router.get("externalcontact/get_moment_task_result")
def get_moment_task_result(call: Call) -> Json:
    """status 2 (running) during ``Limits.moment_job_delay_s``, then 3 with the result."""
    state = call.state
    jobid = call.arg("jobid")
    task = state.moment_tasks.get(jobid)
    if task is None or call.now >= task.created_at + state.limits.moment_job_ttl_s:
        raise invalid(f"jobid {jobid!r} unknown or expired (valid 24 h)")
    if call.now < task.created_at + state.limits.moment_job_delay_s:
        return {"status": 2, "type": "add_moment_task"}
    return {
        "status": 3,
        "type": "add_moment_task",
        "result": {
            "errcode": 0,
            "errmsg": "ok",
            "moment_id": task.moment_id,
            "invalid_sender_list": {"user_list": task.invalid_senders, "department_list": []},
            "invalid_external_contact_list": {"tag_list": task.invalid_external_tags},
        },
    }


@router.post("externalcontact/get_moment_task")
def get_moment_task(call: Call) -> Json:
    """Per-sender publish status of an enterprise moment: 0 未发表, 1 已发表."""
    state, body = call.state, call.body
    moment_id = get_str(body, "moment_id", required=True)
    task = next((t for t in state.moment_tasks.values() if t.moment_id == moment_id), None)
    if task is None or call.now < task.created_at + state.limits.moment_job_delay_s:
        raise invalid(f"moment_id {moment_id!r} unknown")
    limit = get_int(body, "limit", 500, lo=1, hi=1000)
    chunk, next_cursor = page(task.senders, get_str(body, "cursor"), limit)
    return {"task_list": [{"userid": u, "publish_status": int(u in task.published)} for u in chunk],
            "next_cursor": next_cursor}
