"""Analytics charts: metric series and percentiles, resources, scores, anomalies, error clusters,
forecasts and cohorts."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.base import COLORS, _short, _text, _times, base_layout

SERIES_COLORS = (
    "#3b6fd8",
    "#8b5cf6",
    "#0d9488",
    "#f59e0b",
    "#dc2626",
    "#db2777",
    "#65a30d",
    "#0891b2",
)
MAX_SERIES = len(SERIES_COLORS)


def top_groups(series: pd.DataFrame, *, by: str = "count", limit: int = MAX_SERIES) -> list[str]:
    """The `limit` groups with the largest total `by`, largest first (ties by name)."""
    if len(series) == 0:
        return []
    totals = series.groupby("group")[by].sum().reset_index()
    totals = totals.sort_values([by, "group"], ascending=[False, True])
    return [str(group) for group in totals["group"].head(limit)]


def _values(frame: pd.DataFrame, column: str, scale: float = 1.0) -> list[float | None]:
    return [None if pd.isna(v) else round(float(v) * scale, 6) for v in frame[column]]


def series_chart(
    series: pd.DataFrame,
    column: str,
    *,
    y_title: str,
    hover: str = "%{y:,.2f}",
    bars: bool = False,
    scale: float = 1.0,
) -> go.Figure:
    """One line (or stacked bar) per group over time, for the top MAX_SERIES groups by calls.

    series: analytics.trends.trend_series rows (bucket, group, the metric columns)."""
    fig = go.Figure(layout=base_layout(barmode="stack" if bars else None))
    for i, group in enumerate(top_groups(series)):
        rows = series[series["group"] == group]
        name = _text(group) if group else "all"
        style = {"marker": {"color": SERIES_COLORS[i % MAX_SERIES]}, "name": name}
        template = f"{name}: {hover}<extra></extra>"
        if bars:
            fig.add_bar(
                x=_times(rows), y=_values(rows, column, scale), hovertemplate=template, **style
            )
        else:
            fig.add_scatter(
                x=_times(rows),
                y=_values(rows, column, scale),
                mode="lines+markers",
                connectgaps=False,
                line={"color": SERIES_COLORS[i % MAX_SERIES], "width": 2},
                hovertemplate=template,
                **style,
            )
    fig.update_layout(
        yaxis={"title": {"text": y_title}, "gridcolor": COLORS["grid"], "rangemode": "tozero"}
    )
    return fig


def latency_percentiles_chart(table: pd.DataFrame) -> go.Figure:
    """p50, p95 and p99 latency per group as grouped horizontal bars, slowest p95 on top.

    table: analytics.trends.merge_rollups rows with a `group` column."""
    table = table.sort_values("latency_p95_ms", ascending=False, na_position="last").head(15)
    names = [_text(group) or "(none)" for group in table["group"]]
    fig = go.Figure(
        layout=base_layout(
            height=max(180, 60 + 34 * len(names)),
            barmode="group",
            hovermode="closest",
            margin={"l": 8, "r": 16, "t": 28, "b": 36},
        )
    )
    for column, label, color in (
        ("latency_p50_ms", "p50", COLORS["primary"]),
        ("latency_p95_ms", "p95", COLORS["secondary"]),
        ("latency_p99_ms", "p99", "#f59e0b"),
    ):
        fig.add_bar(
            x=_values(table, column),
            y=names,
            name=label,
            orientation="h",
            marker={"color": color},
            hovertemplate=f"%{{y}} {label}: %{{x:,.0f}} ms<extra></extra>",
        )
    fig.update_layout(
        xaxis={"title": {"text": "ms"}, "gridcolor": COLORS["grid"], "type": "log"},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return fig


def resource_chart(samples: pd.DataFrame) -> go.Figure:
    """Mean of each metric sample name per bucket (memory, CPU, custom counters), one line each.

    samples: analytics.trends.resource_trend rows (bucket, name, mean, max, samples)."""
    frame = samples.rename(columns={"name": "group", "samples": "count"})
    return series_chart(frame, "mean", y_title="mean value", hover="%{y:,.1f}")


def score_chart(trend: pd.DataFrame) -> go.Figure:
    """Mean score of each score name per bucket, one line each (booleans: the share of yes).

    trend: analytics.scores.score_trend rows (name, bucket, mean, count)."""
    frame = trend.rename(columns={"name": "group"})
    return series_chart(frame, "mean", y_title="mean score", hover="%{y:,.3g}")


STATUS_COLORS = {"open": COLORS["error"], "acknowledged": "#f59e0b", "resolved": COLORS["muted"]}


def anomaly_timeline_chart(anomalies: pd.DataFrame) -> go.Figure:
    """Each anomaly as a point: when its window started (x), its metric (y), its score (size).

    anomalies: columns window_start, metric, score, status, explanation."""
    fig = go.Figure(
        layout=base_layout(
            hovermode="closest", height=220, margin={"l": 120, "r": 16, "t": 8, "b": 36}
        )
    )
    for status, color in STATUS_COLORS.items():
        rows = anomalies[anomalies["status"] == status]
        if len(rows) == 0:
            continue
        fig.add_scatter(
            x=[pd.Timestamp(t).isoformat() for t in rows["window_start"]],
            y=[_text(m) for m in rows["metric"]],
            mode="markers",
            name=status,
            marker={
                "color": color,
                "size": [min(8 + float(s), 30) for s in rows["score"]],
                "opacity": 0.8,
            },
            customdata=[[_text(e)] for e in rows["explanation"]],
            hovertemplate="%{customdata[0]}<extra></extra>",
        )
    fig.update_layout(yaxis={"type": "category", "gridcolor": COLORS["grid"]})
    return fig


def cluster_chart(clusters: pd.DataFrame) -> go.Figure:
    """The biggest error clusters as horizontal bars (count), labelled by their pattern.

    clusters: columns pattern, error_type, count."""
    top = clusters.sort_values("count", ascending=False).head(12)
    labels = [
        _short(f"{t}: {p}" if t else str(p), 60)
        for t, p in zip(top["error_type"], top["pattern"], strict=True)
    ]
    fig = go.Figure(
        layout=base_layout(
            height=max(160, 40 + 28 * len(labels)),
            hovermode="closest",
            margin={"l": 8, "r": 16, "t": 8, "b": 36},
        )
    )
    fig.add_bar(
        x=[int(c) for c in top["count"]],
        y=[_text(label) for label in labels],
        orientation="h",
        marker={"color": COLORS["error"]},
        hovertemplate="%{y}<br>%{x:,} errors<extra></extra>",
    )
    fig.update_layout(yaxis={"autorange": "reversed", "automargin": True})
    return fig


def forecast_chart(frame: pd.DataFrame, *, y_title: str) -> go.Figure:
    """Actual daily values, the forecast and its interval as a shaded band.

    frame: analytics.cohorts.forecast_daily rows (day, kind, value, low, high)."""
    actual = frame[frame["kind"] == "actual"]
    forecast = frame[frame["kind"] == "forecast"]
    days = [pd.Timestamp(d).isoformat() for d in forecast["day"]]
    fig = go.Figure(layout=base_layout())
    fig.add_scatter(
        x=days + days[::-1],
        y=_values(forecast, "high") + _values(forecast, "low")[::-1],
        fill="toself",
        fillcolor="rgba(139, 92, 246, 0.18)",
        line={"width": 0},
        hoverinfo="skip",
        name="80 % interval",
    )
    fig.add_scatter(
        x=[pd.Timestamp(d).isoformat() for d in actual["day"]],
        y=_values(actual, "value"),
        mode="lines+markers",
        name="actual",
        line={"color": COLORS["primary"], "width": 2},
        marker={"size": 4},
    )
    fig.add_scatter(
        x=days,
        y=_values(forecast, "value"),
        mode="lines+markers",
        name="forecast",
        line={"color": COLORS["secondary"], "width": 2, "dash": "dash"},
        marker={"size": 4},
    )
    fig.update_layout(
        yaxis={"title": {"text": y_title}, "gridcolor": COLORS["grid"], "rangemode": "tozero"}
    )
    return fig


def cohort_chart(differences: pd.DataFrame) -> go.Figure:
    """Relative difference (b vs a) per metric; significant differences in full colour.

    differences: analytics.cohorts.CohortDifference fields as columns."""
    rows = differences[differences["relative"].notna()]
    fig = go.Figure(
        layout=base_layout(hovermode="closest", margin={"l": 8, "r": 16, "t": 8, "b": 36})
    )
    fig.add_bar(
        x=[round(float(v) * 100, 2) for v in rows["relative"]],
        y=[_text(label) for label in rows["label"]],
        orientation="h",
        marker={
            "color": [COLORS["secondary"] if s else "#c4b5fd" for s in rows["is_significant"]],
        },
        customdata=[[f"{p:.3f}" if p == p else "n/a"] for p in rows["p_value"]],
        hovertemplate="%{y}: %{x:+.1f} %<br>p = %{customdata[0]}<extra></extra>",
    )
    fig.update_layout(
        xaxis={"title": {"text": "b vs a (%)"}, "gridcolor": COLORS["grid"], "zeroline": True},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return fig
