"""The fast paths of the rule layer against the plain definitions they replace.

``tokens_and_roots`` splits on whitespace and memoizes per piece; ``PhraseIndex.match`` looks
phrase tails up in per-token tables. Both must give exactly what the straightforward
definitions give (``tokens`` + ``stem``; comparing every phrase at every position), on
fresh input and again once the memos are warm.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.classify.config import load_config, parse_config
from services.classify.intent import IntentRules, _Entry
from services.classify.rules import RuleResult, RuleSet
from services.classify.text import stem, tokens, tokens_and_roots

# pieces that exercise every branch of the scanners: placeholders (valid, unknown, broken),
# reduplication with "2" (and near misses), stretched letters, slang, digits (also non-ASCII
# ones), literal escapes, emoji, punctuation and upper case
Hit = tuple[int, int, _Entry]

PIECES = [
    "[PHONE]", "[nik]", "[no_hp]", "[phonex]", "[", "]", "jalan2", "a2", "ab2c", "rt05",
    "2", "23", "٣", "１２", "bangeeet", "jln", "gpp", "udh", "rusak", "Sampah", "banjir",
    "lampu", "pju", "mati", "tolong", "?", "\\n", "\\t", "😡", "é", ",", ".", "-", "_",
    "dinas", "kesehatan", "tergenang", "genangan", "air", "pdam",
]  # fmt: skip
# every kind of whitespace str.split() cuts at (incl. the ASCII separators \x1c-\x1f), and
# non-separators
SEPARATORS = [" ", "", "  ", "\n", "\t", ",", "\u00a0", "\u2003", "\u3000", "\x1c", "\x85"]


@lru_cache(maxsize=1)
def ruleset() -> RuleSet:
    return RuleSet(load_config(None))


def phrase_words() -> list[str]:
    """Words of the shipped configuration's phrases, so generated texts contain real hits."""
    words: set[str] = set()
    config = load_config(None)
    for cat in config.categories.values():
        for phrase in cat.keywords:
            words.update(phrase.removeprefix("=").split())
        for cues in cat.subcategories.values():
            for phrase in cues:
                words.update(phrase.removeprefix("=").split())
    for phrases in config.kinds.values():
        for phrase in phrases:
            words.update(phrase.split())
    return sorted(words)


texts = st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), max_size=30).map(
    lambda parts: "".join(p + s for p, s in parts)
)
phrase_texts = st.lists(
    st.sampled_from([*phrase_words(), "jalan2", "tidak", "ada", "[PHONE]"]), max_size=25
).map(" ".join)


@given(st.one_of(texts, phrase_texts, st.text(max_size=60)))
@settings(max_examples=400, deadline=None)
def test_tokens_and_roots_equal_the_plain_definition(text: str) -> None:
    expected_toks = tuple(tokens(text))
    expected = (expected_toks, tuple(stem(t) for t in expected_toks))
    assert tokens_and_roots(text) == expected  # cold or partly warm
    assert tokens_and_roots(text) == expected  # warm


def naive_match(rs: RuleSet, toks: list[str], roots: list[str]) -> set[int]:
    """Every indexed phrase compared at every position: the definition of a hit."""
    found: set[int] = set()
    for table, seq in ((rs.index.surface, toks), (rs.index.stemmed, roots)):
        for first, entries in table.items():
            for rest, pid in entries:
                words = (first, *rest)
                for i in range(len(seq) - len(words) + 1):
                    if tuple(seq[i : i + len(words)]) == words:
                        found.add(pid)
    return found


@given(st.one_of(phrase_texts, texts))
@settings(max_examples=150, deadline=None)
def test_match_equals_comparing_every_phrase_everywhere(text: str) -> None:
    rs = ruleset()
    toks, roots = tokens_and_roots(text)
    expected = naive_match(rs, toks, roots)
    assert rs.index.match(toks, roots) == expected
    assert rs.index.match(toks, roots) == expected


def test_multi_word_phrase_at_the_end_and_cut_off() -> None:
    """A phrase's last word may be the text's last token; a phrase cut by the end is no hit."""
    rs = ruleset()
    multi = next(
        (first, rest, pid)
        for first, entries in rs.index.surface.items()
        for rest, pid in entries
        if rest
    )
    first, rest, pid = multi
    whole = [first, *rest]
    assert pid in rs.index.match(whole, [stem(w) for w in whole])
    cut = [first, *rest[:-1]]
    assert pid not in naive_match(rs, cut, [stem(w) for w in cut])
    assert pid not in rs.index.match(cut, [stem(w) for w in cut])


def test_apply_is_the_same_cold_and_warm_and_orders_evidence_by_phrase() -> None:
    rs = RuleSet(load_config(None))  # fresh memos
    text = "Jln2 rusak bangeeet, lampu PJU mati & sampah numpuk?? hub [PHONE] tolong segera"
    cold = rs.apply(text)
    assert rs.apply(text) == cold
    assert cold.tokens == tuple(tokens(text))
    assert cold.roots == tuple(stem(t) for t in cold.tokens)
    keywords = [e for e in cold.evidence if e.startswith("keyword:")]
    assert keywords, cold
    ids = [rs.index._ids[e.removeprefix("keyword:")] for e in keywords]  # noqa: SLF001
    assert ids == sorted(ids)
    kinds = [e for e in cold.evidence if e.startswith("kind:")]
    assert kinds == sorted(kinds)
    assert any(e.startswith("kind:question=") for e in kinds)  # the "?" cue


def test_text_without_any_phrase() -> None:
    result = ruleset().apply("zzq xqv 12345")
    assert result.category == ruleset().config.fallback_category
    assert result.scores == (0.0,) * len(ruleset().categories)
    assert result.kind == "other"
    assert result.urgency == "low" and result.urgency_reason is None  # only complaints are urgent
    assert result.tokens == ("zzq", "xqv", "12345")


@given(st.one_of(texts, phrase_texts))
@settings(max_examples=100, deadline=None)
def test_results_are_ordinary_frozen_rule_results(text: str) -> None:
    """``apply`` builds its result without the dataclass ``__init__``; it must be the very same
    value: equal to (and hashing like) one built the ordinary way, with the same repr, and
    still frozen."""
    result = ruleset().apply(text)
    plain = RuleResult(**{f.name: getattr(result, f.name) for f in fields(RuleResult)})
    assert result == plain and hash(result) == hash(plain) and repr(result) == repr(plain)
    assert vars(result) == vars(plain)
    with pytest.raises(FrozenInstanceError):
        result.kind = "other"  # type: ignore[misc]


def reference_hits(rules: IntentRules, toks: list[str], roots: list[str]) -> list[Hit]:
    """``IntentRules.hits`` as first written: every hit of both word lists, sorted by start
    (longest first), then the hits inside an earlier one dropped."""
    found: list[Hit] = []
    n = len(toks)
    for by_root, seq in ((0, toks), (1, roots)):
        singles, pairs = rules._singles[by_root], rules._pairs[by_root]  # noqa: SLF001
        for i in range(n):
            if seq[i] in singles:
                found.append((i, i + 1, singles[seq[i]]))
        for i in range(n - 1):
            if (seq[i], seq[i + 1]) in pairs:
                two, longer = pairs[seq[i], seq[i + 1]]
                for k, tails in longer:
                    if i + 2 + k <= n:
                        entry = tails.get(seq[i + 2] if k == 1 else tuple(seq[i + 2 : i + 2 + k]))
                        if entry is not None:
                            found.append((i, i + 2 + k, entry))
                if two is not None:
                    found.append((i, i + 2, two))
    found.sort(key=lambda h: (h[0], -h[1]))
    kept: list[Hit] = []
    reach = reach_trigger = -1
    for h in found:
        if h[1] <= (reach_trigger if h[2].group_word else reach):
            continue
        kept.append(h)
        reach = max(reach, h[1])
        if h[2].any_trigger:
            reach_trigger = max(reach_trigger, h[1])
    return kept


def intent_words() -> list[str]:
    """Words of the shipped intent phrases (kinds, context, urgency), some by their root."""
    config = load_config(None)
    phrases = [p for kinds in config.kinds.values() for p in kinds if p != "?"]
    phrases += [p for ps in config.context.values() for p in ps]
    for rules in config.urgency.values():
        for rule in rules:
            phrases += rule.any + [p for group in rule.all for p in group]
    words = {w for p in phrases for w in p.lstrip("=~").split()}
    return sorted(words | {stem(w) for w in words})


intent_texts = st.lists(
    st.sampled_from([*intent_words(), "jalan2", "banjir", "rusak", "?", "[PHONE]"]), max_size=25
).map(" ".join)


@given(st.one_of(intent_texts, phrase_texts, texts))
@settings(max_examples=300, deadline=None)
def test_intent_hits_equal_the_reference(text: str) -> None:
    rules = ruleset().intent
    toks, roots = tokens_and_roots(text)
    assert rules.hits(toks, roots) == reference_hits(rules, toks, roots)


def test_intent_hits_with_phrases_matched_by_root_and_overlapping() -> None:
    """A config with root phrases of one and several words (the shipped one has no root
    pairs) and phrases inside others: the slow path of ``hits``."""
    raw = load_config(None).model_dump()
    raw["kinds"]["complaint"].update({"~rusak": 1.0, "~banjir bandang": 2.0, "~jalan rusak": 1.0})
    raw["context"]["problem"] = [*raw["context"]["problem"], "~genang air", "jalan berlubang"]
    rules = IntentRules(parse_config(raw))
    for text in (
        "jalan rusak dan tergenang air, banjir bandang kemarin, jalan berlubang parah",
        "kerusakan jalan, jalanan rusak berat; genangan air di jalan berlubang",
        "pohon tumbang menutup jalan, tiang listrik mau roboh, rawan kecelakaan",
    ):
        toks, roots = tokens_and_roots(text)
        expected = reference_hits(rules, toks, roots)
        assert len(expected) >= 3, expected
        assert rules.hits(toks, roots) == expected


def test_tokens_and_roots_stay_right_when_the_tables_are_emptied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bound of a few pieces forces the tables to be emptied inside most texts."""
    from services.classify import text as text_module

    monkeypatch.setattr(text_module, "_MAX_PIECES", 3)
    monkeypatch.setattr(text_module, "_PIECE_TOKENS", {})
    monkeypatch.setattr(text_module, "_ROOT", {})
    for text in ("Jln2 rusak bangeeet, lampu PJU mati", "sampah numpuk [PHONE] tolong", "a b"):
        expected_toks = tuple(tokens(text))
        assert tokens_and_roots(text) == (expected_toks, tuple(stem(t) for t in expected_toks))
        assert len(text_module._PIECE_TOKENS) <= len(text.split())  # noqa: SLF001


@given(st.lists(st.one_of(texts, phrase_texts), min_size=1, max_size=5))
@settings(max_examples=50, deadline=None)
def test_decisions_are_ordinary_frozen_decisions(batch: list[str]) -> None:
    """``Decision._build`` must give the very value the dataclass ``__init__`` gives."""
    from common.registry import Registry
    from services.classify.classifier import Classifier, Decision

    classifier = Classifier(Registry(agencies=[], accounts=[]), ruleset())
    for decision in classifier.decide_many(batch):
        plain = Decision(**{f.name: getattr(decision, f.name) for f in fields(Decision)})
        assert decision == plain and hash(decision) == hash(plain)
        assert repr(decision) == repr(plain) and vars(decision) == vars(plain)
        with pytest.raises(FrozenInstanceError):
            decision.kind = "other"  # type: ignore[misc]
