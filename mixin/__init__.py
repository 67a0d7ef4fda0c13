"""The monitoring mixin: Prometheus rules and Grafana dashboards generated from one thresholds
file (``mixin/thresholds.yaml``). Run ``python -m mixin`` from the repository to regenerate."""
