"""Recording workflow runs and their steps as context managers::

    with client.workflow(session_id, "research report") as run:
        with run.step("plan", agent_id="planner") as plan:
            ...
        with run.step("write", agent_id="writer", depends_on=[plan]) as write:
            write.result = "3 pages"

A block that raises ends its step (and the run) as failed, and the exception goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from observatory_sdk import records
from observatory_sdk.records import Record


class WorkflowRun:
    """One run of a named workflow; `step()` opens its steps. Records workflow.start on enter
    and workflow.end (success, or fail when the block raises) on exit."""

    def __init__(
        self,
        emit: Callable[[Record], None],
        session_id: str,
        name: str,
        *,
        workflow_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.name = name
        self.workflow_id = workflow_id or records.new_id()
        self.result = ""
        self.status = "success"
        self._emit = emit
        self._metadata = metadata

    def __enter__(self) -> WorkflowRun:
        self._emit(
            records.workflow_start_record(
                self.session_id, self.workflow_id, name=self.name, metadata=self._metadata
            )
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status = "fail" if exc_type is not None else self.status
        summary = self.result or (f"{exc_type.__qualname__}: {exc}" if exc_type else "")
        self._emit(
            records.workflow_end_record(
                self.session_id, self.workflow_id, status=status, result_summary=summary
            )
        )

    def step(
        self,
        name: str,
        *,
        agent_id: str = "",
        depends_on: Sequence[StepRun | str] = (),
        step_id: str | None = None,
    ) -> StepRun:
        """A step of this run, run by `agent_id`, after the steps (or step ids) it waited for."""
        return StepRun(self, name, agent_id=agent_id, depends_on=depends_on, step_id=step_id)


class StepRun:
    """A timed step; set `result` (a short summary) before the block ends."""

    def __init__(
        self,
        run: WorkflowRun,
        name: str,
        *,
        agent_id: str,
        depends_on: Sequence[StepRun | str],
        step_id: str | None,
    ) -> None:
        self.run = run
        self.name = name
        self.step_id = step_id or records.new_id()
        self.agent_id = agent_id
        self.depends_on = [d.step_id if isinstance(d, StepRun) else d for d in depends_on]
        self.result = ""
        self.status = "ok"

    def __enter__(self) -> StepRun:
        self.run._emit(
            records.step_start_record(
                self.run.session_id,
                self.run.workflow_id,
                self.step_id,
                name=self.name,
                agent_id=self.agent_id,
                depends_on=self.depends_on,
            )
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failed = exc_type is not None
        self.run._emit(
            records.step_end_record(
                self.run.session_id,
                self.run.workflow_id,
                self.step_id,
                status="error" if failed else self.status,
                result_summary=self.result,
                error_type=exc_type.__qualname__ if exc_type else "",
                error_message=str(exc) if failed else "",
            )
        )
