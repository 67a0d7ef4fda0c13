"""Talking to the receiver: credentials read on every request, TLS, secrets kept out of
sight, and refusals told apart by reason."""

from __future__ import annotations

import base64
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from remote_receiver import T0, FakeReceiver, fake_receiver, handler, options, points, run, until
from zoom_qss_exporter.remote.client import (
    RemoteWriteError,
    RemoteWriteOptions,
    check_options,
    failure_reason,
    redact,
)
from zoom_qss_exporter.remote.queue import Chunk, RemoteWriteQueue


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with fake_receiver() as fake:
        yield fake


def test_failure_reasons_of_other_receivers() -> None:
    assert failure_reason(400, "err-mimir-sample-out-of-order: ...") == "out_of_order"
    assert failure_reason(400, "err-mimir-sample-timestamp-too-old") == "too_old"
    assert failure_reason(400, "same timestamp but a different value") == "duplicate_timestamp"
    assert failure_reason(403, "") == "unauthorized"
    assert failure_reason(413, "request too large") == "rejected"


def test_bearer_token_is_read_on_every_request(receiver: FakeReceiver, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")

    async def scenario() -> None:
        queue = RemoteWriteQueue(options(receiver.url, bearer_token_file=str(token)))
        queue.start()
        queue.offer([Chunk(points(1))])
        await until("a request", lambda: receiver.count() == 1)
        token.write_text("rotated")
        queue.offer([Chunk(points(1, start=T0 + 5))])
        await queue.close(10)

    run(scenario)
    auth = [r.headers.get("Authorization") for r in receiver.requests]
    assert auth == ["Bearer first", "Bearer rotated"]


def test_basic_auth_from_a_password_file(receiver: FakeReceiver, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret:with colon\n")

    async def scenario() -> None:
        queue = RemoteWriteQueue(
            options(
                receiver.url,
                basic_auth_username="zoom",
                basic_auth_password_file=str(password),
            )
        )
        queue.offer([Chunk(points(1))])
        await queue.close(10)

    run(scenario)
    expected = base64.b64encode(b"zoom:s3cret:with colon").decode()
    assert receiver.requests[0].headers["Authorization"] == f"Basic {expected}"


def test_unreadable_credentials_fail_at_start_and_are_retried_later(
    receiver: FakeReceiver, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing")
    with pytest.raises(RemoteWriteError, match="cannot read"):
        check_options(options(receiver.url, bearer_token_file=missing))
    with pytest.raises(RemoteWriteError, match="TLS"):
        check_options(options(receiver.url, tls_ca_file=missing))
    token = tmp_path / "token"

    async def scenario() -> RemoteWriteQueue:
        queue = RemoteWriteQueue(options(receiver.url, bearer_token_file=str(token)))
        queue.start()
        queue.offer([Chunk(points(2))])
        await until("a retry", lambda: queue.retried_total >= 2)
        token.write_text("back")  # the Secret is mounted again
        await queue.close(10)
        return queue

    queue = run(scenario)
    assert queue.sent_total == 2
    assert receiver.requests[-1].headers["Authorization"] == "Bearer back"


def test_secrets_stay_out_of_reprs_and_logs(tmp_path: Path) -> None:
    settings = options("https://user:pw@mimir.example/api/v1/push?token=x")
    assert "pw" not in repr(settings) and "token=x" not in repr(settings)
    assert redact(settings.url) == "https://mimir.example/api/v1/push"


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_with_a_ca_file_and_insecure_skip_verify(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    receiver = FakeReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(receiver))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # The handshake in the connection's own thread, not in accept(): a client that stops in
    # the middle of it (the untrusted one below, cut off at close) must not block the server
    # thread, and with it shutdown().
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    url = f"https://127.0.0.1:{server.server_address[1]}/api/v1/write"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:

        async def send(settings: RemoteWriteOptions) -> RemoteWriteQueue:
            queue = RemoteWriteQueue(settings)
            queue.start()
            queue.offer([Chunk(points(3))])
            await until("an answer", lambda: queue.sent_total + queue.retried_total > 0)
            await queue.close(0.5)
            return queue

        assert run(lambda: send(options(url, tls_ca_file=str(cert)))).sent_total == 3
        assert run(lambda: send(options(url, tls_insecure_skip_verify=True))).sent_total == 3
        untrusted = run(lambda: send(options(url)))
        assert untrusted.sent_total == 0 and untrusted.dropped_total == 3
    finally:
        server.shutdown()
        server.server_close()
