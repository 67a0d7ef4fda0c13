"""``zoom-qss-exporter simulate``: realistic signed events of all 14 kinds."""
