"""Typed calls for customers, corp tags, welcome messages, 「联系我」 and succession."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from scrm.adapters.wecom.api_base import ApiBase, without_none
from scrm.adapters.wecom.models import (
    AddContactWayResponse,
    AddCorpTagRequest,
    AddCorpTagResponse,
    Attachment,
    BatchGetByUserResponse,
    ContactWay,
    ExternalContactFollow,
    GetContactWayResponse,
    GetCorpTagListResponse,
    GetExternalContactResponse,
    GetUnassignedListResponse,
    ListContactWayResponse,
    ListExternalContactResponse,
    RemarkRequest,
    TransferCustomerResponse,
    TransferResultItem,
    TransferResultResponse,
    UnassignedItem,
    WeComResponse,
)


class ContactsApi(ApiBase):
    """externalcontact: customers, tags, welcome, contact ways, transfers."""

    # -- customers ---------------------------------------------------------------------------

    async def get_external_contact(self, external_userid: str) -> GetExternalContactResponse:
        """externalcontact/get with every ``follow_user`` page merged into one reply.

        WeCom pages followers (500 per page) through ``cursor``; callers want the whole list.
        """
        merged: GetExternalContactResponse | None = None
        async for page in self._pages("externalcontact/get", {"external_userid": external_userid},
                                      GetExternalContactResponse, method="GET"):
            if merged is None:
                merged = page
            else:
                merged.follow_user.extend(page.follow_user)
        assert merged is not None  # _pages yields at least one page or raises
        merged.next_cursor = ""
        return merged

    async def batch_get_by_user(self, userids: Sequence[str], *, cursor: str = "",
                                limit: int = 100) -> BatchGetByUserResponse:
        """One page of externalcontact/batch/get_by_user (≤100 members, ≤100 per page)."""
        body = {"userid_list": list(userids), "cursor": cursor, "limit": limit}
        return BatchGetByUserResponse.model_validate(await self.call("externalcontact/batch/get_by_user", body))

    async def iter_external_contacts_by_user(self, userids: Sequence[str], *,
                                             limit: int = 100) -> AsyncIterator[ExternalContactFollow]:
        """Every (customer, follow info) pair of the given members, across all pages."""
        async for page in self._pages("externalcontact/batch/get_by_user",
                                      {"userid_list": list(userids), "limit": limit}, BatchGetByUserResponse):
            for item in page.external_contact_list:
                yield item

    async def list_external_contacts(self, userid: str) -> list[str]:
        """externalcontact/list: external_userids of one member's customers."""
        data = await self.call("externalcontact/list", method="GET", params={"userid": userid})
        return ListExternalContactResponse.model_validate(data).external_userid

    async def remark(self, userid: str, external_userid: str, *, remark: str | None = None,
                     description: str | None = None, remark_company: str | None = None,
                     remark_mobiles: Sequence[str] | None = None,
                     remark_pic_mediaid: str | None = None) -> WeComResponse:
        """externalcontact/remark: the member's remark fields for a customer (``[""]`` clears mobiles)."""
        req = RemarkRequest(userid=userid, external_userid=external_userid, remark=remark,
                            description=description, remark_company=remark_company,
                            remark_mobiles=list(remark_mobiles) if remark_mobiles is not None else None,
                            remark_pic_mediaid=remark_pic_mediaid)
        return WeComResponse.model_validate(await self.call("externalcontact/remark", req.to_body()))

    # -- corp tags ---------------------------------------------------------------------------

    async def get_corp_tag_list(self, *, tag_ids: Sequence[str] = (),
                                group_ids: Sequence[str] = ()) -> GetCorpTagListResponse:
        """Corp tag groups; both filters empty = all (``group_ids`` wins over ``tag_ids``)."""
        body = without_none(tag_id=list(tag_ids) or None, group_id=list(group_ids) or None)
        return GetCorpTagListResponse.model_validate(await self.call("externalcontact/get_corp_tag_list", body))

    async def add_corp_tag(self, req: AddCorpTagRequest) -> AddCorpTagResponse:
        """Create tags (and their group when ``group_name`` is new)."""
        return AddCorpTagResponse.model_validate(await self.call("externalcontact/add_corp_tag", req.to_body()))

    async def edit_corp_tag(self, id: str, *, name: str | None = None, order: int | None = None) -> WeComResponse:
        """Rename or reorder a tag or tag group (``id`` is either)."""
        body = without_none(id=id, name=name, order=order)
        return WeComResponse.model_validate(await self.call("externalcontact/edit_corp_tag", body))

    async def del_corp_tag(self, *, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> WeComResponse:
        """Delete tags and/or whole groups; an emptied group disappears too."""
        if not tag_ids and not group_ids:
            raise ValueError("del_corp_tag needs tag_ids or group_ids")
        body = without_none(tag_id=list(tag_ids) or None, group_id=list(group_ids) or None)
        return WeComResponse.model_validate(await self.call("externalcontact/del_corp_tag", body))

    async def mark_tag(self, userid: str, external_userid: str, *, add: Sequence[str] = (),
                       remove: Sequence[str] = ()) -> WeComResponse:
        """Add/remove corp tags on one follow relation (member ↔ customer)."""
        if not add and not remove:
            raise ValueError("mark_tag needs tags to add or remove")
        body = {"userid": userid, "external_userid": external_userid,
                "add_tag": list(add), "remove_tag": list(remove)}
        return WeComResponse.model_validate(await self.call("externalcontact/mark_tag", body))

    # -- welcome -----------------------------------------------------------------------------

    async def send_welcome_msg(self, welcome_code: str, *, text: str | None = None,
                               attachments: Sequence[Attachment] = ()) -> WeComResponse:
        """Single-use, within 20 s of the event; errcode 41051 means someone already greeted."""
        if text is None and not attachments:
            raise ValueError("send_welcome_msg needs text or attachments")
        body = without_none(welcome_code=welcome_code,
                            text={"content": text} if text is not None else None,
                            attachments=[a.to_body() for a in attachments] or None)
        return WeComResponse.model_validate(await self.call("externalcontact/send_welcome_msg", body))

    # -- 「联系我」 ---------------------------------------------------------------------------

    async def add_contact_way(self, way: ContactWay) -> AddContactWayResponse:
        """Create a contact way; scene 2 returns its ``qr_code`` URL."""
        return AddContactWayResponse.model_validate(await self.call("externalcontact/add_contact_way",
                                                                    way.to_body()))

    async def get_contact_way(self, config_id: str) -> GetContactWayResponse:
        return GetContactWayResponse.model_validate(
            await self.call("externalcontact/get_contact_way", {"config_id": config_id}))

    async def update_contact_way(self, way: ContactWay) -> WeComResponse:
        """Overwrite user/party/remark etc. of ``way.config_id``."""
        if not way.config_id:
            raise ValueError("update_contact_way needs config_id")
        return WeComResponse.model_validate(await self.call("externalcontact/update_contact_way", way.to_body()))

    async def del_contact_way(self, config_id: str) -> WeComResponse:
        return WeComResponse.model_validate(
            await self.call("externalcontact/del_contact_way", {"config_id": config_id}))

    async def list_contact_way(self, *, start_time: int | None = None, end_time: int | None = None,
                               cursor: str = "", limit: int | None = None) -> ListContactWayResponse:
        """One page of contact-way ids (API-made, non-temporary, default last 90 days)."""
        body = without_none(start_time=start_time, end_time=end_time, cursor=cursor, limit=limit)
        return ListContactWayResponse.model_validate(await self.call("externalcontact/list_contact_way", body))

    async def iter_contact_ways(self, *, start_time: int | None = None, end_time: int | None = None,
                                limit: int | None = None) -> AsyncIterator[str]:
        """Every contact-way ``config_id`` across all pages."""
        body = without_none(start_time=start_time, end_time=end_time, limit=limit)
        async for page in self._pages("externalcontact/list_contact_way", body, ListContactWayResponse):
            for ref in page.contact_way:
                yield ref.config_id

    async def close_temp_chat(self, userid: str, external_userid: str) -> WeComResponse:
        body = {"userid": userid, "external_userid": external_userid}
        return WeComResponse.model_validate(await self.call("externalcontact/close_temp_chat", body))

    # -- succession (在职 / 离职继承) ---------------------------------------------------------

    async def transfer_customer(self, handover_userid: str, takeover_userid: str,
                                external_userids: Sequence[str], *, transfer_success_msg: str | None = None,
                                resigned: bool = False) -> TransferCustomerResponse:
        """Hand ≤100 customers to another member; per-customer ``errcode`` in the reply."""
        api = "externalcontact/resigned/transfer_customer" if resigned else "externalcontact/transfer_customer"
        body = without_none(handover_userid=handover_userid, takeover_userid=takeover_userid,
                            external_userid=list(external_userids),
                            transfer_success_msg=None if resigned else transfer_success_msg)
        return TransferCustomerResponse.model_validate(await self.call(api, body))

    async def transfer_result(self, handover_userid: str, takeover_userid: str, *, cursor: str = "",
                              resigned: bool = False) -> TransferResultResponse:
        """One page of transfer statuses (1 done, 2 waiting, 3 refused, 4 limit, 5 no record)."""
        api = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
        body = {"handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor}
        return TransferResultResponse.model_validate(await self.call(api, body))

    async def iter_transfer_result(self, handover_userid: str, takeover_userid: str, *,
                                   resigned: bool = False) -> AsyncIterator[TransferResultItem]:
        api = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
        body = {"handover_userid": handover_userid, "takeover_userid": takeover_userid}
        async for page in self._pages(api, body, TransferResultResponse):
            for item in page.customer:
                yield item

    async def get_unassigned_list(self, *, cursor: str = "", page_size: int = 1000,
                                  page_id: int | None = None) -> GetUnassignedListResponse:
        """One page of customers of departed members awaiting assignment."""
        body = without_none(cursor=cursor, page_size=page_size, page_id=page_id)
        return GetUnassignedListResponse.model_validate(await self.call("externalcontact/get_unassigned_list", body))

    async def iter_unassigned(self, *, page_size: int = 1000) -> AsyncIterator[UnassignedItem]:
        async for page in self._pages("externalcontact/get_unassigned_list", {"page_size": page_size},
                                      GetUnassignedListResponse):
            for item in page.info:
                yield item
