"""Agents by name (one row per name over the range) and the per-session instances behind them."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from analytics import queries
from api import filters, serializers
from api.params import time_range
from api.scope import project_of, visible_projects
from api.views import FrameList, ListView


@extend_schema(
    parameters=[
        OpenApiParameter("project", str, description="Project slug (needed with several)."),
        OpenApiParameter("days", int, description="Range back from now (default 7)."),
        OpenApiParameter("since", str),
        OpenApiParameter("until", str),
        OpenApiParameter("name", str, description="Only this agent name."),
    ],
    responses=serializers.AgentNameSerializer(many=True),
)
class AgentNameList(FrameList):
    """One row per agent name across the sessions of the range (sessions that started in it):
    calls, errors, cost, tokens, p95 latency, messages sent and failed, and calls per day. Read
    from the stored rollups, so the last minutes appear after the next refresh. The instances
    (one per agent per session) are at /api/v1/agent-instances/."""

    serializer_class = serializers.AgentNameSerializer
    csv_filename = "agents.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        since, until = time_range(request, now=timezone.now())
        name = request.query_params.get("name") or None
        return queries.agent_name_table(project_of(request), since=since, until=until, name=name)


class AgentInstanceList(ListView):
    """Agents as they lived in one session each (what /api/v1/agents/ folds by name)."""

    serializer_class = serializers.AgentSerializer
    filterset_class = filters.AgentFilter
    csv_filename = "agent-instances.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.agents_for_projects(visible_projects(self.request))
