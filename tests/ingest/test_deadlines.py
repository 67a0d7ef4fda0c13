"""Deadlines: one sweeper cuts the waits that outlive their timeout, and only those."""

from __future__ import annotations

import asyncio
import time

import pytest

from zoom_qss_exporter.ingest.deadlines import DeadlineExceeded, Deadlines


def test_a_wait_within_its_timeout_returns_its_value() -> None:
    deadlines = Deadlines(5.0)

    async def quick() -> str:
        await asyncio.sleep(0)
        return "body"

    async def main() -> str:
        return await deadlines.run(quick)

    assert asyncio.run(main()) == "body"
    assert not deadlines._waiting and not deadlines._expired


def test_a_wait_past_its_timeout_is_cut_within_an_interval() -> None:
    deadlines = Deadlines(0.2)  # swept every 0.05 s

    async def main() -> float:
        never = asyncio.Event()
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await deadlines.run(never.wait)
        return time.monotonic() - started

    waited = asyncio.run(main())
    assert 0.2 <= waited < 2.0  # never early; late by an interval, plus slack for a busy CI
    assert not deadlines._waiting and not deadlines._expired


def test_only_the_late_waits_are_cut() -> None:
    deadlines = Deadlines(0.2)

    async def main() -> list[str]:
        never = asyncio.Event()
        soon = asyncio.Event()

        async def finishes() -> str:
            await soon.wait()
            return "done"

        async def outcome(wait: asyncio.Task[str]) -> str:
            try:
                return await wait
            except DeadlineExceeded:
                return "cut"

        async def never_done() -> str:
            await never.wait()
            return "unreachable"

        tasks = [asyncio.create_task(deadlines.run(f)) for f in (finishes, never_done, finishes)]
        await asyncio.sleep(0)
        soon.set()
        return [await outcome(task) for task in tasks]

    assert asyncio.run(main()) == ["done", "cut", "done"]


def test_somebody_elses_cancellation_is_not_turned_into_a_deadline() -> None:
    deadlines = Deadlines(30.0)

    async def main() -> None:
        never = asyncio.Event()
        task = asyncio.create_task(deadlines.run(never.wait))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not deadlines._waiting and not deadlines._expired
