"""Signatures, the dedup store, the registry at scale and the operator command."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.registry import RegistryError, load_registry
from schemas.messages import Action, Platform
from services.ingest.dedup import DedupStore, InFlight, dedup_key
from services.ingest.parse import DEMO_KEY
from services.ingest.privacy import Pseudonymizer
from services.ingest.signatures import (
    generic_signature,
    meta_signature,
    verify_any,
    verify_generic,
    x_crc_response,
    x_signature,
)
from tests.ingest.helpers import FIXTURES, ROOT, fixture, parse


class TestSignatures:
    def test_meta_signature_is_hex_hmac_of_raw_bytes(self) -> None:
        body = fixture("instagram_comments.json")
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert meta_signature("s3cret", body) == expected
        assert verify_any(expected, body, ["other", "s3cret"])
        assert not verify_any(expected, body + b" ", ["s3cret"])  # re-serialised → refused
        assert not verify_any(None, body, ["s3cret"])
        assert not verify_any(expected, body, [])

    def test_x_signature_and_crc(self) -> None:
        token = "dGhpcyBpcyBhIGNyYyB0b2tlbiBzaGFwZWQgbGlrZSBYJ3M="  # base64, as X sends
        digest = hmac.new(b"consumer", token.encode(), hashlib.sha256).digest()
        want = "sha256=" + base64.b64encode(digest).decode()
        assert x_crc_response("consumer", token) == {"response_token": want}
        body = fixture("x_direct_messages.json")
        assert verify_any(x_signature("consumer", body), body, ["consumer"], x_signature)
        assert not verify_any(meta_signature("consumer", body), body, ["consumer"], x_signature)

    def test_generic_signature_window(self) -> None:
        body = fixture("generic_reports.json")
        now = 1_795_310_000.0
        ts = str(int(now))
        sig = generic_signature("g", ts, body)
        assert verify_generic(sig, ts, body, ["g"], now, 300) is None
        assert verify_generic(sig, ts, body, ["g"], now + 301, 300) == "replayed"
        assert verify_generic(sig, str(int(now) + 1), body, ["g"], now, 300) == "forged"
        assert verify_generic(None, ts, body, ["g"], now, 300) == "forged"
        assert verify_generic(sig, "abc", body, ["g"], now, 300) == "forged"


class TestDedup:
    def test_keys_for_add_edit_remove(self) -> None:
        add, _reply, edit, removed = parse("facebook", "facebook_feed.json").messages[:4]
        assert dedup_key(add) == add.message_id
        assert edit.action is Action.edit and dedup_key(edit) != dedup_key(add)
        assert dedup_key(edit).startswith(add.message_id + "|edit|")
        again = edit.model_copy(update={"text": "isi yang diubah lagi"})
        assert dedup_key(again) != dedup_key(edit)  # a second edit is a new event
        assert dedup_key(removed).endswith("|remove")

    def test_claim_commit_release(self) -> None:
        store = DedupStore(window_s=60)
        fresh, claimed = store.claim(["a", "b", "a"])
        assert fresh == [0, 1] and claimed == ["a", "b"]
        with pytest.raises(InFlight):
            store.claim(["b"])
        store.release(claimed)
        fresh, claimed = store.claim(["a", "b"])
        store.commit(claimed)
        assert store.claim(["a", "b", "c"])[0] == [2]

    def test_timed_out_write_is_held_until_its_fate_is_known(self) -> None:
        now = [1000.0]
        store = DedupStore(window_s=60, clock=lambda: now[0])
        _, claimed = store.claim(["late", "lost"])
        store.release(claimed, hold_s=3)  # the produce timed out: may still land
        with pytest.raises(InFlight):
            store.claim(["lost"])
        store.add("late")  # the tail saw the late record: a retry is a duplicate
        assert store.claim(["late"])[0] == []
        now[0] += 3.5  # past the hold, never seen: the record is gone, retry writes it
        assert store.claim(["lost"])[0] == [0]

    def test_window_expiry(self) -> None:
        now = [1000.0]
        store = DedupStore(window_s=10, clock=lambda: now[0])
        store.commit(store.claim(["old"])[1])
        now[0] += 5
        store.commit(store.claim(["new"])[1])
        now[0] += 6
        assert "old" not in store and "new" in store
        store.expire()
        assert len(store) == 1
        store.add("ancient", seen_at=now[0] - 100)  # replayed record past the window
        assert "ancient" not in store and len(store) == 1


class TestRegistry:
    def test_thousands_of_accounts_constant_time_lookup(self, tmp_path: Path) -> None:
        agencies = [
            {"id": f"a{i}", "name": f"Agency {i}", "kind": "public_works", "region_code": "35.78"}
            for i in range(50)
        ]
        accounts = [
            {
                "platform": ["instagram", "facebook", "whatsapp", "x"][i % 4],
                "platform_id": str(10_000_000 + i),
                "agency_id": f"a{i % 50}",
                "app_secret_env": "ADUAN_META_APP_SECRET",
            }
            for i in range(5000)
        ]
        path = tmp_path / "registry.yaml"
        path.write_bytes(orjson.dumps({"agencies": agencies, "accounts": accounts}))
        registry = load_registry(path)
        started = time.perf_counter()
        for i in range(5000):
            hit = registry.account(Platform(accounts[i]["platform"]), str(10_000_000 + i))
            assert hit is not None and hit.agency_id == f"a{i % 50}"
        assert time.perf_counter() - started < 0.5
        assert registry.account(Platform.x, "nope") is None

    def test_error_names_file_entry_and_field(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text(
            "agencies: [{id: a, name: A, kind: k, region_code: '35.78'}]\n"
            "accounts:\n  - {platform: instagram, platform_id: '1', agency_id: a, "
            "app_secret_env: 'lower-case'}\n"
        )
        with pytest.raises(RegistryError) as info:
            load_registry(path)
        message = str(info.value)
        assert str(path) in message and "accounts.0.app_secret_env" in message


class TestParseCommand:
    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "services.ingest.parse", *args],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )

    def test_messages_and_errors_as_json_lines(self) -> None:
        done = self.run(
            "--platform", "instagram", str(FIXTURES / "instagram_batch_with_bad_entries.json")
        )
        assert done.returncode == 0, done.stderr
        lines = [orjson.loads(line) for line in done.stdout.splitlines()]
        demo = Pseudonymizer(DEMO_KEY)
        assert [line["message_id"] for line in lines if "message_id" in line] == [
            demo.message_id("instagram:17865799348089101"),
            demo.message_id("instagram:17865799348089102"),
            demo.message_id("instagram:17865799348089104"),
        ]
        errors = [line for line in lines if "error" in line]
        assert {e["error"] for e in errors} == {"malformed_entry", "unknown_account"}
        assert all("evidence" not in e for e in errors)
        assert b"demo key" in done.stderr

    def test_evidence_only_on_request(self) -> None:
        done = self.run(
            "--platform",
            "instagram",
            str(FIXTURES / "instagram_batch_with_bad_entries.json"),
            "--show-evidence",
        )
        lines = [orjson.loads(line) for line in done.stdout.splitlines()]
        (unknown,) = [line for line in lines if line.get("error") == "unknown_account"]
        assert unknown["evidence"] and "registry" in unknown["detail"]
        assert not any(e in unknown["detail"] for e in unknown["evidence"])

    def test_unparseable_body_exits_2(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.json"
        bad.write_bytes(b'{"object": "page"')
        done = self.run("--platform", "facebook", str(bad), "--pseudonym-key", "k")
        assert done.returncode == 2
        assert orjson.loads(done.stdout)["error"] == "malformed_json"
        assert b"demo key" not in done.stderr


class TestRequestPathHelpers:
    def test_delivery_ids_are_distinct_version_4_uuids(self) -> None:
        import uuid

        from services.ingest.app import new_delivery_id

        ids = {new_delivery_id() for _ in range(2000)}
        assert len(ids) == 2000
        for text in list(ids)[:200]:
            parsed = uuid.UUID(text)
            assert str(parsed) == text
            assert parsed.version == 4 and parsed.variant == uuid.RFC_4122

    def test_raw_partitions_are_sticky_then_rotate_evenly(self) -> None:
        from collections import Counter
        from typing import cast

        from aiokafka import AIOKafkaProducer

        from common.registry import Registry
        from common.settings import Settings
        from services.ingest.app import RAW_STICKY, IngestService
        from services.ingest.privacy import Pseudonymizer

        service = IngestService(
            Settings(),
            Registry(agencies=[], accounts=[]),
            cast(AIOKafkaProducer, None),  # never used: only partition choice is tested
            Pseudonymizer(b"k"),
        )
        assert service.next_raw_partition() is None  # partitions unknown: default partitioner
        service.raw_partitions = [0, 1, 2]
        picks = [service.next_raw_partition() for _ in range(6 * RAW_STICKY)]
        assert picks[:RAW_STICKY] == [0] * RAW_STICKY
        assert picks[RAW_STICKY : 2 * RAW_STICKY] == [1] * RAW_STICKY
        assert Counter(picks) == {0: 2 * RAW_STICKY, 1: 2 * RAW_STICKY, 2: 2 * RAW_STICKY}

    def test_account_index_answers_like_the_registry(self) -> None:
        from services.ingest.platforms.base import AccountIndex

        registry = load_registry(ROOT / "deploy" / "config" / "registry.yaml")
        index = AccountIndex(registry)
        assert registry.accounts
        for account in registry.accounts:
            for pid in (account.platform_id, *account.aliases):
                assert index.account(account.platform, pid) is registry.account(
                    account.platform, pid
                )
            assert index.account_region(account) == registry.account_region(account)
        assert index.account(Platform.instagram, "no-such-account") is None
        stranger = registry.accounts[0].model_copy(update={"region_code": None})
        assert index.account_region(stranger) == registry.account_region(stranger)


class TestPartitioner:
    """Ingest's murmur2 partitioner must place every key where every other Kafka producer
    does (aiokafka's DefaultPartitioner is the reference)."""

    @settings(deadline=None)  # first example pays for imports
    @given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
    def test_same_partition_as_aiokafka(self, key: bytes, count: int) -> None:
        from aiokafka.partitioner import DefaultPartitioner, murmur2

        from common import partitioning

        assert partitioning.murmur2(key) == murmur2(key)
        parts = list(range(count))
        assert partitioning.partition(key, parts, parts) == DefaultPartitioner()(key, parts, parts)

    def test_keyless_records_go_to_an_available_partition(self) -> None:
        from common.partitioning import partition

        assert {partition(None, [0, 1, 2], [2]) for _ in range(50)} == {2}
        assert {partition(None, [0, 1], []) for _ in range(200)} == {0, 1}


class TestMessageEncoding:
    @settings(deadline=None)  # first example pays for imports and parsing the fixture
    @given(
        text=st.one_of(st.none(), st.text(max_size=200)),
        lat=st.floats(min_value=-90, max_value=90),
        lon=st.floats(min_value=-180, max_value=180),
        micros=st.integers(min_value=0, max_value=999_999),
        thread=st.text(min_size=1, max_size=60),
    )
    def test_same_bytes_as_the_shared_codec(
        self, text: str | None, lat: float, lon: float, micros: int, thread: str
    ) -> None:
        from datetime import UTC, datetime

        from common import codecs
        from schemas.messages import Location
        from services.ingest.app import encode_message

        (message, *_) = parse("whatsapp", fixture("whatsapp_messages.json")).messages
        varied = message.model_copy(
            update={
                "text": text,
                "thread_key": thread,
                "location": Location(latitude=lat, longitude=lon, name=text),
                "received_at": datetime(2026, 1, 2, 3, 4, 5, micros, tzinfo=UTC),
            }
        )
        assert encode_message(varied) == codecs.dumps(varied)
