"""The OpenAPI 3.1 document of the exporter's own HTTP interface, served at ``/openapi.json``.

The webhook body's schema comes from the pydantic event models, one schema per event name
(a ``oneOf`` with a discriminator on ``event``), so the document cannot drift from what the
receiver parses. The models are more lenient than the document (numbers are read where Zoom
writes strings, unknown fields are ignored): the document says what Zoom sends.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pydantic.json_schema import models_json_schema

from zoom_qss_exporter import __version__
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.outcomes import URL_VALIDATION
from zoom_qss_exporter.web.auth import MetricsAuth

OPENAPI_PATH = "/openapi.json"
_REF = "#/components/schemas/{model}"

# status -> when; every one of them is answered with {"error": "..."}
WEBHOOK_ERRORS = {
    400: "The body is not UTF-8 JSON (UTF-16 and UTF-32, encoded surrogates (CESU-8), NaN "
    "and Infinity refused), nests too deeply, or is not an object; or the request is not "
    "valid HTTP.",
    401: "Signature headers missing or malformed, the signature matches no secret token, or "
    "x-zm-request-timestamp is outside the replay window.",
    408: "The body did not arrive within the read timeout.",
    413: "The body is larger than --web.max-request-bytes.",
    415: "The content type is not application/json.",
    422: "A known event without what keys its series (meeting uuid, session id, participant "
    "id, call id), or without an event name; the error names the field.",
    429: "Too many requests from this client failed the signature check; retry later.",
    431: "The request line and headers exceed 32 KiB, or there are more than 100 headers.",
    500: "An unexpected error (a bug); counted as outcome error and logged.",
    503: "The remote-write queue is full; Zoom delivers the event again later.",
}


def _schema(ref: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=ref)}


def _strip_internal(schemas: dict[str, Any]) -> None:
    """``invalid`` marks a malformed item inside the models; it is not part of the API."""
    for schema in schemas.values():
        properties = schema.get("properties", {})
        properties.pop("invalid", None)


def _event_schemas() -> tuple[dict[str, Any], list[str]]:
    models = list(dict.fromkeys(EVENT_MODELS.values()))
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    _strip_internal(schemas)
    names = []
    for name, model in EVENT_MODELS.items():
        schemas[name] = {
            "description": f"Zoom's {name} event.",
            "allOf": [_schema(model.__name__)],
            "properties": {"event": {"const": name}},
            "required": ["event"],
        }
        names.append(name)
    schemas[URL_VALIDATION] = {
        "description": "Zoom's challenge when the endpoint URL is validated (every 72 h).",
        "type": "object",
        "required": ["event", "payload"],
        "properties": {
            "event": {"const": URL_VALIDATION},
            "event_ts": {"type": "integer"},
            "payload": {
                "type": "object",
                "required": ["plainToken"],
                "properties": {"plainToken": {"type": "string", "minLength": 1}},
            },
        },
    }
    schemas["OtherEvent"] = {
        "description": "An event name the exporter does not know: answered 200 and ignored, "
        "so that Zoom does not retry it.",
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": {"type": "string", "minLength": 1, "not": {"enum": [*names, URL_VALIDATION]}}
        },
    }
    return schemas, [*names, URL_VALIDATION]


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _schema("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


def _text(description: str, *media_types: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": {"type": "string"}} for media in media_types},
    }


class Routes(NamedTuple):
    """What the document describes: the configurable paths and the metrics' authentication."""

    webhook_path: str = "/webhook"
    telemetry_path: str = "/metrics"
    split: bool = False  # an internal listener serves all but the webhook and this document
    metrics_auth: MetricsAuth | None = None


def build_openapi(settings: Routes) -> dict[str, Any]:
    schemas, known = _event_schemas()
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "What was wrong, for a human."}},
        "additionalProperties": False,
    }
    schemas["EventAnswer"] = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["accepted", "stale", "ignored"]},
            "reason": {"type": "string"},
        },
        "additionalProperties": False,
    }
    schemas["UrlValidationAnswer"] = {
        "type": "object",
        "required": ["plainToken", "encryptedToken"],
        "properties": {
            "plainToken": {"type": "string"},
            "encryptedToken": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
        "additionalProperties": False,
    }
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
    webhook_responses: dict[str, Any] = {
        "200": {
            "description": "Accepted (`accepted`), already superseded (`stale`), an unknown "
            "event (`ignored`), or the answer to endpoint.url_validation.",
            "content": {
                "application/json": {
                    "schema": {"oneOf": [_schema("EventAnswer"), _schema("UrlValidationAnswer")]}
                }
            },
        },
        **{
            str(status): _error(why, retry_after if status == 429 else None)
            for status, why in WEBHOOK_ERRORS.items()
        },
    }
    signature_headers = [
        {
            "name": "x-zm-request-timestamp",
            "in": "header",
            "required": True,
            "description": "Unix seconds; must be within the replay window.",
            "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        },
        {
            "name": "x-zm-signature",
            "in": "header",
            "required": True,
            "description": 'v0=hex(HMAC-SHA256(secret token, "v0:" + timestamp + ":" + body)).',
            "schema": {"type": "string", "pattern": "^v0=[0-9a-f]{64}$"},
        },
        {
            "name": "x-zm-request-id",
            "in": "header",
            "required": False,
            "description": "Zoom's id of the delivery; logged with its outcome.",
            "schema": {"type": "string"},
        },
    ]
    metrics: dict[str, Any] = {
        "summary": "The metrics, for Prometheus.",
        "responses": {
            "200": _text(
                "Prometheus text format, or OpenMetrics when asked for.",
                "text/plain",
                "application/openmetrics-text",
            )
        },
    }
    components: dict[str, Any] = {"schemas": schemas}
    auth = settings.metrics_auth
    if auth is not None:
        schemes: dict[str, Any] = {}
        if auth.bearer_token or auth.bearer_token_file:
            schemes["metricsBearer"] = {"type": "http", "scheme": "bearer"}
        if auth.username:
            schemes["metricsBasic"] = {"type": "http", "scheme": "basic"}
        components["securitySchemes"] = schemes
        metrics["security"] = [{name: []} for name in schemes]
        metrics["responses"]["401"] = _error(
            "Credentials missing or wrong.",
            {"WWW-Authenticate": {"schema": {"type": "string"}}},
        )
    probe = {"responses": {"200": _text("The process is up.", "text/plain")}}
    paths: dict[str, Any] = {
        settings.webhook_path: {
            "post": {
                "summary": "Zoom's QSS webhook deliveries.",
                "description": "Checks run in this order: size (413), signature (401, or 429 "
                "past the rate limit), content type (415), JSON (400), schema (422).",
                "parameters": signature_headers,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [_schema(n) for n in [*known, "OtherEvent"]],
                                "discriminator": {
                                    "propertyName": "event",
                                    "mapping": {n: _REF.format(model=n) for n in known},
                                },
                            }
                        }
                    },
                },
                "responses": webhook_responses,
            }
        },
        settings.telemetry_path: {"get": metrics},
        "/-/healthy": {"get": {"summary": "Liveness probe.", **probe}},
        "/-/ready": {"get": {"summary": "Readiness probe.", **probe}},
        "/": {
            "get": {
                "summary": "Status page: recent deliveries, events seen, setup checklist.",
                "responses": {"200": _text("", "text/html")},
            }
        },
        "/status.json": {
            "get": {
                "summary": "The status page's data (docs/status.md).",
                "responses": {
                    "200": {
                        "description": "Version, uptime, checklist, events, recent deliveries.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "summary": "This document.",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    split = (
        " The webhook and this document are served on --web.listen-address; the other paths "
        "only on --web.internal-listen-address."
        if settings.split
        else ""
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Zoom QSS exporter",
            "version": __version__,
            "description": "Receives Zoom QSS webhooks and serves them as Prometheus metrics. "
            'Every refusal is JSON {"error": "..."}.' + split,
        },
        "paths": paths,
        "components": components,
    }


def openapi_bytes(settings: Routes) -> bytes:
    return json.dumps(build_openapi(settings), separators=(",", ":")).encode()
