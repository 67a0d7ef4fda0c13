"""The webhook endpoint: size -> signature -> content type -> JSON -> schema -> pipeline.

A plain ASGI app (``web.FastRoute`` serves it ahead of Starlette's router): Starlette's request
and response objects and its middleware cost more than a third of what a trivial request costs
on this server stack (docs/performance.md), and every Zoom delivery would pay for them.

Authentication comes before any parsing, so an unsigned body costs one HMAC per configured
token and nothing more; a client that keeps failing it is answered 429, from its headers
alone when they are already wrong. A body must arrive within the read timeout (408). Every
refusal is a JSON ``{"error": ...}`` with the status Zoom's retry logic expects (4xx is never
retried; 5xx would be), and is counted, a 500 too (outcome ``error``). What an unauthenticated
client can make the exporter log is bounded (``logs.LogBudget``), and the client-chosen
request id is cut to ``logs.REQUEST_ID_LENGTH`` characters.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import orjson
from starlette.types import Message, Receive, Scope, Send

from zoom_qss_exporter.ingest.archive import Archive
from zoom_qss_exporter.ingest.deadlines import DeadlineExceeded, Deadlines
from zoom_qss_exporter.ingest.events import ValidationError, describe_validation_error, parse_event
from zoom_qss_exporter.ingest.pipeline import Pipeline
from zoom_qss_exporter.ingest.ratelimit import RateLimiter
from zoom_qss_exporter.ingest.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    check_headers,
    url_validation_token,
    verify_signature,
)
from zoom_qss_exporter.logs import LogBudget, cut
from zoom_qss_exporter.outcomes import UNVERIFIED, URL_VALIDATION, Outcome, event_label
from zoom_qss_exporter.store.health import HealthMetrics

log = logging.getLogger("zoom_qss_exporter.receiver")


@dataclass(frozen=True, slots=True)
class ReceiverOptions:
    secret_tokens: Sequence[str]
    skip_signature_verification: bool = False
    replay_window: float = 300.0
    max_request_bytes: int = 1 << 20
    read_timeout: float = 10.0  # seconds for the whole body; 0: none
    unauthenticated_rate_limit: float = 0.0  # signature failures per second per client; 0: none


class Answer(NamedTuple):
    status: int
    body: bytes  # JSON
    headers: dict[str, str] | None = None


class Refusal(Exception):
    """Ends a request early with ``status`` and a human-readable reason."""

    def __init__(
        self,
        status: int,
        message: str,
        event: str,
        outcome: Outcome,
        headers: dict[str, str] | None = None,
        charge: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.event = event
        self.outcome = outcome
        self.headers = headers
        self.charge = charge  # a failure of the client's own making: counts for its rate limit


class _Progress:
    """How far a request got, for the answer to an unexpected error and the status page: its
    event label, whether its signature held (and with which token), its outcome and Zoom's
    time of it."""

    __slots__ = ("authenticated", "event_ts", "label", "outcome", "token")

    def __init__(self) -> None:
        self.label = UNVERIFIED
        self.authenticated = False
        self.outcome = Outcome.ERROR.value
        self.token: int | None = None  # position of the verifying token, from 1
        self.event_ts: float | None = None  # Unix seconds


class DeliveryLog(Protocol):
    """Where each answered request is noted: the status page's ``Deliveries`` (web/status.py),
    which plugs in here rather than being imported (the web layer is above this one)."""

    def record(
        self,
        event: str,
        outcome: str,
        status: int,
        reason: str,
        seconds: float,
        request_id: str,
        token: int | None = None,
        event_ts: float | None = None,
    ) -> None: ...


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


class WebhookReceiver:
    def __init__(
        self,
        options: ReceiverOptions,
        pipeline: Pipeline,
        health: HealthMetrics,
        clock: Callable[[], float] = time.time,
        archive: Archive | None = None,
        log_budget: LogBudget | None = None,
        durable: Callable[[], Awaitable[None]] | None = None,
        deliveries: DeliveryLog | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.options = options
        # until what was accepted is on disk (remote write's log): awaited before answering
        self.durable = durable
        self.pipeline = pipeline
        self.health = health
        self.clock = clock
        self.archive = archive
        self.log_budget = log_budget or LogBudget(clock)
        self.deadlines = Deadlines(options.read_timeout) if options.read_timeout > 0 else None
        rate = options.unauthenticated_rate_limit
        self.limiter = (
            RateLimiter(rate) if rate > 0 and not options.skip_signature_verification else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _headers(scope)
        request_id = cut(headers.get("x-zm-request-id", ""))
        client = scope.get("client")
        address = client[0] if client else ""
        progress = _Progress()
        reason = ""
        try:
            event, answer = await self._handle(receive, headers, request_id, address, progress)
        except Refusal as refusal:
            event, outcome = refusal.event, refusal.outcome
            progress.outcome, reason = outcome.value, str(refusal)
            self.health.count_event(event, outcome)
            if refusal.charge and self.limiter is not None:
                self.limiter.charge(address, self.clock())
            # one line per rate-limited request would be a log flood
            level = logging.DEBUG if outcome is Outcome.RATE_LIMITED else logging.INFO
            if log.isEnabledFor(level) and self._may_log(progress, outcome.value):
                log.log(
                    level,
                    "refused delivery",
                    extra={
                        "event": event,
                        "outcome": outcome.value,
                        "status": refusal.status,
                        "request_id": request_id,
                        "reason": str(refusal),
                    },
                )
            answer = Answer(refusal.status, _json_body({"error": str(refusal)}), refusal.headers)
        except Exception:  # a bug: answered like any other endpoint's, counted and logged
            event = progress.label
            self.health.count_event(event, Outcome.ERROR)
            if self._may_log(progress, Outcome.ERROR.value):
                log.exception(
                    "unexpected error on the webhook",
                    extra={"event": event, "outcome": "error", "request_id": request_id},
                )
            answer = Answer(500, _json_body({"error": "internal error"}))
            progress.outcome, reason = Outcome.ERROR.value, "internal error"
        seconds = time.perf_counter() - started
        self.health.processing.observe((event,), seconds)
        if self.deliveries is not None:
            self.deliveries.record(
                event,
                progress.outcome,
                answer.status,
                reason,
                seconds,
                request_id,
                progress.token,
                progress.event_ts,
            )
        await _send_answer(send, answer)

    def _position(self, token: str | None) -> int | None:
        """Which of the configured tokens (from 1), never the token itself."""
        tokens = self.options.secret_tokens
        return tokens.index(token) + 1 if token is not None and token in tokens else None

    def _may_log(self, progress: _Progress, kind: str) -> bool:
        """Lines a client without the secret can cause share the log budget; those of
        authentic requests (Zoom's, or the token holder's) are always written."""
        if progress.authenticated and not self.options.skip_signature_verification:
            return True
        return self.log_budget.allow(kind)

    async def _handle(
        self,
        receive: Receive,
        headers: dict[str, str],
        request_id: str,
        address: str,
        progress: _Progress,
    ) -> tuple[str, Answer]:
        now = self.clock()
        limited = self._limited(address, headers, now)
        body = await self._read_body(receive, headers)
        token = self._verify(headers, body, now, address, limited)
        progress.authenticated, progress.label = token is not None, event_label(None)
        progress.token = self._position(token)
        content_type = headers.get("content-type", "")
        if content_type.partition(";")[0].strip().lower() != "application/json":
            raise Refusal(
                415,
                f"content type must be application/json, not {content_type[:60]!r}",
                event_label(None),
                Outcome.INVALID_PAYLOAD,
            )
        document = _parse_json(body)
        name = document.get("event")
        label = progress.label = event_label(name)
        if progress.authenticated:  # Zoom's time of it, for the status page's clock
            progress.event_ts = _seconds(document.get("event_ts"))
        if name == URL_VALIDATION:
            if token is None and self.options.secret_tokens:
                # even with verification off: the answer is an HMAC of the caller's text under
                # the secret token, which would sign any forged delivery
                token = self._verify(headers, body, now, address, limited, always=True)
                progress.authenticated, progress.token = True, self._position(token)
            answer = self._url_validation(document, token)
            progress.outcome = Outcome.ACCEPTED.value
            # counted once the answer is sure: before it, it could still be a 500
            self.health.count_event(URL_VALIDATION, Outcome.ACCEPTED)
            log.info(
                "answered endpoint.url_validation",
                extra={"event": label, "outcome": "accepted", "request_id": request_id},
            )
            return label, answer
        if not isinstance(name, str) or not name:
            raise Refusal(
                422, "event: a non-empty string is required", label, Outcome.INVALID_PAYLOAD
            )
        try:
            event = parse_event(document)
        except ValidationError as error:
            raise Refusal(
                422, describe_validation_error(error), label, Outcome.INVALID_PAYLOAD
            ) from None
        if event is None:
            self.health.count_event(label, Outcome.UNKNOWN_EVENT)
            progress.outcome = Outcome.UNKNOWN_EVENT.value
            log.info(
                "ignored unknown event %r",
                name[:80],
                extra={"event": label, "outcome": "unknown_event", "request_id": request_id},
            )
            return label, _IGNORED
        outcome = self.pipeline.ingest(event, now)
        if outcome is Outcome.REJECTED_OVERLOAD:  # nothing was applied: Zoom delivers it again
            raise Refusal(
                503,
                "remote write cannot take the event now (its queue is full, or its log cannot "
                "be written): deliver again later",
                label,
                outcome,
            )
        if self.archive is not None:
            self.archive.append(body, document, now, request_id)
        if self.durable is not None:
            try:
                await self.durable()
            except OSError as error:  # queued, but not known to be on disk: Zoom tries again
                raise Refusal(
                    503, f"{error}: deliver again later", label, Outcome.REJECTED_OVERLOAD
                ) from None
        self.health.count_event(label, outcome)
        self.health.last_event.set(now)
        progress.outcome = outcome.value
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "delivery",
                extra={"event": label, "outcome": outcome.value, "request_id": request_id},
            )
        return label, _STATUS_ANSWERS[outcome]

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        limit = self.options.max_request_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []

        async def read() -> None:
            size = 0
            more = True
            while more:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    raise Refusal(
                        400,
                        "client disconnected before the body was complete",
                        UNVERIFIED,
                        Outcome.INVALID_PAYLOAD,
                        charge=True,
                    )
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                more = message.get("more_body", False)

        if self.deadlines is None:
            await read()
        else:
            try:
                await self.deadlines.run(read)
            except DeadlineExceeded:
                raise Refusal(
                    408,
                    f"request body not received within {self.options.read_timeout:g} s",
                    UNVERIFIED,
                    Outcome.INVALID_PAYLOAD,
                    {"connection": "close"},
                    charge=True,
                ) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _limited(self, client: str, headers: dict[str, str], now: float) -> bool:
        """Whether ``client`` is over its failure rate; if so, and its headers already fail,
        it is refused before its body is read."""
        if self.limiter is None or not self.limiter.exhausted(client, now):
            return False
        try:
            check_headers(
                headers.get(TIMESTAMP_HEADER),
                headers.get(SIGNATURE_HEADER),
                now,
                self.options.replay_window,
            )
        except SignatureError:
            raise _rate_limited() from None
        return True

    def _verify(
        self,
        headers: dict[str, str],
        body: bytes,
        now: float,
        client: str,
        limited: bool,
        always: bool = False,
    ) -> str | None:
        """The token that signed the request; ``None`` when verification is switched off
        (unless ``always``). A valid signature is honoured even over the rate limit: the
        limit counts failures."""
        if self.options.skip_signature_verification and not always:
            return None
        try:
            return verify_signature(
                body,
                headers.get(TIMESTAMP_HEADER),
                headers.get(SIGNATURE_HEADER),
                self.options.secret_tokens,
                now,
                self.options.replay_window,
            )
        except SignatureError as error:
            if limited:
                raise _rate_limited() from None
            if self.limiter is not None:  # at the time of the failure: never back in time
                self.limiter.charge(client, self.clock())
            raise Refusal(401, str(error), UNVERIFIED, Outcome.INVALID_SIGNATURE) from None

    def _url_validation(self, document: dict[str, object], token: str | None) -> Answer:
        payload = document.get("payload")
        plain = payload.get("plainToken") if isinstance(payload, dict) else None
        if not isinstance(plain, str) or not plain:
            raise Refusal(
                422,
                "payload.plainToken: a non-empty string is required",
                URL_VALIDATION,
                Outcome.INVALID_PAYLOAD,
            )
        if token is None:
            raise Refusal(
                422,
                "cannot answer endpoint.url_validation: no secret token configured",
                URL_VALIDATION,
                Outcome.INVALID_PAYLOAD,
            )
        return Answer(
            200,
            _json_body({"plainToken": plain, "encryptedToken": url_validation_token(token, plain)}),
        )


def _seconds(milliseconds: object) -> float | None:
    """Zoom's ``event_ts`` in seconds, when it is a plausible time (any JSON number may come)."""
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int | float):
        return None
    if not 0 < milliseconds < 1e15:
        return None
    return float(milliseconds) / 1000


def _json_body(document: dict[str, str]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# the answers to authentic events, encoded once: every delivery gets one
_STATUS_ANSWERS = {
    outcome: Answer(200, _json_body({"status": outcome.value})) for outcome in Outcome
}
_IGNORED = Answer(200, _json_body({"status": "ignored", "reason": "unknown event"}))
_JSON = (b"content-type", b"application/json")


async def _send_answer(send: Send, answer: Answer) -> None:
    head = [_JSON, (b"content-length", str(len(answer.body)).encode())]
    if answer.headers:
        head += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": head})
    await send({"type": "http.response.body", "body": answer.body})


_WANTED = frozenset(
    name.encode()
    for name in (
        "content-length",
        "content-type",
        "x-zm-request-id",
        TIMESTAMP_HEADER,
        SIGNATURE_HEADER,
    )
)


def _headers(scope: Scope) -> dict[str, str]:
    """The few headers the receiver reads, in one pass over the raw list. A repeated header
    is joined with ", " as HTTP lists are, so a doubled signature or content type fails its
    check instead of one of the copies silently winning."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            found[key] = found[key] + ", " + text if key in found else text
    return found


def _too_large(limit: int) -> Refusal:
    return Refusal(
        413,
        f"request body exceeds {limit} bytes",
        UNVERIFIED,
        Outcome.INVALID_PAYLOAD,
        {"connection": "close"},  # the rest of the body is never read
        charge=True,
    )


def _rate_limited() -> Refusal:
    return Refusal(
        429,
        "too many requests failed the signature check: slow down",
        UNVERIFIED,
        Outcome.RATE_LIMITED,
        {"retry-after": "1"},
    )


def _parse_json(body: bytes) -> dict[str, object]:
    """The body as a JSON object. orjson reads valid bodies about twice as fast as the standard
    library and refuses what RFC 8259 refuses (NaN, lone surrogates, invalid UTF-8); whatever it
    refuses is read again by the standard library, which says more precisely what is wrong and
    still takes a few things (a 1e400 or a 400-digit number, which the value parsers skip)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _parse_json_strictly(body)
    if not isinstance(document, dict):
        raise Refusal(
            400,
            f"body must be a JSON object, not {type(document).__name__}",
            event_label(None),
            Outcome.INVALID_PAYLOAD,
        )
    return document


def _invalid_text(message: str) -> Refusal:
    return Refusal(400, message, event_label(None), Outcome.INVALID_PAYLOAD)


_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _decode(body: bytes) -> str:
    """The body as text: UTF-8 only (RFC 8259 section 8.1). ``json.loads(bytes)`` would also
    take UTF-16 and UTF-32, and Python's lenient reading of the UTF-8 encoding of a lone
    surrogate (CESU-8), whose value no label and no archive line could then hold."""
    if body.startswith(_UTF16_32_BOMS) or b"\x00" in body[:4]:
        # JSON text starts with ASCII; in UTF-8 it never holds a NUL byte
        raise _invalid_text("body must be UTF-8 JSON (RFC 8259 section 8.1), not UTF-16 or UTF-32")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        at = error.start
        if body[at] == 0xED and at + 1 < len(body) and body[at + 1] >= 0xA0:
            raise _invalid_text(
                f"body is not valid UTF-8 (RFC 8259 section 8.1): an encoded UTF-16 surrogate "
                f"(CESU-8) at byte {at}"
            ) from None
        raise _invalid_text(
            f"body is not valid UTF-8 (RFC 8259 section 8.1) at byte {at}"
        ) from None


def _parse_json_strictly(body: bytes) -> object:
    text = _decode(body)
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise _invalid_text(f"body is not valid JSON: {reason}"[:200]) from None
    if _SURROGATE_ESCAPE.search(body) is not None:
        try:  # a lone surrogate cannot be written as UTF-8: no label value may hold one
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid_text(
                "body is not valid JSON text: an unpaired UTF-16 surrogate escape"
            ) from None
    return document


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
