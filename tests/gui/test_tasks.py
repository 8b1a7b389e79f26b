"""The task runner's named tasks: a new task under a name stops the one before it, its own way if it has one."""
from __future__ import annotations

import asyncio

from gui.tasks import TaskRunner


def test_a_new_task_under_a_name_stops_the_previous_one_with_its_own_stop():
    async def scenario():
        runner = TaskRunner()
        stopped = asyncio.Event()
        first = runner.start("answer", stopped.wait(), stop=stopped.set)  # ends by itself once told to stop
        await asyncio.sleep(0)
        second = runner.start("answer", asyncio.sleep(0, "second"))
        assert runner.get("answer") is second
        await first  # not cancelled: it was stopped through its own stop and ended normally
        return first.cancelled(), await second

    assert asyncio.run(scenario()) == (False, "second")


def test_a_task_without_its_own_stop_is_cancelled_and_stop_returns_it_while_it_ends():
    async def scenario():
        runner = TaskRunner()
        task = runner.start("ingest", asyncio.Event().wait())
        await asyncio.sleep(0)
        assert runner.stop("ingest") is task
        await asyncio.gather(task, return_exceptions=True)
        return task.cancelled(), runner.stop("ingest"), runner.running("ingest")

    assert asyncio.run(scenario()) == (True, None, False)
