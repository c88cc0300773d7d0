"""OTLP metric data points into metric samples. Pure."""

from __future__ import annotations

import math
from typing import Any

import orjson
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from ingest.formats.otlp_decode import _json_items, _json_resource, _json_top, _load_protobuf
from ingest.formats.otlp_sessions import session_value
from ingest.formats.otlp_values import (
    _at,
    _digest,
    _jget,
    _json_attributes,
    _json_int,
    _pb_attributes,
)
from ingest.formats.otlp_wire import (
    DEFAULT_SESSION_ATTRIBUTES,
    MAX_UNIX_NANOS,
    WireBatch,
    WirePoint,
)
from ingest.formats.records import MetricRecord, ParseResult, Record, RecordError
from ingest.formats.semconv_values import as_count


def decode_protobuf_metrics(body: bytes, *, max_string_chars: int) -> WireBatch:
    request = _load_protobuf(ExportMetricsServiceRequest, body)
    points: list[WirePoint] = []
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = _pb_attributes(resource_metrics.resource.attributes, max_string_chars, {})
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            for m, metric in enumerate(scope_metrics.metrics):
                path = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                points.extend(_pb_points(metric, path, len(points), resource, max_string_chars))
    return WireBatch(items=points, errors=[])


def _pb_points(
    metric: Any, path: str, index: int, resource: dict[str, Any], limit: int
) -> list[WirePoint]:
    shape = metric.WhichOneof("data")
    if shape is None:
        return []
    return [
        WirePoint(
            index=index + p,
            path=f"{path}.{_CAMEL[shape]}.dataPoints[{p}]",
            name=metric.name,
            unit=metric.unit,
            time_ns=point.time_unix_nano,
            samples=_pb_samples(shape, point),
            attributes=_pb_attributes(point.attributes, limit, {}),
            resource=resource,
        )
        for p, point in enumerate(getattr(metric, shape).data_points)
    ]


_CAMEL = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponentialHistogram",
    "summary": "summary",
}


NO_RECORDED_VALUE = 1


def _pb_samples(shape: str, point: Any) -> tuple[tuple[str, float], ...]:
    if point.flags & NO_RECORDED_VALUE:
        return ()
    if shape in ("gauge", "sum"):
        which = point.WhichOneof("value")
        return (("", float(getattr(point, which))),) if which else ()
    has_sum = shape == "summary" or point.HasField("sum")
    return _distribution_samples(point.count, point.sum if has_sum else None)


def _distribution_samples(count: Any, total: Any) -> tuple[tuple[str, float], ...]:
    """Histogram/summary points: <name>.count, <name>.sum and <name>.avg when count > 0."""
    count_value = as_count(count)
    if count_value is None:
        count_value = _json_int(count) or 0
    samples: list[tuple[str, float]] = [("count", float(count_value))]
    if total is not None:
        samples.append(("sum", float(total)))
        if count_value > 0:
            samples.append(("avg", float(total) / count_value))
    return tuple(samples)


def decode_json_metrics(payload: dict[str, Any], *, max_string_chars: int) -> WireBatch:
    points: list[WirePoint] = []
    errors: list[RecordError] = []
    index = 0
    for r, resource_metrics in enumerate(_json_top(payload, "resourceMetrics", "resource_metrics")):
        resource = _json_resource(resource_metrics, max_string_chars)
        scopes = _json_items(resource_metrics, "scopeMetrics", "scope_metrics")
        for s, scope_metrics in enumerate(scopes):
            for m, metric in enumerate(_json_items(scope_metrics, "metrics", "metrics")):
                path = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                for point in _json_metric_points(metric, path, index, resource, max_string_chars):
                    if isinstance(point, RecordError):
                        errors.append(point)
                    else:
                        points.append(point)
                    index += 1
    return WireBatch(items=points, errors=errors)


def _json_metric_points(
    metric: Any, path: str, index: int, resource: dict[str, Any], limit: int
) -> list[WirePoint | RecordError]:
    if not isinstance(metric, dict):
        return [_metric_error(index, path, "a metric must be an object", metric)]
    for camel, snake in _JSON_SHAPES:
        data = _jget(metric, camel, snake)
        if isinstance(data, dict):
            break
    else:
        return []
    items: list[WirePoint | RecordError] = []
    for p, raw in enumerate(_json_items(data, "dataPoints", "data_points")):
        point_path = f"{path}.{camel}.dataPoints[{p}]"
        if not isinstance(raw, dict):
            items.append(
                _metric_error(index + p, point_path, "a data point must be an object", raw)
            )
            continue
        if camel not in ("gauge", "sum") and _json_int(raw.get("count")) is None:
            message = "count must be an unsigned 64-bit integer"
            items.append(_metric_error(index + p, f"{point_path}.count", message, raw))
            continue
        items.append(
            WirePoint(
                index=index + p,
                path=point_path,
                name=str(metric.get("name") or ""),
                unit=str(metric.get("unit") or ""),
                time_ns=_json_int(_jget(raw, "timeUnixNano", "time_unix_nano")) or 0,
                samples=_json_samples(camel, raw),
                attributes=_json_attributes(raw.get("attributes"), limit, {}),
                resource=resource,
            )
        )
    return items


_JSON_SHAPES = (
    ("gauge", "gauge"),
    ("sum", "sum"),
    ("histogram", "histogram"),
    ("exponentialHistogram", "exponential_histogram"),
    ("summary", "summary"),
)


def _json_samples(shape: str, raw: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    if (_json_int(raw.get("flags")) or 0) & NO_RECORDED_VALUE:
        return ()
    if shape in ("gauge", "sum"):
        value = _jget(raw, "asDouble", "as_double")
        if value is None:
            value = _jget(raw, "asInt", "as_int")
        number = _float_or_none(value)
        return (("", number),) if number is not None else ()
    return _distribution_samples(raw.get("count"), _float_or_none(raw.get("sum")))


def _float_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _metric_error(index: int, path: str, message: str, raw: Any) -> RecordError:
    return RecordError(
        index=index, field=path, message=f"{path}: {message}", record_type="metric", raw=raw
    )


def map_points(
    points: list[WirePoint],
    errors: list[RecordError],
    *,
    session_attributes: tuple[str, ...] = DEFAULT_SESSION_ATTRIBUTES,
) -> ParseResult:
    names = tuple(dict.fromkeys((*session_attributes, *DEFAULT_SESSION_ATTRIBUTES)))
    records: list[tuple[int, Record]] = []
    errors = list(errors)
    for point in points:
        problem = _point_problem(point)
        if problem:
            errors.append(_metric_error(point.index, point.path, problem, _point_raw(point)))
            continue
        session_id = session_value((point.attributes, point.resource), names)
        for suffix, value in point.samples:
            records.append((point.index, _metric_record(point, suffix, value, session_id)))
    return ParseResult(records=records, errors=errors)


def _point_problem(point: WirePoint) -> str:
    if not point.name:
        return "metric has no name"
    if not 0 < point.time_ns < MAX_UNIX_NANOS:
        return "timeUnixNano must be unix nanoseconds after 1970 and before year 10000"
    if any(not math.isfinite(value) for _, value in point.samples):
        return "value must be a finite number"
    return ""


def _point_raw(point: WirePoint) -> dict[str, Any]:
    return {
        "name": point.name,
        "timeUnixNano": str(point.time_ns),
        "samples": [[suffix, str(value)] for suffix, value in point.samples],
        "attributes": point.attributes,
    }


def _metric_record(point: WirePoint, suffix: str, value: float, session_id: str) -> MetricRecord:
    name = f"{point.name}.{suffix}" if suffix else point.name
    attributes = dict(point.attributes)
    service = point.resource.get("service.name")
    if service is not None:
        attributes["resource.service.name"] = service
    dimensions = orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS, default=str)
    return MetricRecord(
        record_id=f"otlp-metric:{_digest(name, dimensions, str(point.time_ns), repr(value))}",
        name=name[:200],
        value=value,
        at=_at(point.time_ns),
        session_id=session_id,
        unit="" if suffix == "count" else point.unit[:50],
        attributes=attributes,
    )
