"""``python -m docgen [--check]``: the reference pages generated from the code.

``docs/metrics.md`` from the metric families (``families.py`` and the collectors of a real
``Exporter``), ``docs/configuration.md`` from the commands' argument parsers, and the chart's
``helm/zoom-qss-exporter/README.md`` from ``values.yaml`` and ``values.schema.json``. The prose
around the tables is in ``docgen/templates/``; ``tests/test_docs.py`` fails while a generated
page is out of date.
"""
