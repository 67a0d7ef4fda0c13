"""The Prometheus text format's number and label spelling, shared by everything that writes
exposition lines itself, so that they match prometheus-client's own output byte for byte."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.utils import floatToGoString

go_float: Callable[[float], str] = floatToGoString  # 1626212691.0 -> "1.626212691e+09"
FORMATTED: dict[float, bytes] = {}  # read directly by the store's write loop (a call less)


def format_value(value: float) -> bytes:
    """A sample value as prometheus-client writes it; cached, values repeat a lot."""
    text = FORMATTED.get(value)
    if text is None:
        if len(FORMATTED) >= 1 << 16:
            FORMATTED.clear()
        text = FORMATTED[value] = go_float(value).encode()
    return text


def escape(value: str) -> str:
    """Label value escaping: backslash, newline and double quote."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_text(names: tuple[str, ...], values: tuple[str, ...]) -> bytes:
    """``a="1",b="2"``: the inside of a label set's braces, names sorted as prometheus-client
    writes them."""
    return ",".join(
        f'{name}="{escape(value)}"' for name, value in sorted(zip(names, values, strict=True))
    ).encode()


def insert_label(text: bytes, names: tuple[str, ...], name: str, value: str) -> bytes:
    """Add one label to ``text`` (made by :func:`label_text` from ``names``) in sorted place.

    Escaped values contain no unescaped quote, so ``,next="`` only occurs where label
    ``next`` starts."""
    pair = f'{name}="{escape(value)}"'.encode()
    later = sorted(n for n in names if n > name)
    if not later:
        return text + b"," + pair if text else pair
    at = text.find(b"," + later[0].encode() + b'="') if later[0] != min(names) else -1
    if at < 0:
        return pair + b"," + text
    return text[:at] + b"," + pair + text[at:]
