"""Security features: separate listeners, authentication of /metrics, the rate limit on
requests that fail the signature check, and structured logs that never hold a secret."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from conftest import TOKEN, FakeClock, LiveExporter, LiveFactory, example, flat_settings, key
from prometheus_harness import wait_for
from zoom_qss_exporter.app import Exporter, create_app
from zoom_qss_exporter.config import load_settings
from zoom_qss_exporter.flags import ConfigError
from zoom_qss_exporter.ingest.ratelimit import KEY_LENGTH, RateLimiter
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.logs import REQUEST_ID_LENGTH, JsonFormatter, LogBudget, LogfmtFormatter, cut
from zoom_qss_exporter.web.auth import MetricsAuth, MetricsAuthError
from zoom_qss_exporter.web.server import bind

QOS = example("meeting.participant_qos")
BODY = json.dumps(QOS).encode()


# --- two listeners -----------------------------------------------------------------------------


@pytest.fixture
def split() -> Iterator[tuple[str, str, httpx.Client]]:
    """An exporter with its public and internal listeners on two loopback ports."""
    public, internal = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    public_port, internal_port = public.getsockname()[1], internal.getsockname()[1]
    settings = flat_settings(
        host="127.0.0.1",
        port=public_port,
        internal_listen=("127.0.0.1", internal_port),
        secret_tokens=(TOKEN,),
        metrics_cache=0.0,
    )
    exporter = Exporter(settings, clock=FakeClock(time.time()))
    server = uvicorn.Server(uvicorn.Config(create_app(exporter), log_level="warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [public, internal]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # polling the start condition
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    with httpx.Client(timeout=10) as client:
        yield f"http://127.0.0.1:{public_port}", f"http://127.0.0.1:{internal_port}", client
    server.should_exit = True
    thread.join(timeout=10)


def test_public_listener_serves_only_the_webhook_and_the_document(
    split: tuple[str, str, httpx.Client],
) -> None:
    public, _, client = split
    headers = {"content-type": "application/json", **sign_headers(TOKEN, int(time.time()), BODY)}
    assert client.post(public + "/webhook", content=BODY, headers=headers).status_code == 200
    assert client.get(public + "/openapi.json").status_code == 200
    for path in ("/metrics", "/-/healthy", "/-/ready", "/", "/status.json", "/metrics/", "/nope"):
        response = client.get(public + path)
        assert response.status_code == 404, path
        assert "error" in response.json()


def test_internal_listener_serves_metrics_and_probes_not_the_webhook(
    split: tuple[str, str, httpx.Client],
) -> None:
    _, internal, client = split
    for path in ("/metrics", "/-/healthy", "/-/ready", "/", "/status.json", "/openapi.json"):
        assert client.get(internal + path).status_code == 200, path
    headers = {"content-type": "application/json", **sign_headers(TOKEN, int(time.time()), BODY)}
    refused = client.post(internal + "/webhook", content=BODY, headers=headers)
    assert refused.status_code == 404 and "error" in refused.json()


def test_internal_address_must_differ_from_the_public_one() -> None:
    env = {"ZOOM_WEBHOOK_SECRET_TOKEN": "t"}
    with pytest.raises(ConfigError, match="must differ"):
        load_settings(["--web.internal-listen-address=:9981"], env)
    with pytest.raises(ConfigError, match="must differ"):
        load_settings(
            ["--web.listen-address=127.0.0.1:9981", "--web.internal-listen-address=:9981"], env
        )
    settings = load_settings(["--web.internal-listen-address=127.0.0.1:9982"], env)
    assert settings.web.internal_listen == ("127.0.0.1", 9982)
    distinct = load_settings(
        ["--web.listen-address=10.0.0.1:9981", "--web.internal-listen-address=127.0.0.1:9981"], env
    )
    assert distinct.web.internal_listen == ("127.0.0.1", 9981)
    assert load_settings([], env).web.internal_listen is None


# --- authentication of /metrics ----------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_metrics_bearer_token(live_factory: LiveFactory) -> None:
    live = live_factory(metrics_auth=MetricsAuth(bearer_token="scrape-token"))
    url = live.url + "/metrics"
    missing = live.client.get(url)
    assert missing.status_code == 401
    assert missing.json() == {"error": "authentication required"}
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert live.client.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert live.client.get(url, headers={"authorization": _basic("u", "p")}).status_code == 401
    good = live.client.get(url, headers={"authorization": "Bearer scrape-token"})
    assert good.status_code == 200 and "zoom_qss_exporter_build_info" in good.text
    for path in ("/-/healthy", "/-/ready", "/openapi.json"):  # probes stay open
        assert live.client.get(live.url + path).status_code == 200


def test_metrics_basic_auth(live_factory: LiveFactory) -> None:
    live = live_factory(metrics_auth=MetricsAuth(username="prometheus", password="pa:ss"))
    url = live.url + "/metrics"
    assert live.client.get(url).headers["www-authenticate"].startswith("Basic")
    for header in (
        _basic("prometheus", "wrong"),
        _basic("other", "pa:ss"),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe").decode(),
        "Bearer pa:ss",
        "",
    ):
        assert live.client.get(url, headers={"authorization": header}).status_code == 401, header
    # bytes that are not ASCII (Starlette reads them as latin-1): 401, not a 500
    raw = live.client.get(url, headers={b"authorization": b"Basic \xe9\xe9\xe9\xe9"})
    assert raw.status_code == 401
    assert live.client.get(url, headers={"authorization": _basic("prometheus", "pa:ss")}).is_success


def test_metrics_auth_flags_read_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-3x9\n")
    (tmp_path / "password").write_text("pw-7q2\n")
    (tmp_path / "empty").write_text("\n")
    env = {"ZOOM_WEBHOOK_SECRET_TOKEN": "t"}
    settings = load_settings(
        [
            f"--web.metrics-bearer-token-file={tmp_path / 'token'}",
            "--web.metrics-basic-auth-username=prom",
            f"--web.metrics-basic-auth-password-file={tmp_path / 'password'}",
        ],
        env,
    )
    assert settings.web.metrics_auth is not None
    loaded = settings.web.metrics_auth.load()
    assert (loaded.bearer_token, loaded.username, loaded.password) == ("tok-3x9", "prom", "pw-7q2")
    assert "tok-3x9" not in repr(loaded) and "pw-7q2" not in repr(loaded)
    assert load_settings([], env).web.metrics_auth is None
    with pytest.raises(ConfigError, match="go together"):
        load_settings(["--web.metrics-basic-auth-username=prom"], env)
    for name, problem in (("empty", "empty"), ("missing", "cannot read")):
        flag = f"--web.metrics-bearer-token-file={tmp_path / name}"
        with pytest.raises(MetricsAuthError, match=problem):
            create_app(Exporter(load_settings([flag], env)))


# --- the rate limit on failed signatures --------------------------------------------------------


def test_rate_limiter_refills_and_stays_bounded() -> None:
    limiter = RateLimiter(rate=2.0, max_clients=100)  # burst 4
    for _ in range(4):
        assert not limiter.exhausted("a", 0.0)
        limiter.charge("a", 0.0)
    assert limiter.exhausted("a", 0.0) and not limiter.exhausted("b", 0.0)
    assert not limiter.exhausted("a", 0.5)  # one failure earned back
    for n in range(1000):  # a sprayed range of addresses never grows the table unbounded
        limiter.charge(f"10.0.{n // 256}.{n % 256}", float(n))
    assert len(limiter) <= 100
    long = "x" * KEY_LENGTH  # a proxy's X-Forwarded-For may hold any text: its start counts
    for n in range(4):
        limiter.charge(f"{long}{n}", 2000.0)
    assert limiter.exhausted(long + "other", 2000.0)


def test_a_late_charge_does_not_turn_the_limiters_clock_back() -> None:
    """Slow requests charged with the time they started would refill the bucket twice."""
    limiter = RateLimiter(rate=1.0, burst=2.0)
    limiter.charge("a", 10.0)
    limiter.charge("a", 10.0)
    assert limiter.exhausted("a", 10.0)
    limiter.charge("a", 5.0)  # dated before the last charge
    assert limiter.exhausted("a", 10.5), "no refill granted for 5..10 again"


def _events(live: LiveExporter, outcome: str) -> float:
    return live.metrics().get(
        key("zoom_qss_exporter_events_total", event="unverified", outcome=outcome), 0.0
    )


def test_failed_signatures_past_the_limit_are_429(live_factory: LiveFactory) -> None:
    live = live_factory(unauthenticated_rate_limit=1.0, read_timeout=30.0)  # burst 2
    assert live.post(QOS, token="guess").status_code == 401
    assert live.post(QOS, token="guess").status_code == 401
    limited = live.post(QOS, token="guess")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert "slow down" in limited.json()["error"]
    assert _events(live, "rate_limited") == 1 and _events(live, "invalid_signature") == 2
    # a genuine delivery from the same address is never refused: the limit counts failures
    assert live.post(QOS).json() == {"status": "accepted"}
    live.clock.advance(1.0)  # one failure earned back
    assert live.post(QOS, token="guess").status_code == 401
    assert live.post(QOS, token="guess").status_code == 429


def test_over_the_limit_bad_headers_are_refused_before_the_body(live_factory: LiveFactory) -> None:
    """The body is never read: the answer comes although it is never sent (the read timeout,
    30 s, would otherwise answer 408)."""
    live = live_factory(unauthenticated_rate_limit=1.0, read_timeout=30.0)
    for _ in range(2):
        live.post(QOS, token="guess")
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 1000000\r\nx-zm-request-timestamp: 1\r\nx-zm-signature: v0=0\r\n\r\n"
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 429")


def test_rate_limit_zero_is_off(live_factory: LiveFactory) -> None:
    live = live_factory(unauthenticated_rate_limit=0.0)
    assert all(live.post(QOS, token="guess").status_code == 401 for _ in range(30))


# --- logs --------------------------------------------------------------------------------------


def _record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "zoom_qss_exporter.receiver", logging.INFO, "", 0, "m %s", ("x",), None
    )
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_logfmt_escapes_what_a_client_chose() -> None:
    line = LogfmtFormatter().format(_record(event="other", reason='a "b"\nlevel=error c=d'))
    assert "\n" not in line
    assert 'msg="m x"' in line and "event=other" in line
    assert 'reason="a \\"b\\"\\nlevel=error c=d"' in line


def test_json_log_line_is_one_object() -> None:
    line = JsonFormatter().format(_record(event="other", request_id="r\n1"))
    assert json.loads(line)["request_id"] == "r\n1" and "\n" not in line


def test_unicode_line_breaks_are_escaped_too() -> None:
    chosen = "a\x85level=error msg=forged\u2028b\u2029c"
    for formatter in (LogfmtFormatter(), JsonFormatter()):
        line = formatter.format(_record(event="other", request_id=chosen))
        assert len(line.splitlines()) == 1, line
    assert json.loads(JsonFormatter().format(_record(request_id=chosen)))["request_id"] == chosen


def test_url_validation_is_signed_even_with_verification_off(live_factory: LiveFactory) -> None:
    """Its answer is an HMAC of the caller's text under the secret token: unsigned, it would
    sign any forged delivery for an exporter that does verify."""
    live = live_factory(skip_signature_verification=True)
    forged = {"event": "endpoint.url_validation", "payload": {"plainToken": "v0:1:{}"}}
    body = json.dumps(forged).encode()
    unsigned = live.client.post(
        live.url + "/webhook", content=body, headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 401 and "encryptedToken" not in unsigned.text
    signed = live.post(forged)
    assert signed.status_code == 200 and signed.json()["encryptedToken"]


def test_json_logs_carry_event_outcome_and_request_id_and_no_secret(tmp_path: Path) -> None:
    """The real console script with --log.format=json at debug level: every delivery's line
    names its event, outcome and Zoom's request id; no secret appears anywhere."""
    secret, scrape_token = "zoom-secret-7f3a9c", "scrape-token-51d2"
    (tmp_path / "token").write_text(scrape_token)
    public, internal = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    ports = public.getsockname()[1], internal.getsockname()[1]
    public.close()
    internal.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOM_QSS_")}
    env["ZOOM_WEBHOOK_SECRET_TOKEN"] = secret
    exe = Path(sys.executable).parent / "zoom-qss-exporter"
    proc = subprocess.Popen(
        [
            str(exe),
            f"--web.listen-address=127.0.0.1:{ports[0]}",
            f"--web.internal-listen-address=127.0.0.1:{ports[1]}",
            f"--web.metrics-bearer-token-file={tmp_path / 'token'}",
            "--log.format=json",
            "--log.level=debug",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    signatures = []
    try:
        public_url, internal_url = (f"http://127.0.0.1:{p}" for p in ports)
        with httpx.Client(timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:  # polling readiness
                try:
                    if client.get(internal_url + "/-/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, "exporter did not start"
                time.sleep(0.05)

            def post(body: bytes, token: str, request_id: str) -> int:
                headers = {
                    "content-type": "application/json",
                    "x-zm-request-id": request_id,
                    **sign_headers(token, int(time.time()), body),
                }
                signatures.append(headers["x-zm-signature"])
                return client.post(
                    public_url + "/webhook", content=body, headers=headers
                ).status_code

            assert post(BODY, secret, "req-good") == 200
            assert post(BODY, "guess", "req-forged") == 401
            assert post(b"[]", secret, "req-array") == 400
            challenge = {"event": "endpoint.url_validation", "payload": {"plainToken": "pt"}}
            assert post(json.dumps(challenge).encode(), secret, "req-challenge") == 200
            auth = {"authorization": f"Bearer {scrape_token}"}
            assert client.get(internal_url + "/metrics", headers=auth).status_code == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    text = output.decode()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    by_id = {line["request_id"]: line for line in lines if line.get("request_id")}
    assert by_id["req-good"]["event"] == "meeting.participant_qos"
    assert by_id["req-good"]["outcome"] == "accepted"
    assert (by_id["req-forged"]["event"], by_id["req-forged"]["outcome"]) == (
        "unverified",
        "invalid_signature",
    )
    assert by_id["req-forged"]["status"] == 401
    assert (by_id["req-array"]["outcome"], by_id["req-array"]["status"]) == ("invalid_payload", 400)
    assert by_id["req-challenge"]["outcome"] == "accepted"
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    for leak in (secret, scrape_token, *signatures, *(s.removeprefix("v0=") for s in signatures)):
        assert leak not in text


_ = replace


def test_an_internal_listener_given_by_name_serves_its_paths() -> None:
    """``--web.internal-listen-address=localhost:PORT``: connections arrive on the address
    the name resolved to, not on the name."""
    internal = bind("localhost", 0)
    host, port = internal.getsockname()[:2]
    settings = flat_settings(
        host="127.0.0.1",
        port=port + 1,  # not served here: only the internal listener is
        internal_listen=("localhost", port),
        secret_tokens=(TOKEN,),
    )
    app = create_app(Exporter(settings, clock=FakeClock(time.time())))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [internal]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # polling the start condition
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    try:
        with httpx.Client(timeout=10) as client:
            assert client.get(url + "/metrics").status_code == 200
            assert client.get(url + "/-/ready").status_code == 200
            assert client.post(url + "/webhook", content=BODY).status_code == 404
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_an_internal_listener_that_does_not_resolve_is_a_clear_error() -> None:
    settings = flat_settings(internal_listen=("no-such-host.invalid", 9982), secret_tokens=(TOKEN,))
    with pytest.raises(OSError, match=r"cannot resolve 'no-such-host\.invalid'"):
        create_app(Exporter(settings))


def test_every_interface_is_ipv6_and_ipv4() -> None:
    """``:port`` (host ""): one socket taking IPv4 and, where the host has it, IPv6."""
    with bind("", 0) as sock:
        sock.listen()
        port = sock.getsockname()[1]
        addresses = ["127.0.0.1"] + (["::1"] if sock.family == socket.AF_INET6 else [])
        for address in addresses:
            with socket.create_connection((address, port), timeout=5):
                accepted, _ = sock.accept()
                accepted.close()


# --- bounded logs ------------------------------------------------------------------------------


def _refusal_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "refused delivery"]


def _over_the_limit(live: LiveExporter, request_id: str) -> int:
    """A body over --web.max-request-bytes, refused (413) by its Content-Length."""
    body = b"x" * 2000
    headers = {"content-type": "application/json", "x-zm-request-id": request_id}
    return live.client.post(live.url + "/webhook", content=body, headers=headers).status_code


def test_refusals_an_unauthenticated_client_causes_are_logged_within_a_budget(
    live_factory: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The review's floods: over-limit bodies and forged signatures from one client, each
    with a 30,000-character request id. The log gets 20 lines per 10 s, each id cut to 64
    characters, then one summary line saying how many were left out; the counters miss
    nothing."""
    caplog.set_level(logging.INFO, logger="zoom_qss_exporter")
    live = live_factory(max_request_bytes=1000, unauthenticated_rate_limit=0.0)
    huge = "r" * 30_000
    for _ in range(60):
        assert _over_the_limit(live, huge) == 413
        assert live.post(QOS, token="guess", headers={"x-zm-request-id": huge}).status_code == 401
    lines = _refusal_lines(caplog)
    assert len(lines) == 20
    assert all(len(r.request_id) == REQUEST_ID_LENGTH for r in lines)  # type: ignore[attr-defined]
    assert all(r.request_id.endswith("…") for r in lines)  # type: ignore[attr-defined]
    assert _events(live, "invalid_payload") == 60 and _events(live, "invalid_signature") == 60
    caplog.clear()
    live.clock.advance(10)
    assert _over_the_limit(live, "next") == 413
    (summary,) = [r for r in caplog.records if r.getMessage().startswith("suppressed")]
    assert summary.getMessage() == "suppressed 100 log lines of refused requests in the last 10 s"
    assert summary.by_kind == "invalid_payload:50,invalid_signature:50"  # type: ignore[attr-defined]
    assert [r.request_id for r in _refusal_lines(caplog)] == ["next"]  # type: ignore[attr-defined]


def test_client_disconnects_are_logged_within_the_budget(
    live_factory: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """16,485 lines in 2 s in the review: a client that sends half a body and hangs up."""
    caplog.set_level(logging.INFO, logger="zoom_qss_exporter")
    live = live_factory(unauthenticated_rate_limit=0.0)
    port = int(live.url.rsplit(":", 1)[1])
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: 1000\r\n\r\n{"
            )
    wait_for("50 disconnects counted", lambda: _events(live, "invalid_payload") == 50 or None)
    assert len(_refusal_lines(caplog)) == 20


def test_refusals_of_authentic_requests_are_always_logged(
    live_factory: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The budget is for what clients without the secret can cause: once a flood has used it
    up, Zoom's own refused deliveries (here a 422) are still logged."""
    caplog.set_level(logging.INFO, logger="zoom_qss_exporter")
    live = live_factory(unauthenticated_rate_limit=0.0)
    for _ in range(30):
        assert live.post(QOS, token="guess").status_code == 401
    assert (
        live.post(
            {"event": "meeting.participant_qos"}, headers={"x-zm-request-id": "z"}
        ).status_code
        == 422
    )
    assert [r.status for r in _refusal_lines(caplog)][-1] == 422  # type: ignore[attr-defined]


def test_over_limit_bodies_count_for_the_rate_limit(live_factory: LiveFactory) -> None:
    """A 413 (and a 408 or a disconnect) is a failure of the client's own making: past its
    limit, a request whose headers already fail gets 429 before its body is read."""
    live = live_factory(max_request_bytes=1000, unauthenticated_rate_limit=1.0)  # burst 2
    assert _over_the_limit(live, "a") == 413
    assert _over_the_limit(live, "b") == 413
    assert live.post(QOS, headers={"x-zm-signature": "v0=nothex"}).status_code == 429
    assert _events(live, "rate_limited") == 1


def test_log_budget_summarises_what_it_leaves_out() -> None:
    clock = FakeClock(0.0)
    logger = logging.getLogger("test.budget")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        budget = LogBudget(clock, lines=3, interval=5.0, logger=logger)
        assert [budget.allow("a") for _ in range(5)] == [True, True, True, False, False]
        budget.flush()
        assert not records  # the interval is not over
        clock.advance(5.0)
        budget.flush()
        assert [r.getMessage() for r in records] == [
            "suppressed 2 log lines of refused requests in the last 5 s"
        ]
        assert budget.allow("a")  # a new interval
        clock.advance(5.0)
        budget.flush()
        assert len(records) == 1  # nothing left out: no summary
    finally:
        logger.removeHandler(handler)
    assert cut("x" * 100) == "x" * (REQUEST_ID_LENGTH - 1) + "…"
    assert cut("short") == "short"
