"""Load, soak and fault runs against a real exporter process on loopback (``hardening/run``)."""
