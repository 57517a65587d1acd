"""Customer radar: signed tracked links, click recording, interest tags, manager alerts, stats.

``links`` mints links (other features call :func:`scrm.radar.links.make_link`), ``tokens``
signs and verifies them, ``views`` serves ``GET /r/{token}``, ``alerts`` aggregates manager
notices and ``stats`` counts sends and opens. The reactions live in ``handlers/radar.py``.
"""
