"""The OpenAPI 3.1 document at /openapi.json: valid, built from the event models, and true
of the live server (schemathesis finds no server error and no undocumented answer)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.generation import GenerationMode

from conftest import TOKEN, LiveExporter, LiveFactory, example, flat_settings
from zoom_qss_exporter.config import Settings
from zoom_qss_exporter.ingest.events import EVENT_MODELS
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.web.auth import MetricsAuth
from zoom_qss_exporter.web.openapi import WEBHOOK_ERRORS, build_openapi


def test_served_document_is_valid_openapi_31(live: LiveExporter) -> None:
    response = live.client.get(live.url + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    validate(build_openapi(flat_settings(metrics_auth=MetricsAuth("t", "u", "p")).web.routes()))


def test_webhook_body_is_one_of_the_event_models_by_name() -> None:
    document = build_openapi(Settings().web.routes())
    body = document["paths"]["/webhook"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert schema["discriminator"]["propertyName"] == "event"
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {*EVENT_MODELS, "endpoint.url_validation"}
    schemas = document["components"]["schemas"]
    for name, model in EVENT_MODELS.items():
        assert schemas[name]["properties"]["event"] == {"const": name}
        assert schemas[name]["allOf"] == [{"$ref": f"#/components/schemas/{model.__name__}"}]
    responses = document["paths"]["/webhook"]["post"]["responses"]
    assert set(responses) == {"200", *map(str, WEBHOOK_ERRORS)}


def test_zoom_examples_match_the_document() -> None:
    """Every one of Zoom's published examples validates against its event's schema."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    document = build_openapi(Settings().web.routes())
    for name in EVENT_MODELS:
        root = {**document, "$ref": f"#/components/schemas/{name}"}
        Draft202012Validator(root).validate(example(name))


def test_paths_follow_the_settings() -> None:
    document = build_openapi(flat_settings(webhook_path="/zoom", telemetry_path="/m").web.routes())
    assert {"/zoom", "/m", "/-/healthy", "/-/ready", "/", "/status.json", "/openapi.json"} == set(
        document["paths"]
    )
    secured = build_openapi(flat_settings(metrics_auth=MetricsAuth(bearer_token="t")).web.routes())
    metrics = secured["paths"]["/metrics"]["get"]
    assert metrics["security"] == [{"metricsBearer": []}] and "401" in metrics["responses"]


# --- schemathesis against the live server ------------------------------------------------------


def _send(live: LiveExporter, case: Any, sign: bool) -> httpx.Response:
    """Most webhook bodies are signed (so that the checks past the signature are reached),
    some are not (401 and 429 must be documented too)."""
    kwargs = case.as_transport_kwargs(base_url=live.url)
    headers = {k: str(v) for k, v in (kwargs.get("headers") or {}).items()}
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
        headers["content-type"] = "application/json"
    else:
        data = kwargs.get("data") or b""
        body = data if isinstance(data, bytes) else str(data).encode()
    if case.method == "POST" and sign:
        headers.update(sign_headers(TOKEN, int(live.clock()), body))
    return httpx.request(
        case.method,
        kwargs["url"],
        params=kwargs.get("params"),
        headers=headers,
        content=body if case.method == "POST" else None,
        timeout=10,
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_live_server_conforms_to_its_document(live_factory: LiveFactory, mode: Any) -> None:
    """schemathesis generates requests from the served document; every answer must be
    documented (status, content type, headers, body schema) and none may be a 5xx."""
    live = live_factory(max_request_bytes=64 * 1024, read_timeout=5.0)
    api = schemathesis.openapi.from_url(live.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 5  # schemathesis leaves out the document itself
    statuses: Counter[int] = Counter()
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method != "post":
            continue  # nothing of a GET without parameters can be made invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30 if operation.method == "post" else 5,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = _send(live, case, sign=sum(statuses.values()) % 4 != 3)
            statuses[response.status_code] += 1
            assert response.status_code < 500, response.text
            case.validate_response(response, excluded_checks=_LENIENT)

        check()
    assert statuses[401] and (statuses[200] or mode is GenerationMode.NEGATIVE)


# The document says what Zoom sends; the models are deliberately more lenient (numbers where
# Zoom writes strings, unknown fields ignored, bad QoS items skipped), so schema-invalid bodies
# may be accepted and schema-valid ones without an identity refused with 422 (documented).
_LENIENT = [
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.positive_data_acceptance,
]
