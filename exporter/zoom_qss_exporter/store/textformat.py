"""The Prometheus text format's number and label spelling, shared by everything that writes
exposition lines itself, so that they match prometheus-client's own output byte for byte."""

from __future__ import annotations

import re
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
    text = ",".join(
        f'{name}="{escape(value)}"' for name, value in sorted(zip(names, values, strict=True))
    )
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8: U+FFFD takes its place
        return _SURROGATES.sub("\ufffd", text).encode()


_SURROGATES = re.compile("[\ud800-\udfff]")
