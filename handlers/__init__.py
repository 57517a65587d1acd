"""The business features, one folder each (``handlers/<name>/``), each exporting ``FEATURE``.

Nothing here is discovered: ``scrm/main.py`` lists the features in order. A feature imports the
kernel, the adapters, the playbook and only the ``api`` of the features it ``requires``.
"""
