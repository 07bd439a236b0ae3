"""``python -m services.route`` ends with one line when faust crashes, instead of sitting
"recovering" (faust's app runs on after its table recovery crashed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from faust.exceptions import ConsistencyError
from mode import Service

from common.cli import OperatorError
from services.route.__main__ import until_stopped_or_crashed


async def test_a_crashed_recovery_ends_route_with_the_fix_for_a_reset_changelog() -> None:
    app, recovery = Service(), Service()
    stop = asyncio.Event()
    waiting = asyncio.create_task(
        until_stopped_or_crashed(stop, (app, recovery), Path("/data/route"), poll_s=0.01)
    )
    await asyncio.sleep(0)  # let it run one round with nothing crashed
    assert not waiting.done()
    await recovery.crash(
        ConsistencyError(
            "The persisted offset for changelog topic partition TP(topic='t', partition=1) "
            "is higher\nthan the last offset in that topic (highwater) (62 > -1)."
        )
    )
    with pytest.raises(OperatorError) as raised:
        await asyncio.wait_for(waiting, 5)
    line = str(raised.value)
    assert "\n" not in line
    assert "(62 > -1)" in line and "delete /data/route (ADUAN_ROUTE_DATA_DIR)" in line


async def test_any_other_crash_is_named_and_a_stop_returns_quietly() -> None:
    app = Service()
    await app.crash(RuntimeError("consumer thread died"))
    with pytest.raises(OperatorError, match="faust crashed: RuntimeError: consumer thread died"):
        await until_stopped_or_crashed(asyncio.Event(), (app,), Path("/d"), poll_s=0.01)
    stop = asyncio.Event()
    stop.set()
    await until_stopped_or_crashed(stop, (Service(),), Path("/d"), poll_s=0.01)
