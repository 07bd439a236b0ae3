"""The demo's live tail prints one readable line per event, in the agency's time zone."""

from pathlib import Path

from common.registry import load_registry
from services.demo.tail import format_event

REGISTRY = load_registry(Path(__file__).resolve().parents[1] / "deploy/config/registry.yaml")


def test_routed_line_has_agency_category_local_due_time_and_excerpt() -> None:
    line = format_event(
        "aduan.routes.v1",
        {
            "event_type": "routed",
            "agency_id": "mks-public-works",  # a WITA (UTC+8) agency
            "category": "roads",
            "due": {"first_response": "2026-11-23T01:00:00+00:00"},
            "text_excerpt": "Jalan rusak\nparah " + "x" * 100,
        },
        REGISTRY,
    )
    assert line.startswith("ROUTED")
    assert "mks-public-works" in line and "roads" in line
    assert "23 Nov 09:00 WITA" in line
    assert "\n" not in line and line.endswith('…"')


def test_sla_line_shows_when_it_happened_and_the_due_time() -> None:
    line = format_event(
        "aduan.sla.v1",
        {
            "event_type": "overdue",
            "agency_id": "sby-public-works",
            "clock": "first_response",
            "occurred_at": "2026-11-23T02:00:00+00:00",
            "due_at": "2026-11-23T01:59:00+00:00",
            "complaint_id": "instagram:42",
        },
        REGISTRY,
    )
    assert line.startswith("OVERDUE")
    assert "at  23 Nov 09:00 WIB (due 23 Nov 08:59 WIB)" in line
    assert line.endswith("instagram:42")


async def test_demo_sinks_point_notify_at_local_receivers(tmp_path: Path) -> None:
    """``make run``: notify's webhooks and Telegram go to the local HTTP sink, e-mail to the
    SMTP sink, and each delivery is printed as a NOTIFIED line."""
    import contextlib
    import io

    import aiohttp
    import yaml

    from services.demo.sinks import DemoSinks

    sinks = DemoSinks()
    env = await sinks.start(
        Path(__file__).resolve().parents[1] / "deploy/config/registry.yaml", tmp_path
    )
    try:
        registry = load_registry(Path(env["ADUAN_REGISTRY_FILE"]))
        (hook,) = registry.webhooks
        assert hook.url.startswith(f"http://127.0.0.1:{sinks.http_port}/")
        assert yaml.safe_load(Path(env["ADUAN_REGISTRY_FILE"]).read_text())["agencies"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            async with aiohttp.ClientSession() as http:
                body = b'{"notice": {"event_type": "routed"}, "tracking_number": "ADU-X"}'
                async with http.post(hook.url, data=body) as r:
                    assert r.status == 204
        assert out.getvalue().startswith("NOTIFIED  webhook   lapor-bridge")
        assert env["ADUAN_NOTIFY_SMTP_PORT"] == str(sinks.smtp_port)
    finally:
        await sinks.stop()


def test_with_the_embedded_broker_route_gets_a_table_directory_of_its_own_per_run() -> None:
    """The second ``make run`` used to find the first run's RocksDB table ahead of the new
    broker's empty changelog, and faust refused to start route."""
    import contextlib

    from services.demo.__main__ import fresh_route_state

    env: dict[str, str] = {}
    with contextlib.ExitStack() as first:
        path = fresh_route_state(first, env, embedded_broker=True)
        assert path is not None and path.is_dir() and env["ADUAN_ROUTE_DATA_DIR"] == str(path)
        (path / "route-data").mkdir()  # what faust leaves
    assert not path.exists()  # gone with the run
    with contextlib.ExitStack() as second:
        again = fresh_route_state(second, {}, embedded_broker=True)
        assert again is not None and again != path and not any(again.iterdir())
    chosen = {"ADUAN_ROUTE_DATA_DIR": "/var/lib/aduan/route"}
    cluster: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        assert fresh_route_state(stack, chosen, embedded_broker=True) is None
        assert fresh_route_state(stack, cluster, embedded_broker=False) is None
    assert chosen == {"ADUAN_ROUTE_DATA_DIR": "/var/lib/aduan/route"} and cluster == {}
