"""Delivery of one batch to POST /api/v1/ingest: retries with backoff, and reading the answer."""

from __future__ import annotations

import gzip
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import requests

from observatory_sdk.version import VERSION

logger = logging.getLogger("observatory_sdk")

# Transient by nature: a retry may succeed. Other 4xx answers mean the batch itself is wrong.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
MAX_LOGGED_RECORD_ERRORS = 20


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one batch: the server's counts, or why it was given up."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    is_failed: bool = False
    error: str = ""


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half of min(cap, base * 2**attempt) plus a random
    share of the other half, so clients that failed together do not retry together."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def batch_body(encoded_records: list[bytes]) -> bytes:
    """The JSON body {"records": [...]} from records already encoded as JSON."""
    return b'{"records":[' + b",".join(encoded_records) + b"]}"


def server_error(response: requests.Response) -> str:
    """The server's error message (with its field path) from a 4xx/5xx body, or the raw text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500] or response.reason or ""
    if not isinstance(data, dict) or "error" not in data:
        return json.dumps(data)[:500]
    field = data.get("field")
    return f"{data['error']} (field {field})" if field else str(data["error"])


def _retry_after(response: requests.Response | None) -> float:
    value = response.headers.get("Retry-After", "") if response is not None else ""
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0  # An HTTP-date is allowed too; the backoff delay covers that case.


class Transport:
    """Posts batch bodies for one client. Used from a single thread (the client's sender)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        use_gzip: bool,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.use_gzip = use_gzip
        self._rng = random.Random()
        self._http = requests.Session()
        self._http.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "User-Agent": f"agent-observatory-sdk/{VERSION}",
            }
        )

    def send(self, encoded_records: list[bytes]) -> BatchOutcome:
        """Send one batch, retrying transient failures; never raises for network or HTTP errors."""
        body = batch_body(encoded_records)
        headers = {}
        if self.use_gzip:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        response, last_error = self._post_with_retries(body, headers)
        if response is None or response.status_code in RETRYABLE_STATUSES:
            attempts = self.max_retries + 1
            message = f"gave up after {attempts} attempts: {last_error}"
            logger.error(
                "Observatory ingest: %d records not sent, %s", len(encoded_records), message
            )
            return BatchOutcome(is_failed=True, error=message)
        if response.status_code >= 300:
            message = f"HTTP {response.status_code}: {server_error(response)}"
            logger.error("Observatory ingest refused a batch (not retried): %s", message)
            return BatchOutcome(is_failed=True, error=message)
        return _accepted_outcome(response, len(encoded_records))

    def close(self) -> None:
        self._http.close()

    def _post_with_retries(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[requests.Response | None, str]:
        response: requests.Response | None = None
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = backoff_delay(
                    attempt - 1, base=self.backoff_base, cap=self.backoff_max, rng=self._rng
                )
                delay = max(delay, min(_retry_after(response), self.backoff_max))
                logger.info("Observatory ingest: retrying in %.2fs (%s)", delay, last_error)
                time.sleep(delay)
            try:
                response = self._http.post(
                    self.url, data=body, headers=headers, timeout=self.timeout
                )
            except RETRYABLE_ERRORS as exc:
                response, last_error = None, f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code not in RETRYABLE_STATUSES:
                return response, ""
            last_error = f"HTTP {response.status_code}: {server_error(response)}"
        return response, last_error


def _accepted_outcome(response: requests.Response, count: int) -> BatchOutcome:
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return BatchOutcome(accepted=count)
    _log_record_errors(data.get("results") or [])
    return BatchOutcome(
        accepted=int(data.get("accepted", 0)),
        duplicates=int(data.get("duplicates", 0)),
        rejected=int(data.get("rejected", 0)),
    )


def _log_record_errors(results: list[Any]) -> None:
    errors = [item for item in results if isinstance(item, dict) and item.get("status") == "error"]
    for item in errors[:MAX_LOGGED_RECORD_ERRORS]:
        logger.warning(
            "Observatory ingest rejected record %s (id %s) at %s: %s",
            item.get("index"),
            item.get("id"),
            item.get("field", "?"),
            item.get("error", ""),
        )
    if len(errors) > MAX_LOGGED_RECORD_ERRORS:
        logger.warning(
            "Observatory ingest rejected %d more records in the same batch",
            len(errors) - MAX_LOGGED_RECORD_ERRORS,
        )
