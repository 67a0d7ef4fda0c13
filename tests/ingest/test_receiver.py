"""The webhook over real HTTP: signatures, url_validation, and every refusal status."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from conftest import TOKEN, LiveExporter, LiveFactory, example, key
from zoom_qss_exporter.families import MAX_LABEL_VALUE
from zoom_qss_exporter.ingest import receiver
from zoom_qss_exporter.ingest.events import EVENT_MODELS

QOS = example("meeting.participant_qos")


def events_total(live: LiveExporter, event: str, outcome: str) -> float:
    return live.metrics().get(
        key("zoom_qss_exporter_events_total", event=event, outcome=outcome), 0.0
    )


def test_signed_event_is_accepted(live: LiveExporter) -> None:
    response = live.post(QOS)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert events_total(live, "meeting.participant_qos", "accepted") == 1


def test_wrong_signature_is_401_and_counted(live: LiveExporter) -> None:
    response = live.post(QOS, token="not-the-token")
    assert response.status_code == 401
    assert response.json() == {"error": "signature does not match"}
    assert events_total(live, "unverified", "invalid_signature") == 1
    assert events_total(live, "meeting.participant_qos", "accepted") == 0


def test_missing_signature_headers_are_401(live: LiveExporter) -> None:
    body = json.dumps(QOS).encode()
    headers = {"content-type": "application/json"}
    response = live.client.post(live.url + "/webhook", content=body, headers=headers)
    assert response.status_code == 401
    assert "x-zm-request-timestamp" in response.json()["error"]
    headers["x-zm-request-timestamp"] = str(int(live.clock()))
    response = live.client.post(live.url + "/webhook", content=body, headers=headers)
    assert response.status_code == 401
    assert "x-zm-signature" in response.json()["error"]


def test_body_changed_after_signing_is_401(live: LiveExporter) -> None:
    body = json.dumps(QOS).encode()
    from zoom_qss_exporter.ingest.signature import sign_headers

    headers = {"content-type": "application/json", **sign_headers(TOKEN, int(live.clock()), body)}
    tampered = body.replace(b"63 kbps", b"64 kbps")
    response = live.client.post(live.url + "/webhook", content=tampered, headers=headers)
    assert response.status_code == 401


def test_stale_and_future_timestamps_are_401(live: LiveExporter) -> None:
    now = live.clock()
    assert live.post(QOS, timestamp=now - 301).status_code == 401
    assert live.post(QOS, timestamp=now + 301).status_code == 401
    assert "replay window" in live.post(QOS, timestamp=now - 301).json()["error"]
    assert live.post(QOS, timestamp=now - 299).status_code == 200


def test_replay_window_is_configurable(live_factory: LiveFactory) -> None:
    live = live_factory(replay_window=30.0)
    assert live.post(QOS, timestamp=live.clock() - 31).status_code == 401
    assert live.post(QOS, timestamp=live.clock() - 29).status_code == 200


def test_every_rotated_token_is_accepted(live_factory: LiveFactory) -> None:
    live = live_factory(secret_tokens=("old-token", "new-token"))
    assert live.post(QOS, token="old-token").status_code == 200
    assert live.post(QOS, token="new-token").status_code == 200
    assert live.post(QOS, token=TOKEN).status_code == 401


def test_url_validation_answers_with_the_signing_token(live_factory: LiveFactory) -> None:
    live = live_factory(secret_tokens=("old-token", "new-token"))
    challenge = {
        "event": "endpoint.url_validation",
        "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
        "event_ts": 1654503849680,
    }
    response = live.post(challenge, token="new-token")
    assert response.status_code == 200
    expected = hmac.new(b"new-token", b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert response.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
    assert events_total(live, "endpoint.url_validation", "accepted") == 1


def test_url_validation_must_be_signed(live: LiveExporter) -> None:
    challenge = {"event": "endpoint.url_validation", "payload": {"plainToken": "abc"}}
    assert live.post(challenge, token="guess").status_code == 401


def test_url_validation_without_plain_token_is_422(live: LiveExporter) -> None:
    response = live.post({"event": "endpoint.url_validation", "payload": {}})
    assert response.status_code == 422
    assert "plainToken" in response.json()["error"]


def test_body_over_the_limit_is_413(live_factory: LiveFactory) -> None:
    live = live_factory(max_request_bytes=1000)
    response = live.post(b'{"event": "' + b"x" * 2000 + b'"}')
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]


def test_chunked_body_over_the_limit_is_413(live_factory: LiveFactory) -> None:
    live = live_factory(max_request_bytes=1000)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 200

    response = live.client.post(
        live.url + "/webhook", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_wrong_content_type_is_415_after_the_signature(live: LiveExporter) -> None:
    response = live.post(QOS, headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    unsigned = live.post(QOS, token="bad", headers={"content-type": "text/plain"})
    assert unsigned.status_code == 401


def test_json_content_type_with_parameters_is_fine(live: LiveExporter) -> None:
    response = live.post(QOS, headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200


def test_not_json_is_400(live: LiveExporter) -> None:
    for body in (b"", b"not json", b"{", b'{"a": NaN}', b"\xff\xfe\xfa"):
        response = live.post(body)
        assert response.status_code == 400, body
        assert response.json()["error"]
    assert events_total(live, "other", "invalid_payload") == 5


def test_json_that_is_not_an_object_is_400(live: LiveExporter) -> None:
    for body in (b"[]", b"1", b'"event"', b"null"):
        response = live.post(body)
        assert response.status_code == 400
        assert "JSON object" in response.json()["error"]


def test_deeply_nested_json_is_400_and_the_server_keeps_serving(live: LiveExporter) -> None:
    response = live.post(b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code in (400, 413)
    assert live.post(QOS).status_code == 200


def test_known_event_with_missing_identity_is_422_naming_the_field(live: LiveExporter) -> None:
    bad = json.loads(json.dumps(QOS))
    del bad["payload"]["object"]["uuid"]
    response = live.post(bad)
    assert response.status_code == 422
    assert response.json()["error"].startswith("payload.object.uuid")

    bad = json.loads(json.dumps(QOS))
    del bad["payload"]["object"]["participant"]["user_id"]
    response = live.post(bad)
    assert response.status_code == 422
    assert "user_id" in response.json()["error"]
    assert events_total(live, "meeting.participant_qos", "invalid_payload") == 2


def test_ids_longer_than_a_label_value_may_be_are_422_naming_the_field(
    live: LiveExporter,
) -> None:
    cases = [
        ("meeting.participant_qos", ("payload", "object", "uuid")),
        ("meeting.participant_qos", ("payload", "object", "participant", "user_id")),
        ("session.user_qos", ("payload", "object", "user", "id")),
        ("phone.call_qos", ("payload", "object", "call_id")),
        ("phone.call_qos", ("payload", "object", "call_qos", "type")),
    ]
    for name, path in cases:
        for length, status in ((MAX_LABEL_VALUE, 200), (MAX_LABEL_VALUE + 1, 422)):
            event = json.loads(json.dumps(example(name)))
            holder = event
            for part in path[:-1]:
                holder = holder[part]
            holder[path[-1]] = "x" * length
            response = live.post(event)
            assert response.status_code == status, (path, length)
            if status == 422:
                error = response.json()["error"]
                assert error.startswith(".".join(path)), error
                assert str(MAX_LABEL_VALUE) in error
    refused = sum(events_total(live, name, "invalid_payload") for name in {n for n, _ in cases})
    assert refused == len(cases)


def test_missing_event_name_is_422(live: LiveExporter) -> None:
    response = live.post({"payload": {}})
    assert response.status_code == 422
    assert "event" in response.json()["error"]


def test_unknown_event_is_200_and_counted(live: LiveExporter) -> None:
    response = live.post({"event": "meeting.something_new", "payload": {}})
    assert response.status_code == 200
    assert events_total(live, "other", "unknown_event") == 1


def test_repeated_event_is_stale(live: LiveExporter) -> None:
    assert live.post(QOS).json() == {"status": "accepted"}
    assert live.post(QOS).json() == {"status": "stale"}
    assert events_total(live, "meeting.participant_qos", "stale") == 1


def test_other_paths_and_methods_answer_json(live: LiveExporter) -> None:
    missing = live.client.get(live.url + "/nope")
    assert missing.status_code == 404
    assert "error" in missing.json()
    wrong = live.client.get(live.url + "/webhook")
    assert wrong.status_code == 405
    assert "error" in wrong.json()


def test_a_bug_while_handling_is_500_json_and_the_server_keeps_serving(
    live: LiveExporter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(live.exporter.pipeline, "ingest", broken)
    answer = live.post(QOS)
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error"}
    assert "unexpected error on the webhook" in caplog.text and "a bug" in caplog.text
    # counted under its event, so that a class of events failing is never silent
    assert events_total(live, "meeting.participant_qos", "error") == 1
    monkeypatch.undo()
    assert live.post(QOS).json() == {"status": "accepted"}


def test_url_validation_is_counted_accepted_only_once_answered(
    live: LiveExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its answer is computed after the event is known: a failure there is a 500, counted
    as ``error``, never as ``accepted``."""
    challenge = {"event": "endpoint.url_validation", "payload": {"plainToken": "pt"}}

    def broken(token: str, plain: str) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(receiver, "url_validation_token", broken)
    assert live.post(challenge).status_code == 500
    assert events_total(live, "endpoint.url_validation", "accepted") == 0
    assert events_total(live, "endpoint.url_validation", "error") == 1
    monkeypatch.undo()
    assert live.post(challenge).status_code == 200
    assert events_total(live, "endpoint.url_validation", "accepted") == 1


def test_a_repeated_data_event_is_stale(live: LiveExporter) -> None:
    """A ``*_data`` event carries no samples, only the participant's info: seen before (a
    replay within the window, Zoom's redelivery), it changes nothing and is answered stale,
    as docs/security.md says; a newer one, or one that adds a value, is accepted."""
    data = example("meeting.participant_data")
    del data["payload"]["object"]["participant"]["data"][0]["camera"]
    assert live.post(data).json() == {"status": "accepted"}
    assert live.post(data).json() == {"status": "stale"}
    assert events_total(live, "meeting.participant_data", "stale") == 1
    newer = copy.deepcopy(data)
    newer["event_ts"] += 60_000
    assert live.post(newer).json() == {"status": "accepted"}
    older = copy.deepcopy(data)
    older["payload"]["object"]["participant"]["data"][0]["camera"] = "not known yet"
    older["event_ts"] -= 60_000
    assert live.post(older).json() == {"status": "accepted"}  # fills in what was unknown
    assert live.post(older).json() == {"status": "stale"}


def test_probes_and_landing_page(live: LiveExporter) -> None:
    assert live.client.get(live.url + "/-/healthy").status_code == 200
    assert live.client.get(live.url + "/-/ready").status_code == 200
    landing = live.client.get(live.url + "/")
    assert landing.status_code == 200
    assert 'href="/metrics"' in landing.text


def test_skip_signature_verification_accepts_unsigned(live_factory: LiveFactory) -> None:
    live = live_factory(secret_tokens=(), skip_signature_verification=True)
    body = json.dumps(QOS).encode()
    response = live.client.post(
        live.url + "/webhook", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200


def test_fields_zoom_adds_anywhere_are_counted_and_the_event_accepted(live: LiveExporter) -> None:
    """A field Zoom adds shows up in the exporter's own metrics, wherever it is."""
    event = example("session.user_data_summary")
    event["new_envelope_field"] = True
    event["payload"]["object"]["user"]["new_user_field"] = "x"
    event["payload"]["object"]["user"]["data"][0]["new_data_field"] = "x"
    assert live.post(event).json() == {"status": "accepted"}
    skipped = key("zoom_qss_exporter_items_skipped_total", reason="unknown_field")
    assert live.metrics()[skipped] == 3
    assert live.post(example("session.user_data_summary")).status_code == 200
    assert live.metrics()[skipped] == 3  # Zoom's documented fields are all known


def test_error_series_exist_from_the_start(live: LiveExporter) -> None:
    """ZoomQSSWebhookErrors reads increase(): a series born at 1 would hide the first 500."""
    metrics = live.metrics()
    for event in (*EVENT_MODELS, "endpoint.url_validation", "other", "unverified"):
        assert metrics[key("zoom_qss_exporter_events_total", event=event, outcome="error")] == 0
