"""The forged-delivery matrix, against the live ingest on the real broker.

For every platform, every way an attacker with nothing but the public URL (or with one
sender's own secret) could try to get a delivery in: a missing, empty, wrong, truncated,
upper-cased, SHA-1, base64-instead-of-hex (and back) signature; a signature over the
re-serialised JSON or over another body; another app's or sender's secret; a signature
obtained from the X CRC endpoint; plus Meta's GET verification and X CRC misuse. Each case
asserts the refusal (status and error) **and** that nothing reached any topic: after the
answer, the watcher waits for two complete fetches of every partition of every topic
(the second one sent after the answer) and requires that no record arrived.

The registry here has two Meta apps, two X apps and two generic senders, so "another
secret" is a real, configured secret, not a random one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from common.kafka import topic_name
from common.settings import Settings
from common.topics import CATALOG
from services.ingest import app as ingest_app
from services.ingest.signatures import generic_signature, meta_signature, x_signature
from tests.ingest.helpers import FIXTURES, ROOT, fixture

pytestmark = pytest.mark.kafka

SECRETS = {
    "ADUAN_META_APP_SECRET": "meta-app-a-secret",
    "ADUAN_META_VERIFY_TOKEN": "verify-a",
    "ADUAN_META_APP_B_SECRET": "meta-app-b-secret",
    "ADUAN_META_APP_B_VERIFY": "verify-b",
    "ADUAN_X_CONSUMER_SECRET": "x-app-1-secret",
    "ADUAN_X2_CONSUMER_SECRET": "x-app-2-secret",
    "ADUAN_GENERIC_WEB_SECRET": "generic-web-secret",
    "ADUAN_GENERIC_LAPOR_SECRET": "generic-lapor-secret",
}
META_A, META_B = SECRETS["ADUAN_META_APP_SECRET"], SECRETS["ADUAN_META_APP_B_SECRET"]
X1, X2 = SECRETS["ADUAN_X_CONSUMER_SECRET"], SECRETS["ADUAN_X2_CONSUMER_SECRET"]
WEB, LAPOR = SECRETS["ADUAN_GENERIC_WEB_SECRET"], SECRETS["ADUAN_GENERIC_LAPOR_SECRET"]
# URL labels: app B and X app 2 set `app`, the others use their secret's variable name.
LABEL_A, LABEL_B = "aduan-meta-app-secret", "kominfo-b"
LABEL_X1, LABEL_X2 = "aduan-x-consumer-secret", "x-kedua"
CRC_TOKEN = base64.b64encode(hashlib.sha256(b"a token X would send").digest()).decode()


def _registry(path: Path) -> Path:
    """The demo registry plus a second Meta app (B) and a second X app with accounts."""
    doc = yaml.safe_load((ROOT / "deploy" / "config" / "registry.yaml").read_text())
    b = {"app_secret_env": "ADUAN_META_APP_B_SECRET", "verify_token_env": "ADUAN_META_APP_B_VERIFY"}
    mks = {"agency_id": "mks-public-works"}
    doc["accounts"] += [
        {"platform": "instagram", "platform_id": "17841400000000077", "app": LABEL_B, **mks, **b},
        {"platform": "facebook", "platform_id": "100000000000077", "app": LABEL_B, **mks, **b},
        {"platform": "whatsapp", "platform_id": "106540352200077", "app": LABEL_B, **mks, **b},
        {
            "platform": "x",
            "platform_id": "1500000000000000077",
            "app": LABEL_X2,
            "app_secret_env": "ADUAN_X2_CONSUMER_SECRET",
            **mks,
        },
    ]
    out = path / "registry.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


# --- the watcher: nothing on any topic -----------------------------------------------------


class Watch:
    """Every partition of every topic of the test's prefix, read from the beginning."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        self.topics = topics
        self.records: list[Any] = []

    async def start(self) -> None:
        await self.consumer.start()
        partitions = []
        for topic in self.topics:
            parts = self.consumer.partitions_for_topic(topic)
            while not parts:
                await self.consumer._client.force_metadata_update()  # noqa: SLF001
                parts = self.consumer.partitions_for_topic(topic)
            partitions += [TopicPartition(topic, p) for p in parts]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning()
        self.partitions = partitions

    async def stop(self) -> None:
        await self.consumer.stop()

    async def _poll(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=50)
        for recs in batches.values():
            self.records.extend(recs)

    async def written_since(self, since_ms: int, timeout: float = 20.0) -> list[Any]:
        """Records that arrived, once every partition had a fetch *sent* after ``since_ms``
        (two fetches completed after it: the fetcher sends the next one after handling the
        previous answer) and the consumer stands at the high-water mark."""
        before = len(self.records)
        deadline = time.monotonic() + timeout
        first: dict[TopicPartition, int] = {}
        while True:
            await self._poll()
            done = True
            for tp in self.partitions:
                stamp = self.consumer.last_poll_timestamp(tp)
                if stamp is None or stamp <= since_ms:
                    done = False
                    continue
                first.setdefault(tp, stamp)
                if stamp <= first[tp] or await self.consumer.position(tp) < (
                    self.consumer.highwater(tp) or 0
                ):
                    done = False
            if done:
                return self.records[before:]
            assert time.monotonic() < deadline, "the watcher did not catch up"


# --- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    expect: int
    error: str | None = None  # expected "error" in a JSON answer
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    sign: Callable[[int], dict[str, str]] | None = None  # more headers, made at sending time


def _hex_sha1(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def _b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.digest(secret.encode(), body, hashlib.sha256)).decode()


def _hex(secret: str, body: bytes) -> str:
    return hmac.digest(secret.encode(), body, hashlib.sha256).hex()


def _reserialised(body: bytes) -> bytes:
    """The same JSON document, serialised again (compact, different bytes)."""
    again = orjson.dumps(orjson.loads(body))
    assert again != body
    return again


def _meta_cases(platform: str, name: str, other: str) -> Iterator[Case]:
    body, other_body = fixture(name), fixture(other)
    path = f"/webhooks/{platform}"
    h = "X-Hub-Signature-256"
    good = meta_signature(META_A, body)

    def case(id_: str, headers: dict[str, str], data: bytes = body, **kw: Any) -> Case:
        return Case(
            f"{platform}-{id_}",
            "POST",
            kw.pop("path", path),
            kw.pop("expect", 403),
            kw.pop("error", "forged"),
            data,
            headers,
            **kw,
        )

    yield case("missing", {})
    yield case("empty", {h: ""})
    yield case("prefix-only", {h: "sha256="})
    yield case("wrong-secret", {h: meta_signature("not-the-secret", body)})
    yield case("truncated", {h: good[:-2]})
    yield case("truncated-half", {h: good[: len("sha256=") + 32]})
    yield case("upper-case-hex", {h: "sha256=" + _hex(META_A, body).upper()})
    yield case("upper-case-prefix", {h: "SHA256=" + _hex(META_A, body)})
    yield case("sha1-old-header", {"X-Hub-Signature": "sha1=" + _hex_sha1(META_A, body)})
    yield case("sha1-in-sha256-header", {h: "sha1=" + _hex_sha1(META_A, body)})
    yield case("base64-not-hex", {h: "sha256=" + _b64(META_A, body)})
    yield case("resigned-reserialised", {h: good}, _reserialised(body))
    yield case("signed-reserialised", {h: meta_signature(META_A, _reserialised(body))})
    yield case("another-body", {h: meta_signature(META_A, other_body)})
    yield case("trailing-newline", {h: good}, body + b"\n")
    yield case("two-signatures", {h: f"{good},{good}"})
    yield case("verify-token-as-key", {h: meta_signature(SECRETS["ADUAN_META_VERIFY_TOKEN"], body)})
    yield case("x-secret-meta-format", {h: meta_signature(X1, body)})
    yield case("x-crc-derived", {h: x_signature(X1, CRC_TOKEN.encode())})
    yield case("other-app-secret", {h: meta_signature(META_B, body)}, error="foreign_account")
    yield case("other-app-url", {h: good}, path=f"{path}/{LABEL_B}")
    yield case("unknown-app-url", {h: good}, path=f"{path}/no-such-app")


def _x_cases(name: str, other: str) -> Iterator[Case]:
    body, other_body = fixture(name), fixture(other)
    h = "x-twitter-webhooks-signature"
    good = x_signature(X1, body)
    tag = name.removesuffix(".json")

    def case(id_: str, headers: dict[str, str], data: bytes = body, **kw: Any) -> Case:
        return Case(
            f"{tag}-{id_}",
            "POST",
            kw.pop("path", "/webhooks/x"),
            403,
            kw.pop("error", "forged"),
            data,
            headers,
        )

    yield case("missing", {})
    yield case("empty", {h: ""})
    yield case("wrong-secret", {h: x_signature("not-the-secret", body)})
    yield case("truncated", {h: good[:-4]})
    yield case("hex-not-base64", {h: "sha256=" + _hex(X1, body)})
    yield case("upper-case-prefix", {h: "SHA256=" + _b64(X1, body)})
    yield case("case-flipped-base64", {h: "sha256=" + _b64(X1, body).swapcase()})
    yield case(
        "sha1", {h: "sha1=" + base64.b64encode(hmac.digest(X1.encode(), body, "sha1")).decode()}
    )
    yield case("resigned-reserialised", {h: good}, _reserialised(body))
    yield case("signed-reserialised", {h: x_signature(X1, _reserialised(body))})
    yield case("another-body", {h: x_signature(X1, other_body)})
    yield case("trailing-newline", {h: good}, body + b"\n")
    yield case("crc-derived", {h: x_signature(X1, CRC_TOKEN.encode())})
    yield case("meta-secret", {h: x_signature(META_A, body)})
    yield case("other-app-secret", {h: x_signature(X2, body)}, error="foreign_account")
    yield case("other-app-url", {h: good}, path=f"/webhooks/x/{LABEL_X2}")


def _generic_cases() -> Iterator[Case]:
    """Generic deliveries carry a signed timestamp that must be fresh when it arrives, so
    their headers are made when the case is sent (``Case.sign``), not when the module is
    collected: a slow suite reached these cases more than the replay window after
    collection, and the signed ones were then refused as ``replayed``."""
    body, other_body = fixture("generic_reports.json"), fixture("instagram_comments.json")
    Sign = Callable[[int], dict[str, str]]

    def signed(secret: str, data: bytes = body, skew: int = 0) -> Sign:
        def sign(now: int) -> dict[str, str]:
            ts = str(now + skew)
            return {
                "X-Aduan-Timestamp": ts,
                "X-Aduan-Signature": generic_signature(secret, ts, data),
            }

        return sign

    def good(change: Callable[[int, dict[str, str]], dict[str, str]]) -> Sign:
        """The genuine headers at ``now``, changed by ``change(now, headers)``."""
        return lambda now: {**signed(WEB)(now), **change(now, signed(WEB)(now))}

    def case(id_: str, sign: Sign, data: bytes = body, **kw: Any) -> Case:
        sender = kw.pop("sender", {"X-Aduan-Account": "web-sby"})
        return Case(
            f"generic-{id_}",
            "POST",
            kw.pop("path", "/webhooks/generic"),
            403,
            kw.pop("error", "forged"),
            data,
            sender,
            sign=sign,
        )

    yield case("missing", lambda now: {})
    yield case(
        "missing-timestamp",
        lambda now: {"X-Aduan-Signature": signed(WEB)(now)["X-Aduan-Signature"]},
    )
    yield case("missing-signature", lambda now: {"X-Aduan-Timestamp": str(now)})
    yield case("wrong-secret", signed("not-the-secret"))
    yield case("stale", signed(WEB, skew=-3600), error="replayed")
    yield case("future", signed(WEB, skew=3600), error="replayed")
    yield case(
        "body-only",
        lambda now: {
            "X-Aduan-Timestamp": str(now),
            "X-Aduan-Signature": "sha256=" + _hex(WEB, body),
        },
    )
    yield case("timestamp-changed", good(lambda now, g: {"X-Aduan-Timestamp": str(now - 1)}))
    yield case("truncated", good(lambda now, g: {"X-Aduan-Signature": g["X-Aduan-Signature"][:-2]}))
    yield case(
        "upper-case-hex",
        good(lambda now, g: {"X-Aduan-Signature": g["X-Aduan-Signature"].upper()}),
    )
    yield case(
        "base64-not-hex",
        good(
            lambda now, g: {"X-Aduan-Signature": "sha256=" + _b64(WEB, f"{now}.".encode() + body)}
        ),
    )
    yield case(
        "sha1",
        good(
            lambda now, g: {
                "X-Aduan-Signature": "sha1=" + _hex_sha1(WEB, f"{now}.".encode() + body)
            }
        ),
    )
    yield case("resigned-reserialised", signed(WEB), _reserialised(body))
    yield case("another-body", signed(WEB, other_body))
    yield case("other-sender-secret", signed(LAPOR))
    yield case(
        "other-sender-header",
        signed(LAPOR),
        sender={"X-Aduan-Account": "lapor-sby"},
        error="foreign_account",
    )
    yield case(
        "other-sender-url",
        signed(LAPOR),
        sender={},
        path="/webhooks/generic/lapor-sby",
        error="foreign_account",
    )
    yield case("no-sender", signed(WEB), sender={})
    yield case("unknown-sender", signed(WEB), sender={"X-Aduan-Account": "no-such-sender"})
    yield case(
        "meta-format", lambda now: {"X-Hub-Signature-256": meta_signature(WEB, body)}, sender={}
    )


def _get_cases() -> Iterator[Case]:
    ok = {"hub.mode": "subscribe", "hub.verify_token": "verify-a", "hub.challenge": "1158201444"}
    x_body = fixture("x_account_activity.json").decode()
    generic_body = fixture("generic_reports.json").decode()
    x1 = f"/webhooks/x/{LABEL_X1}"

    def get(id_: str, path: str, expect: int, error: str | None, **params: str) -> Case:
        return Case(id_, "GET", path, expect, error, params=params)

    yield get(
        "meta-get-wrong-token",
        "/webhooks/instagram",
        403,
        None,
        **{**ok, "hub.verify_token": "guess"},
    )
    yield get(
        "meta-get-no-token",
        "/webhooks/facebook",
        403,
        None,
        **{"hub.mode": "subscribe", "hub.challenge": "1"},
    )
    yield get(
        "meta-get-no-mode", "/webhooks/whatsapp", 403, None, **{**ok, "hub.mode": "unsubscribe"}
    )
    yield get(
        "meta-get-json-challenge",
        "/webhooks/instagram",
        400,
        "bad_challenge",
        **{**ok, "hub.challenge": x_body},
    )
    yield get(
        "meta-get-script-challenge",
        "/webhooks/facebook",
        400,
        "bad_challenge",
        **{**ok, "hub.challenge": "<script>x</script>"},
    )
    yield get(
        "meta-get-other-app-token",
        f"/webhooks/instagram/{LABEL_A}",
        403,
        None,
        **{**ok, "hub.verify_token": "verify-b"},
    )
    yield get("x-crc-json-body", x1, 400, "bad_crc_token", crc_token=x_body)
    yield get("x-crc-generic-body", x1, 400, "bad_crc_token", crc_token=generic_body)
    yield get("x-crc-too-long", x1, 400, "bad_crc_token", crc_token="A" * 300)
    yield get("x-crc-quotes", x1, 400, "bad_crc_token", crc_token='abc"def{}ghi')
    yield get("x-crc-empty", x1, 400, "bad_crc_token", crc_token="")
    yield get("x-crc-which-app", "/webhooks/x", 400, "name_the_app", crc_token=CRC_TOKEN)
    yield get("x-crc-unknown-app", "/webhooks/x/no-such-app", 403, None, crc_token=CRC_TOKEN)
    yield get("x-crc-on-meta-path", "/webhooks/instagram", 403, None, crc_token=CRC_TOKEN)


def cases() -> list[Case]:
    out = [
        *_meta_cases("instagram", "instagram_comments.json", "instagram_messaging.json"),
        *_meta_cases("facebook", "facebook_feed.json", "facebook_messenger.json"),
        *_meta_cases("whatsapp", "whatsapp_messages.json", "whatsapp_statuses.json"),
        *_x_cases("x_account_activity.json", "x_direct_messages.json"),
        *_x_cases("x_activity_api.json", "x_account_activity.json"),
        *_generic_cases(),
        *_get_cases(),
    ]
    assert len({c.id for c in out}) == len(out)
    return out


CASES = cases()
TALLY = {"tried": 0, "refused": 0, "written": 0}


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Live:
    base: str
    watch: Watch
    session: aiohttp.ClientSession


@pytest.fixture(scope="module")
async def live(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Live]:
    saved = {k: os.environ.get(k) for k in SECRETS}
    os.environ.update(SECRETS)
    prefix = f"f{os.urandom(5).hex()}."
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        http_port=0,
        pseudonym_key="forged-matrix-key",  # type: ignore[arg-type]
        registry_file=_registry(tmp_path_factory.mktemp("forged")),
    )
    runner, service = await ingest_app.start(settings)
    watch = Watch(kafka_bootstrap, [topic_name(t, settings) for t in CATALOG])
    await watch.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Live(f"http://127.0.0.1:{service.port}", watch, session)
    finally:
        await watch.stop()
        await ingest_app.stop(runner, service)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        print(f"\nforged-delivery matrix: {TALLY}")


async def _send(live: Live, case: Case) -> tuple[int, dict[str, Any]]:
    signed = case.sign(int(time.time())) if case.sign is not None else {}
    headers = (
        {"Content-Type": "application/json", **case.headers, **signed}
        if case.method == "POST"
        else {}
    )
    async with live.session.request(
        case.method,
        live.base + case.path,
        data=case.body or None,
        headers=headers,
        params=case.params or None,
    ) as resp:
        raw = await resp.read()
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = {"text": raw.decode(errors="replace")}
    return resp.status, answer if isinstance(answer, dict) else {"json": answer}


def test_the_matrix_is_large_enough() -> None:
    platforms = {c.path.split("/")[2] for c in CASES}
    assert platforms == {"instagram", "facebook", "whatsapp", "x", "generic"}
    assert len(CASES) >= 80, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_forged_case_is_refused_and_writes_nothing(live: Live, case: Case) -> None:
    sent_ms = int(time.time() * 1000)
    status, answer = await _send(live, case)
    written = await live.watch.written_since(max(sent_ms, int(time.time() * 1000)))
    TALLY["tried"] += 1
    TALLY["refused"] += status == case.expect
    TALLY["written"] += len(written)
    assert status == case.expect, (status, answer)
    if case.error is not None:
        assert answer.get("error") == case.error, answer
    assert "response_token" not in answer  # no CRC answer to a misused CRC
    assert written == [], [(r.topic, r.value[:80]) for r in written]


GENUINE = [
    ("instagram", "instagram_comments.json", {"X-Hub-Signature-256": ""}),
    ("facebook", "facebook_feed.json", {"X-Hub-Signature-256": ""}),
    ("whatsapp", "whatsapp_messages.json", {"X-Hub-Signature-256": ""}),
    ("x", "x_direct_messages.json", {"x-twitter-webhooks-signature": ""}),
    ("generic", "generic_reports.json", {}),
]


def _genuine_headers(platform: str, body: bytes) -> dict[str, str]:
    signers: dict[str, Callable[[bytes], dict[str, str]]] = {
        "x": lambda b: {"x-twitter-webhooks-signature": x_signature(X1, b)},
        "generic": lambda b: {
            "X-Aduan-Account": "web-sby",
            "X-Aduan-Timestamp": (ts := str(int(time.time()))),
            "X-Aduan-Signature": generic_signature(WEB, ts, b),
        },
    }
    sign = signers.get(platform, lambda b: {"X-Hub-Signature-256": meta_signature(META_A, b)})
    return sign(body)


@pytest.mark.parametrize(("platform", "name", "_h"), GENUINE, ids=[g[0] for g in GENUINE])
async def test_the_genuine_delivery_gets_in_and_the_watcher_sees_it(
    live: Live, platform: str, name: str, _h: dict[str, str]
) -> None:
    """The control: the same bodies signed correctly are accepted and written, and the
    watcher that saw nothing above sees them (so the matrix's "nothing" means nothing)."""
    body = (FIXTURES / name).read_bytes()
    case = Case(
        f"genuine-{platform}",
        "POST",
        f"/webhooks/{platform}",
        200,
        None,
        body,
        _genuine_headers(platform, body),
    )
    sent_ms = int(time.time() * 1000)
    status, answer = await _send(live, case)
    assert status == 200, answer
    written = await live.watch.written_since(sent_ms)
    assert any(r.value == body for r in written)  # the raw record
    assert any(r.topic.endswith("aduan.messages.v1") for r in written)
