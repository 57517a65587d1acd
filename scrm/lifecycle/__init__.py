"""Contact and group lifecycle: channels (「联系我」), welcome messages, the group registry and
group QR pools (「加入群聊」).

Handlers (``handlers/contacts.py``, ``groups.py``, ``tags.py``) stay thin and call in here;
the CLI (``scrm channels ...``, ``scrm groups ...``) uses the same modules to sync WeCom.
"""
