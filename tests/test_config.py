"""Flags, environment variables, and refusing to start without a secret token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from zoom_qss_exporter.config import load_settings
from zoom_qss_exporter.flags import ConfigError
from zoom_qss_exporter.ingest.convert import UserNameMode
from zoom_qss_exporter.remote.client import ParticipantInfo


def test_defaults_follow_the_design() -> None:
    s = load_settings([], {"ZOOM_WEBHOOK_SECRET_TOKEN": "t"})
    assert (s.web.host, s.web.port) == ("", 9981)  # every interface
    assert (s.web.telemetry_path, s.web.webhook_path) == ("/metrics", "/webhook")
    assert (s.store.ttl, s.store.summary_ttl, s.store.max_series) == (300, 3600, 1_000_000)
    assert s.store.per_participant is True
    assert s.zoom.replay_window == 300
    assert s.web.max_request_bytes == 1 << 20
    assert s.privacy.user_name is UserNameMode.PLAIN


def test_tokens_rotate_from_env_and_file(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("\ufefffrom-file\n", encoding="utf-8")  # saved by Notepad: a BOM
    s = load_settings(
        ["--zoom.secret-token-file", str(token_file)],
        {"ZOOM_WEBHOOK_SECRET_TOKEN": "old, new"},
    )
    assert s.zoom.secret_tokens == ("old", "new", "from-file")


def test_secrets_are_not_in_the_settings_repr() -> None:
    """Settings may end up in a traceback or a debug line: no token or salt in them."""
    s = load_settings(
        ["--privacy.user-name=hash", "--privacy.hash-salt=salt-5k2"],
        {"ZOOM_WEBHOOK_SECRET_TOKEN": "tok-8v1, tok-2m7"},
    )
    assert s.zoom.secret_tokens == ("tok-8v1", "tok-2m7")
    shown = repr(s)
    assert "tok-8v1" not in shown and "tok-2m7" not in shown and "salt-5k2" not in shown
    assert "max_series=" in shown, "the rest is still shown"


def test_no_token_is_refused_with_a_fix() -> None:
    with pytest.raises(ConfigError, match="ZOOM_WEBHOOK_SECRET_TOKEN"):
        load_settings([], {})
    s = load_settings(["--zoom.skip-signature-verification"], {})
    assert s.zoom.skip_signature_verification and s.zoom.secret_tokens == ()


def test_every_flag_has_an_environment_variable() -> None:
    env = {
        "ZOOM_WEBHOOK_SECRET_TOKEN": "t",
        "ZOOM_QSS_WEB_LISTEN_ADDRESS": "127.0.0.1:9000",
        "ZOOM_QSS_WEB_TELEMETRY_PATH": "/m",
        "ZOOM_QSS_WEB_WEBHOOK_PATH": "/zoom",
        "ZOOM_QSS_STORE_TTL": "2m",
        "ZOOM_QSS_STORE_SUMMARY_TTL": "1h30m",
        "ZOOM_QSS_STORE_MAX_SERIES": "500",
        "ZOOM_QSS_STORE_PER_PARTICIPANT": "false",
        "ZOOM_QSS_PRIVACY_USER_NAME": "hash",
    }
    s = load_settings([], env)
    web, store = s.web, s.store
    assert (web.host, web.port, web.telemetry_path, web.webhook_path) == (
        "127.0.0.1",
        9000,
        "/m",
        "/zoom",
    )
    assert (store.ttl, store.summary_ttl, store.max_series, store.per_participant) == (
        120,
        5400,
        500,
        False,
    )
    assert s.privacy.user_name is UserNameMode.HASH
    # a flag beats its environment variable
    assert load_settings(["--store.ttl", "30s"], env).store.ttl == 30


def test_bad_environment_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ZOOM_QSS_STORE_TTL"):
        load_settings([], {"ZOOM_WEBHOOK_SECRET_TOKEN": "t", "ZOOM_QSS_STORE_TTL": "soon"})


def test_a_bad_serve_variable_stops_serve_only() -> None:
    env = {**_cli_env(), "ZOOM_QSS_STORE_TTL": "soon"}
    for argv, code in ((["--version"], 0), (["simulate", "--help"], 0), (["replay", "--help"], 0)):
        result = subprocess.run(
            [sys.executable, "-m", "zoom_qss_exporter.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == code, (argv, result.stderr)
    serve = subprocess.run(
        [sys.executable, "-m", "zoom_qss_exporter.cli", "serve", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 2 and "ZOOM_QSS_STORE_TTL" in serve.stderr


def test_participant_info_mode_of_remote_write() -> None:
    """merged by default (what the dashboards' joins need); event on request, by flag or
    variable (the flag wins)."""
    env = {"ZOOM_WEBHOOK_SECRET_TOKEN": "t", "ZOOM_QSS_REMOTE_WRITE_URL": "http://rw/api/v1/write"}
    remote = load_settings([], env).remote_write
    assert remote is not None and remote.participant_info is ParticipantInfo.MERGED
    event = {**env, "ZOOM_QSS_REMOTE_WRITE_PARTICIPANT_INFO": "event"}
    remote = load_settings([], event).remote_write
    assert remote is not None and remote.participant_info is ParticipantInfo.EVENT
    remote = load_settings(["--remote-write.participant-info=merged"], event).remote_write
    assert remote is not None and remote.participant_info is ParticipantInfo.MERGED
    with pytest.raises(ConfigError, match="ZOOM_QSS_REMOTE_WRITE_PARTICIPANT_INFO"):
        load_settings([], {**env, "ZOOM_QSS_REMOTE_WRITE_PARTICIPANT_INFO": "both"})


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_QSS_", "ZOOM_WEBHOOK"))}
    return {**env, **extra}


def test_console_script_refuses_to_start_without_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zoom_qss_exporter.cli"],
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ZOOM_WEBHOOK_SECRET_TOKEN" in result.stderr
    assert "--zoom.skip-signature-verification" in result.stderr


def test_console_script_serves(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoom_qss_exporter.cli",
            "serve",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--web.unauthenticated-rate-limit=1",
        ],
        env=_cli_env(ZOOM_WEBHOOK_SECRET_TOKEN="t"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/-/healthy", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "exporter exited"
                assert time.monotonic() < deadline, "exporter did not come up"
                time.sleep(0.05)
        assert response.status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert "zoom_qss_exporter_build_info" in metrics.text
        # X-Forwarded-For is not trusted unless FORWARDED_ALLOW_IPS says from whom: a client
        # cannot pick a new rate-limit key per forged request (burst: 2)
        statuses = [
            httpx.post(
                f"http://127.0.0.1:{port}/webhook",
                content=b"{}",
                headers={"x-forwarded-for": f"10.0.0.{n}", "content-type": "application/json"},
                timeout=5,
            ).status_code
            for n in range(30)
        ]
        assert statuses.count(429) >= 20, statuses
    finally:
        process.terminate()
        assert process.wait(timeout=15) in (0, -15)  # uvicorn re-raises SIGTERM when done
