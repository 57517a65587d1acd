"""The pipeline that knows no business feature: service, HTTP app, dispatch, inbox, outbox,
scheduler, clock, config, logs, and the :class:`~scrm.kernel.feature.Feature` contract that
features in ``handlers/`` implement (composed, in order, by ``scrm/main.py``)."""
