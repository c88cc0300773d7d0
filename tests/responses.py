"""Reading test-client responses in a way the type checker follows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from django.http import StreamingHttpResponse


def streamed(response: object) -> bytes:
    """The whole body of a streamed response (the CSV exports), as bytes.

    The test clients type their answers as plain responses; this checks that the view streamed
    and joins the chunks, which the test client always gives as a synchronous iterator of bytes.
    """
    assert isinstance(response, StreamingHttpResponse), type(response)
    return b"".join(cast(Iterable[bytes], response.streaming_content))
