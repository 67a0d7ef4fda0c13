"""Prometheus Remote Write 1.0 encoding: points -> snappy-compressed ``WriteRequest`` bytes.

Pure: no state, no I/O. The message types are built from a descriptor in code (there is no
``protoc`` at build time) and run on the ``protobuf`` runtime; compression is the snappy
*block* format of ``cramjam`` (remote write does not use snappy's framing format).

The spec asks for: ``__name__`` set, label names sorted and unique, no empty names or values
(an empty value means "no such label" in PromQL too, so it is left out), and the samples of
each series in time order. Label values are raw UTF-8 in protobuf, so nothing is escaped; a
lone surrogate (which JSON allows and UTF-8 cannot carry) becomes U+FFFD.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from functools import cache
from typing import Any, NamedTuple

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from zoom_qss_exporter.families import Family

PROTOCOL_VERSION = "0.1.0"
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": PROTOCOL_VERSION,
}
# Prometheus' staleness marker: a NaN with this exact bit pattern ends a series at its time.
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]

Labels = tuple[tuple[str, str], ...]
_SURROGATE = re.compile("[\ud800-\udfff]")


class Point(NamedTuple):
    """One sample of one series: the family names it and orders the label values."""

    family: Family
    labels: tuple[str, ...]  # values in ``family.labels`` order
    value: float
    timestamp: float  # Unix seconds (Zoom's time of the value)


def _message_types() -> dict[str, Any]:
    """prometheus/prompb's ``WriteRequest`` and what it holds (remote.proto, types.proto),
    reduced to the fields Remote Write 1.0 float samples use; field numbers as upstream."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="zoom_qss_exporter/prometheus_remote.proto", package="prometheus", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, str]) -> None:
        spec = proto.message_type.add(name=name)
        for field_name, number, kind, type_name in fields:
            repeated = field.LABEL_REPEATED if type_name else field.LABEL_OPTIONAL
            entry = spec.field.add(name=field_name, number=number, type=kind, label=repeated)
            if type_name:
                entry.type_name = type_name

    message("Label", ("name", 1, field.TYPE_STRING, ""), ("value", 2, field.TYPE_STRING, ""))
    message("Sample", ("value", 1, field.TYPE_DOUBLE, ""), ("timestamp", 2, field.TYPE_INT64, ""))
    message(
        "TimeSeries",
        ("labels", 1, field.TYPE_MESSAGE, ".prometheus.Label"),
        ("samples", 2, field.TYPE_MESSAGE, ".prometheus.Sample"),
    )
    message("WriteRequest", ("timeseries", 1, field.TYPE_MESSAGE, ".prometheus.TimeSeries"))
    pool = descriptor_pool.DescriptorPool()  # private: no clash with other prompb copies
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in ("Label", "Sample", "TimeSeries", "WriteRequest")
    }


_TYPES = _message_types()
WriteRequest: Any = _TYPES["WriteRequest"]
_Label: Any = _TYPES["Label"]
_Sample: Any = _TYPES["Sample"]


def clean(value: str) -> str:
    """A label value protobuf can carry: valid UTF-8 (lone surrogates become U+FFFD)."""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


@cache
def _order(family: Family) -> tuple[int, ...]:
    """Where each label of ``family`` goes once ``__name__`` joins them, sorted by name;
    index 0 is ``__name__``, index i+1 is ``family.labels[i]``."""
    names = ("__name__", *family.labels)
    return tuple(sorted(range(len(names)), key=names.__getitem__))


def series_labels(family: Family, values: tuple[str, ...]) -> Labels:
    """The complete, sorted label set of one series, empty values left out."""
    if len(values) != len(family.labels):
        raise ValueError(f"{family.name}: {len(values)} values for {len(family.labels)} labels")
    pairs = (("__name__", family.name), *zip(family.labels, values, strict=True))
    return tuple((pairs[i][0], clean(pairs[i][1])) for i in _order(family) if pairs[i][1])


def milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


def build(points: Iterable[Point]) -> Any:
    """The ``WriteRequest`` message: one time series per label set, its samples sorted by
    time; of two samples with the same millisecond the later one in ``points`` wins."""
    series: dict[tuple[Family, tuple[str, ...]], dict[int, float]] = {}
    for family, values, value, timestamp in points:
        samples = series.get((family, values))
        if samples is None:
            samples = series[(family, values)] = {}
        samples[milliseconds(timestamp)] = value
    request = WriteRequest()
    for (family, values), samples in series.items():
        entry = request.timeseries.add()
        entry.labels.extend([_Label(name=n, value=v) for n, v in series_labels(family, values)])
        entry.samples.extend([_Sample(timestamp=t, value=v) for t, v in sorted(samples.items())])
    return request


def compress(data: bytes) -> bytes:
    """Snappy block format (not the framing format), as Remote Write 1.0 requires."""
    return bytes(cramjam.snappy.compress_raw(data))


def decompress(body: bytes) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(body))


def encode(points: Iterable[Point]) -> bytes:
    """The body of one remote-write request."""
    return compress(build(points).SerializeToString())


def decode(body: bytes) -> dict[Labels, list[tuple[int, float]]]:
    """A request body back to ``{labels: [(timestamp ms, value), ...]}``, through the same
    libraries' parsers (for tests and loopback receivers)."""
    request = WriteRequest.FromString(decompress(body))
    out: dict[Labels, list[tuple[int, float]]] = {}
    for entry in request.timeseries:
        labels = tuple((label.name, label.value) for label in entry.labels)
        out.setdefault(labels, []).extend((s.timestamp, s.value) for s in entry.samples)
    return out
