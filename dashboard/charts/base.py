"""What every chart of the dashboard shares: colours, layout defaults, escaping and encoding.

Plotly renders hover text, tick labels and legend names as a small subset of HTML, so every string
that may come from an agent goes through `_text()` (html.escape) before it enters a figure. The page
receives `figure_data(fig)` (or `figure_json(data)`) through `json_script`, never as HTML.
"""

from __future__ import annotations

import html
import json
from typing import Any

import orjson
import pandas as pd
import plotly.graph_objects as go

COLORS = {
    "primary": "#3b6fd8",
    "secondary": "#8b5cf6",
    "error": "#dc2626",
    "muted": "#6b7280",
    "grid": "#e5e7eb",
    "text": "#1f2937",
}
# A span with no duration (still open, or a point event) is drawn this share of the axis wide.
MIN_BAR_SHARE = 0.004


def _text(value: object) -> str:
    return html.escape(str(value), quote=False)


def base_layout(**overrides: Any) -> dict[str, Any]:
    """Layout defaults shared by every chart; keyword arguments replace top-level keys."""
    layout: dict[str, Any] = {
        "height": 260,
        "margin": {"l": 48, "r": 16, "t": 8, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {
            "family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
            "size": 12,
            "color": COLORS["text"],
        },
        "xaxis": {"gridcolor": COLORS["grid"], "zeroline": False},
        "yaxis": {"gridcolor": COLORS["grid"], "zeroline": False, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": 1.12, "x": 0, "bgcolor": "rgba(0,0,0,0)"},
        "hovermode": "x unified",
        "hoverlabel": {"font": {"size": 12}},
        "bargap": 0.15,
    }
    layout.update(overrides)
    return layout


def figure_data(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON data, for `json_script` on the page."""
    data: dict[str, Any] = json.loads(fig.to_json())
    data["layout"].pop("template", None)
    return data


def figure_json(data: dict[str, Any]) -> str:
    """Figure data as JSON text (numpy arrays included, NaN as null), for `json_script_text`."""
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _times(frame: pd.DataFrame) -> list[str]:
    return [ts.isoformat() for ts in pd.to_datetime(frame["bucket"], utc=True)]


def _short(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
