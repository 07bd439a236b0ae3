"""Accounts that acknowledge citizens get a sealed reply reference on each citizen message:
it opens (with the reply key, on that message) to the platform's own id, which the topics
otherwise carry only as a one-way pseudonym."""

from __future__ import annotations

from dataclasses import replace

from common.registry import Registry
from common.sealing import Sealer
from schemas.messages import Platform
from services.ingest.platforms import parse_delivery
from tests.ingest.helpers import REGISTRY, ctx, fixture

SEALER = Sealer("reply-key")


def _acknowledging(registry: Registry) -> Registry:
    accounts = [
        a.model_copy(update={"acknowledge": True, "reply_token_env": "TEST_IG_TOKEN"})
        if a.platform is Platform.instagram
        else a
        for a in registry.accounts
    ]
    return Registry(agencies=registry.agencies, accounts=accounts, webhooks=registry.webhooks)


def test_citizen_messages_of_acknowledging_accounts_carry_an_openable_reference() -> None:
    body = fixture("instagram_comments.json")
    context = replace(ctx(), registry=_acknowledging(REGISTRY), seal=SEALER)
    result = parse_delivery(Platform.instagram, body, context)
    citizens = [m for m in result.messages if not m.is_agency_reply]
    assert citizens
    for m in citizens:
        assert m.reply_ref is not None
        raw_id = SEALER.open(m.reply_ref, m.message_id)
        assert raw_id.isdigit() and raw_id in body.decode()
        assert raw_id not in m.model_dump_json().replace(m.reply_ref, "")
    assert all(m.reply_ref is None for m in result.messages if m.is_agency_reply)


def test_other_accounts_and_no_key_mean_no_reference() -> None:
    body = fixture("instagram_comments.json")
    plain = parse_delivery(Platform.instagram, body, replace(ctx(), seal=SEALER))
    assert all(m.reply_ref is None for m in plain.messages)  # the account does not acknowledge
    unkeyed = parse_delivery(
        Platform.instagram, body, replace(ctx(), registry=_acknowledging(REGISTRY))
    )
    assert all(m.reply_ref is None for m in unkeyed.messages)
