"""The exporter's state and how it is shown: the series store, the fleet metrics, the
exporter's own metrics, and the Prometheus text exposition."""
