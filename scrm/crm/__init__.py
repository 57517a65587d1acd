"""CRM integration: adapters (file import, HTTP API, webhook write-back), identity, tag sync.

Every CRM input is stored first (``crm_customer``, ``crm_event``, ``binding``) and then becomes an
internal event (``crm.changed``, ``crm.event``) that the dispatcher hands to ``handlers/crm.py``;
tag changes leave through the outbox like every other side effect.
"""
