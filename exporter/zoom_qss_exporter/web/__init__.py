"""The HTTP server around the routes: listeners, transport, metrics authentication, the
OpenAPI document and the status page."""
