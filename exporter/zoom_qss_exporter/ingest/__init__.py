"""Receiving Zoom's deliveries: HTTP, signature, rate limit, parsing, pure conversion, and the
pipeline that applies a conversion (and the archive that keeps what was accepted)."""
