"""`?format=csv`: the CSV renderer of every list (api.views.ListView and FrameList stream their rows
themselves and use it only to be chosen)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer

from analytics.safe_csv import csv_rows


class CSVRenderer(BaseRenderer):
    """Selects CSV for `?format=csv` or `Accept: text/csv`.

    List views stream their rows themselves (no page, no cap). This render() only covers a
    Response that reaches it anyway: a list of flat objects becomes a header and rows.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        rows = data if isinstance(data, list) else [data]
        rows = [row for row in rows if isinstance(row, Mapping)]
        header = list(rows[0]) if rows else []
        return "".join(csv_rows(header, rows)).encode(self.charset)
