"""Prometheus exporter for Zoom QSS webhooks."""

__version__ = "0.1.0"
