"""CRM integration: the push API, file imports and the drop folder, identity links, tag sync
both ways (incremental, nightly reconciliation) and the write-back webhook (``scrm crm``)."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
