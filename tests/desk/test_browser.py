"""The /desk web page in a real headless Chromium (Debian's ``chromium``, driven by
Playwright; no browser is downloaded). Where either is missing these tests skip."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from common import codecs
from common.kafka import topic_name
from common.topics import CLASSIFIED, COMMANDS
from services.route.app import create_app
from services.route.settings import RouteSettings
from tests.desk.conftest import Desk, wait_for
from tests.desk.factories import MON_9, Timeline
from tests.route.factories import message
from tests.support import TopicReader

pytestmark = pytest.mark.kafka

CHROMIUM = os.environ.get("ADUAN_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("no chromium: run deploy/scripts/ensure-tools.sh chromium (Debian package)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(locale="id-ID", viewport={"width": 1280, "height": 800})
    p = await context.new_page()
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        await context.close()


async def sign_in(page: Any, desk: Desk, token: str) -> None:
    await page.goto(f"{desk.url}/desk")
    await page.fill("#token", token)
    await page.click("#masuk")
    await page.wait_for_selector("#who")


async def wait_for_queue(page: Any, desk: Desk, predicate: Any, timeout: float = 45.0) -> None:
    """Reload the queue until ``predicate(page)`` holds (route and the desk are asynchronous)."""

    async def holds() -> bool:
        await page.goto(f"{desk.url}/desk")
        return bool(await predicate(page))

    await wait_for(holds, timeout)


async def test_see_queue_open_complaint_resolve_and_it_leaves_the_open_queue(
    desk: Desk, page: Any
) -> None:
    """The whole loop with the real route processor: route routes a classified complaint,
    the agency resolves it on the page, route turns the command into `resolved`, the desk
    learns it and the complaint leaves the open queue."""
    route = create_app(
        desk.settings.model_copy(update={"rebalance_timeout_s": 4.0}),
        route_settings=RouteSettings(tick_interval_s=0.2),
    ).app
    await route.start()
    try:
        now = datetime.now(UTC)
        cm = message("b1", "instagram:browser-1", now, text="Lampu jalan mati di Jl. Kenanga")
        await desk.producer.send_and_wait(
            topic_name(CLASSIFIED, desk.settings), codecs.dumps(cm), key=b"instagram:browser-1"
        )
        await sign_in(page, desk, await desk.token("sby-public-works", label="Rina"))

        async def listed(p: Any) -> bool:
            return await p.locator("tr[data-id='instagram:b1']").count() == 1

        await wait_for_queue(page, desk, listed)
        row = page.locator("tr[data-id='instagram:b1']")
        assert "Lampu jalan mati" in await row.inner_text()
        assert "lagi" in await row.locator(".left").inner_text()  # time left, in Indonesian

        await row.locator("a.open").click()
        await page.wait_for_selector("#aduan")
        assert "Diteruskan ke" in await page.inner_text("#riwayat")
        page.once("dialog", lambda dialog: dialog.accept())  # "Tandai aduan ini selesai?"
        await page.fill("#resolve-reason", "Lampu sudah diganti petugas")
        await page.click("#selesaikan")
        await page.wait_for_selector("#terkirim")

        async def gone(p: Any) -> bool:
            return await p.locator("tr[data-id='instagram:b1']").count() == 0

        await wait_for_queue(page, desk, gone)
        await page.select_option("#status", "resolved")
        await page.click("button[type=submit]:has-text('Tampilkan')")
        await page.wait_for_selector("tr[data-id='instagram:b1']")
        await page.click("tr[data-id='instagram:b1'] a.open")
        history = await page.inner_text("#riwayat")
        assert "Selesaikan" in history and "Rina" in history and "Diselesaikan" in history
        assert "Lampu sudah diganti petugas" in history
    finally:
        await route.stop()


async def test_overdue_and_escalated_are_highlighted_and_the_screenshot_is_not_blank(
    desk: Desk, page: Any, tmp_path: Path
) -> None:
    from PIL import Image

    t = Timeline()
    t.complaint("instagram:late", MON_9, text="Sampah menumpuk tiga hari di pasar")
    t.tick("instagram:late", MON_9 + timedelta(hours=8))  # warning, overdue, escalation 1
    t.complaint("instagram:fresh", MON_9 + timedelta(hours=7), text="Got mampet di RT 3")
    await desk.publish(t.records)
    await desk.wait_events(*(r.event().event_id for r in t.records))
    desk.set_now(MON_9 + timedelta(hours=8, minutes=30))
    await sign_in(page, desk, await desk.token("sby-public-works"))
    late = page.locator("tr[data-id='instagram:m1']")
    fresh = page.locator("tr[data-id='instagram:m2']")
    assert await late.get_attribute("class") == "complaint overdue escalated"
    assert await fresh.get_attribute("class") == "complaint"
    assert "Terlambat" in await late.inner_text() and "Eskalasi 1" in await late.inner_text()
    background = await late.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(253, 232, 232)"
    # Queue order: nearest due first (the overdue one).
    ids = await page.locator("tr.complaint").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert ids == ["instagram:m1", "instagram:m2"]
    # Due times in the agency's zone (WIB).
    assert "WIB" in await late.inner_text()
    shot = await page.screenshot(full_page=True)
    (tmp_path / "desk.png").write_bytes(shot)
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 20) or []
    assert image.size[0] >= 1000 and len(colors) > 50  # text, table, badges: not a blank page
    dominant = max(colors)[0] / (image.size[0] * image.size[1])
    assert dominant < 0.95


async def test_reroute_from_the_page_writes_a_command_with_the_actor(desk: Desk, page: Any) -> None:
    t = Timeline()
    t.complaint("instagram:rr", text="Bau menyengat dari selokan")
    await desk.publish(t.records)
    await desk.wait_events(*(r.event().event_id for r in t.records))
    await sign_in(page, desk, await desk.token("sby-public-works", label="Dedi"))
    await page.click("tr[data-id='instagram:m1'] a.open")
    await page.select_option("#reroute-agency", "sby-environment")
    await page.fill("#reroute-reason", "bukan wewenang: urusan lingkungan hidup")
    await page.click("#alihkan")
    await page.wait_for_selector("#terkirim")
    async with TopicReader(desk.settings.bootstrap_servers,
                           topic_name(COMMANDS, desk.settings)) as reader:  # fmt: skip
        (record,) = await reader.wait_for(lambda rs: len(rs) >= 1)
    command = orjson.loads(record.value)
    assert command["type"] == "reroute" and command["agency_id"] == "sby-environment"
    assert command["actor"].startswith("desk:sby-public-works:Dedi#")
    assert command["reason"] == "bukan wewenang: urusan lingkungan hidup"


async def test_citizen_text_is_escaped_and_a_bad_token_is_refused(desk: Desk, page: Any) -> None:
    t = Timeline()
    t.complaint("instagram:xss", text='<img src=x onerror="document.title=1">jalan rusak')
    await desk.publish(t.records)
    await desk.wait_events(*(r.event().event_id for r in t.records))
    await page.goto(f"{desk.url}/desk")
    await page.fill("#token", "adn_" + "A" * 43)
    await page.click("#masuk")
    assert "Token tidak dikenal" in await page.inner_text(".error")
    await sign_in(page, desk, await desk.token("sby-public-works"))
    row = page.locator("tr[data-id='instagram:m1']")
    assert "<img src=x" in await row.inner_text()
    assert await row.locator("img").count() == 0 and await page.title() != "1"


async def test_a_form_without_the_session_csrf_value_is_refused(desk: Desk) -> None:
    import aiohttp

    t = Timeline()
    t.complaint("instagram:csrf")
    await desk.publish(t.records)
    await desk.wait_events(*(r.event().event_id for r in t.records))
    token = await desk.token("sby-public-works")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f"{desk.url}/desk/masuk", data={"token": token},
                                allow_redirects=False) as r:  # fmt: skip
            assert r.status == 303
        async with session.post(
            f"{desk.url}/desk/aduan/instagram:m1/resolve", data={"csrf": "forged"},
            allow_redirects=False,
        ) as r:  # fmt: skip
            assert r.status == 403
        async with session.get(f"{desk.url}/desk/aduan/instagram:m1") as r:
            assert r.status == 200  # signed in: only the forged form was refused
    async with TopicReader(desk.settings.bootstrap_servers,
                           topic_name(COMMANDS, desk.settings)) as reader:  # fmt: skip
        assert await reader.drain(quiet_s=0.5) == []


async def test_an_agency_in_another_time_zone_sees_its_own_time(desk: Desk, page: Any) -> None:
    t = Timeline()
    t.complaint("instagram:wita", agency_id="mks-public-works", region="73.71")
    await desk.publish(t.records)
    await desk.wait_events(*(r.event().event_id for r in t.records))
    await sign_in(page, desk, await desk.token("mks-public-works"))
    text = await page.locator("tr[data-id='instagram:m1']").inner_text()
    assert "WITA" in text and "WIB" not in text
