"""The monitoring mixin: Prometheus rules and Grafana dashboards generated from the exporter's
quality thresholds (``zoom_qss_exporter/analytics/quality.yaml``: what makes a stream poor) and
the mixin's own settings (``mixin/thresholds.yaml``). Run ``python -m mixin`` from the repository
to regenerate."""
