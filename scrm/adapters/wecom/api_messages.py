"""Typed calls for 企业群发, app messages, moments and OAuth user lookup.

Media upload needs multipart transport and lives on the client itself (:mod:`scrm.adapters.wecom.api`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from scrm.adapters.wecom.api_base import ApiBase, without_none
from scrm.adapters.wecom.models import GetUserInfoResponse, Text, WeComResponse
from scrm.adapters.wecom.models_messages import (
    AddMomentTaskResponse,
    AddMsgTemplateResponse,
    AppMessage,
    GetGroupMsgListResponse,
    GetGroupMsgSendResultResponse,
    GetGroupMsgTaskResponse,
    GetMomentTaskResultResponse,
    GroupMsg,
    GroupMsgSendResult,
    GroupMsgTask,
    MomentTask,
    MsgTemplate,
    SendMessageResponse,
    TextCard,
    UpdateTemplateCard,
    UpdateTemplateCardResponse,
)

ChatType = Literal["single", "group"]


class MessagesApi(ApiBase):
    """add_msg_template and its reports, message/send, moments, auth/getuserinfo."""

    # -- 企业群发 ----------------------------------------------------------------------------

    async def add_msg_template(self, template: MsgTemplate) -> AddMsgTemplateResponse:
        """Create a 群发 task (each sender confirms it in the client); returns ``msgid``."""
        return AddMsgTemplateResponse.model_validate(await self.call("externalcontact/add_msg_template",
                                                                     template.to_body()))

    def _groupmsg_list_body(self, chat_type: ChatType, start_time: int, end_time: int, creator: str | None,
                            filter_type: int, limit: int) -> dict[str, Any]:
        return without_none(chat_type=chat_type, start_time=start_time, end_time=end_time, creator=creator,
                            filter_type=filter_type, limit=limit)

    async def get_groupmsg_list_v2(self, chat_type: ChatType, start_time: int, end_time: int, *,
                                   creator: str | None = None, filter_type: int = 2, limit: int = 100,
                                   cursor: str = "") -> GetGroupMsgListResponse:
        """One page of 群发 records in [start_time, end_time] (span ≤ 1 month)."""
        body = {**self._groupmsg_list_body(chat_type, start_time, end_time, creator, filter_type, limit),
                "cursor": cursor}
        return GetGroupMsgListResponse.model_validate(await self.call("externalcontact/get_groupmsg_list_v2", body))

    async def iter_groupmsg_list(self, chat_type: ChatType, start_time: int, end_time: int, *,
                                 creator: str | None = None, filter_type: int = 2,
                                 limit: int = 100) -> AsyncIterator[GroupMsg]:
        body = self._groupmsg_list_body(chat_type, start_time, end_time, creator, filter_type, limit)
        async for page in self._pages("externalcontact/get_groupmsg_list_v2", body, GetGroupMsgListResponse):
            for msg in page.group_msg_list:
                yield msg

    async def get_groupmsg_task(self, msgid: str, *, limit: int = 1000, cursor: str = "") -> GetGroupMsgTaskResponse:
        """One page of per-sender status of a 群发 (0 not sent, 2 sent)."""
        body = {"msgid": msgid, "limit": limit, "cursor": cursor}
        return GetGroupMsgTaskResponse.model_validate(await self.call("externalcontact/get_groupmsg_task", body))

    async def iter_groupmsg_task(self, msgid: str, *, limit: int = 1000) -> AsyncIterator[GroupMsgTask]:
        async for page in self._pages("externalcontact/get_groupmsg_task", {"msgid": msgid, "limit": limit},
                                      GetGroupMsgTaskResponse):
            for task in page.task_list:
                yield task

    async def get_groupmsg_send_result(self, msgid: str, userid: str, *, limit: int = 1000,
                                       cursor: str = "") -> GetGroupMsgSendResultResponse:
        """One page of per-recipient results of one sender (what an ``unknown`` action reconciles)."""
        body = {"msgid": msgid, "userid": userid, "limit": limit, "cursor": cursor}
        return GetGroupMsgSendResultResponse.model_validate(
            await self.call("externalcontact/get_groupmsg_send_result", body))

    async def iter_groupmsg_send_result(self, msgid: str, userid: str, *,
                                        limit: int = 1000) -> AsyncIterator[GroupMsgSendResult]:
        body = {"msgid": msgid, "userid": userid, "limit": limit}
        async for page in self._pages("externalcontact/get_groupmsg_send_result", body,
                                      GetGroupMsgSendResultResponse):
            for result in page.send_list:
                yield result

    async def remind_groupmsg_send(self, msgid: str) -> WeComResponse:
        """Remind senders to confirm (at most 3 times per 群发 within 24 h)."""
        return WeComResponse.model_validate(
            await self.call("externalcontact/remind_groupmsg_send", {"msgid": msgid}))

    async def cancel_groupmsg_send(self, msgid: str) -> WeComResponse:
        """Stop the unsent remainder; what was delivered stays delivered."""
        return WeComResponse.model_validate(
            await self.call("externalcontact/cancel_groupmsg_send", {"msgid": msgid}))

    # -- app messages ------------------------------------------------------------------------

    async def send_message(self, msg: AppMessage) -> SendMessageResponse:
        """message/send; paced per member (30/min, 1,000/h) by the client's limiter."""
        body = msg.to_body()
        body.setdefault("agentid", self.agent_id)
        return SendMessageResponse.model_validate(await self.call("message/send", body))

    async def send_text(self, touser: Sequence[str], content: str, *,
                        duplicate_check: bool = True) -> SendMessageResponse:
        """A text app message to members (``content`` ≤2,048 bytes)."""
        return await self.send_message(AppMessage(touser=list(touser), msgtype="text", text=Text(content=content),
                                                  enable_duplicate_check=1 if duplicate_check else 0))

    async def send_textcard(self, touser: Sequence[str], title: str, description: str, url: str, *,
                            btntxt: str | None = None, duplicate_check: bool = True) -> SendMessageResponse:
        card = TextCard(title=title, description=description, url=url, btntxt=btntxt)
        return await self.send_message(AppMessage(touser=list(touser), msgtype="textcard", textcard=card,
                                                  enable_duplicate_check=1 if duplicate_check else 0))

    async def send_markdown(self, touser: Sequence[str], content: str, *,
                            duplicate_check: bool = True) -> SendMessageResponse:
        return await self.send_message(AppMessage(touser=list(touser), msgtype="markdown",
                                                  markdown=Text(content=content),
                                                  enable_duplicate_check=1 if duplicate_check else 0))

    async def send_template_card(self, touser: Sequence[str], card: dict[str, Any], *,
                                 duplicate_check: bool = True) -> SendMessageResponse:
        """A template card (text_notice, button_interaction, ...); ``card`` is WeCom's JSON."""
        return await self.send_message(AppMessage(touser=list(touser), msgtype="template_card", template_card=card,
                                                  enable_duplicate_check=1 if duplicate_check else 0))

    async def update_template_card(self, req: UpdateTemplateCard) -> UpdateTemplateCardResponse:
        """Replace a card's button text or the whole card (``response_code`` is single use, 72 h)."""
        body = req.to_body()
        body.setdefault("agentid", self.agent_id)
        return UpdateTemplateCardResponse.model_validate(await self.call("message/update_template_card", body))

    # -- moments, OAuth ----------------------------------------------------------------------

    async def add_moment_task(self, task: MomentTask) -> AddMomentTaskResponse:
        """Start an async moment post (10/min per corp); poll :meth:`get_moment_task_result`."""
        return AddMomentTaskResponse.model_validate(await self.call("externalcontact/add_moment_task",
                                                                    task.to_body()))

    async def get_moment_task_result(self, jobid: str) -> GetMomentTaskResultResponse:
        data = await self.call("externalcontact/get_moment_task_result", method="GET", params={"jobid": jobid})
        return GetMomentTaskResultResponse.model_validate(data)

    async def get_user_info(self, code: str) -> GetUserInfoResponse:
        """auth/getuserinfo: who opened an OAuth link (member ``userid`` or customer ``openid``)."""
        data = await self.call("auth/getuserinfo", method="GET", params={"code": code})
        return GetUserInfoResponse.model_validate(data)
