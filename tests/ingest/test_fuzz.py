"""Property-based fuzzing of every parser: any bytes or JSON give a ParseResult or a
MalformedDelivery, never another exception (which would crash a request or lose a batch)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.messages import Message, Platform
from services.ingest.platforms import parse_delivery
from services.ingest.platforms.base import MalformedDelivery, ParseResult
from tests.ingest.helpers import FIXTURES, ctx

PLATFORMS = list(Platform)
SAMPLES = [
    (Platform(p.name.split("_")[0]), orjson.loads(p.read_bytes()))
    for p in sorted(FIXTURES.glob("*.json"))
]

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # orjson's range
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["17841400000000001", "106540352242922", "1500000000000000001", "web-sby"]),
)
JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


def _check(platform: Platform, body: bytes) -> None:
    try:
        result = parse_delivery(platform, body, ctx())
    except MalformedDelivery as exc:
        assert exc.reason and exc.detail
        return
    assert isinstance(result, ParseResult)
    assert all(isinstance(m, Message) for m in result.messages)
    assert all(r.reason and r.detail for r in result.rejected)


@settings(max_examples=300, deadline=None)
@given(platform=st.sampled_from(PLATFORMS), body=st.binary(max_size=300))
def test_any_bytes(platform: Platform, body: bytes) -> None:
    _check(platform, body)


@settings(max_examples=300, deadline=None)
@given(platform=st.sampled_from(PLATFORMS), doc=JSON)
def test_any_json(platform: Platform, doc: Any) -> None:
    _check(platform, orjson.dumps(doc))


def _mutate(doc: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace, drop or keep each node of a real delivery, so the fuzzer reaches deep into
    the platform shapes instead of failing at the envelope."""
    if depth > 8:
        return doc
    choice = data.draw(st.integers(0, 9))
    if choice == 0:
        return data.draw(JSON)
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if data.draw(st.integers(0, 12)) == 0:
                continue
            out[key] = _mutate(value, data, depth + 1)
        return out
    if isinstance(doc, list):
        return [_mutate(v, data, depth + 1) for v in doc]
    return doc


@pytest.mark.parametrize(("platform", "doc"), SAMPLES, ids=[str(i) for i in range(len(SAMPLES))])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_deliveries(platform: Platform, doc: Any, data: st.DataObject) -> None:
    _check(platform, orjson.dumps(_mutate(doc, data)))


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "body",
    [
        b'{"object": "instagram", "entry": [{"id": 1, "time": 1e400, "changes": []}]}',
        b'{"for_user_id": 123456789012345678901234567890, "tweet_create_events": [{}]}',
        b'{"object": "page", "entry": [{"id": "100000000000001", "time": -1, "changes": '
        b'[{"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": 1, '
        b'"post_id": 2, "from": {"id": 3}, "created_time": 99999999999999999999}}]}]}',
        b'\xef\xbb\xbf{"object": "instagram", "entry": []}',
        b'{"object": "instagram", "entry": [' + b"{}," * 2000 + b"{}]}",
    ],
)
def test_edge_bodies(platform: Platform, body: bytes) -> None:
    _check(platform, body)
