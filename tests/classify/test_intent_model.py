"""The learned kind/urgency model: what it reads on sets it never saw, how it refuses bad
training rows, and how the classifier carries its reading (evidence, reason, rules mode).

The held-out floor trains on every shipped sentence file except five
(``intent_fresh25``-``29``, 300 sentences whose writers saw only the label definitions) and
scores those: kind 0.977, urgency 0.990, no false and no missed emergency (the rules:
0.863 / 0.860 / 3 / 4).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from services.classify.classifier import load_classifier
from services.classify.config import load_config
from services.classify.intent_model import (
    EMERGENCY_BIAS,
    RULES_EMERGENCY_BIAS,
    IntentModel,
    LabelledSentences,
    SentenceError,
    read_sentences,
    settle_kind,
    shipped_intent_model,
    shipped_sentence_files,
    train_intent_model,
)
from services.classify.rules import RuleSet
from services.classify.settings import ClassifySettings

from .helpers import registry

RULES = RuleSet(load_config())
HELD_OUT = {f"intent_fresh{k}.csv" for k in range(25, 30)}
# live-stream comments, speech-to-text voice notes, community figures' letters, X messages
# in English and Indonesian: styles no other set has
NOVEL_STYLES = {f"intent_fresh{k}.csv" for k in range(38, 42)}
# long messages that raise several matters, one of them (in the middle or at the end) an
# emergency: a portal letter, a chat to a village head, a list of complaints
BURIED = {f"intent_fresh{k}.csv" for k in (71, 76, 77)}


def _train_without(names: set[str]) -> tuple[IntentModel, LabelledSentences]:
    files = shipped_sentence_files()
    held = [p for p in files if p.name in names]
    assert len(held) == len(names)
    model = train_intent_model(read_sentences(p for p in files if p not in held), RULES)
    return model, read_sentences(held)


@pytest.fixture(scope="module")
def held_out() -> tuple[IntentModel, LabelledSentences]:
    """A model trained without the HELD_OUT sets, and those sets."""
    return _train_without(HELD_OUT)


def _score(model: IntentModel, data: LabelledSentences) -> tuple[float, float, int, int, float]:
    """Kind and urgency accuracy, false and missed emergencies, and the rules' kind accuracy."""
    read = model.read([RULES.apply(t) for t in data.texts], RULES)
    n = len(read)
    kind = sum(r.kind == k for r, k in zip(read, data.kinds, strict=True)) / n
    urgency = sum(r.urgency == u for r, u in zip(read, data.urgencies, strict=True)) / n
    pairs = list(zip((r.urgency for r in read), data.urgencies, strict=True))
    false = sum(p == "emergency" != t for p, t in pairs)
    missed = sum(t == "emergency" != p for p, t in pairs)
    rules_kind = (
        sum(RULES.apply(t).kind == k for t, k in zip(data.texts, data.kinds, strict=True)) / n
    )
    return kind, urgency, false, missed, rules_kind


def test_sets_it_never_saw_are_read_above_the_issue_bar(
    held_out: tuple[IntentModel, LabelledSentences],
) -> None:
    kind, urgency, false, missed, rules_kind = _score(*held_out)
    assert kind >= 0.95 and urgency >= 0.95, (kind, urgency)
    assert false <= 1 and missed <= 1, (false, missed)
    assert kind > rules_kind + 0.05  # the rules read 0.863 here: the model is why it ships


@pytest.fixture(scope="module")
def novel() -> tuple[IntentModel, LabelledSentences]:
    """A model trained without the NOVEL_STYLES sets, and those sets."""
    return _train_without(NOVEL_STYLES)


def test_styles_it_never_saw_keep_most_emergencies(
    novel: tuple[IntentModel, LabelledSentences],
) -> None:
    """Measured 0.983 / 0.971 with no false and 1 missed of 40 emergencies with 93 sentence
    files (0.983 / 0.967 / 0 / 1 with 69; the rules:
    0.833 / 0.729 / 4 / 19): told in Javanese speech-to-text or a calm letter, an
    emergency is still the model's weak spot."""
    kind, urgency, false, missed, rules_kind = _score(*novel)
    assert kind >= 0.92 and urgency >= 0.87, (kind, urgency)
    assert false <= 1 and missed <= 4, (false, missed)
    assert kind > rules_kind + 0.05


def test_emergencies_buried_in_long_messages_are_mostly_caught_when_never_seen() -> None:
    """Measured 0.983 / 0.917 with no false and 8 missed of 42 emergencies, each told among
    ordinary matters in a long message (the rules: 0.928 / 0.728 / 8 / 18): the style the
    model misses most, so its floor is lower than the others'."""
    model, data = _train_without(BURIED)
    kind, urgency, false, missed, _ = _score(model, data)
    assert kind >= 0.95 and urgency >= 0.88, (kind, urgency)
    assert false <= 1 and missed <= 10, (false, missed)
    rules_missed = sum(
        u == "emergency" != RULES.apply(t).urgency
        for t, u in zip(data.texts, data.urgencies, strict=True)
    )
    assert missed < rules_missed - 5  # the rules miss 18 of them


def test_non_complaints_are_low_and_complaints_always_have_a_clock() -> None:
    model = shipped_intent_model()
    texts = [
        "mantap min, got di jalan kami sudah dikeruk, sekarang gak banjir lagi",
        "min, perpanjang SIM bisa di mal pelayanan publik gak?",
        "slot gacor hari ini, depo 10rb bonus 100%, klik link di bio",
        "kebakaran rumah di gang 3 kenjeran, api sudah besar, ada orang di dalam!",
    ]
    read = model.read([RULES.apply(t) for t in texts], RULES)
    assert [r.kind for r in read] == ["praise", "question", "spam", "complaint"]
    assert [r.urgency for r in read] == ["low", "low", "low", "emergency"]


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "own.csv"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('"text","kind"\n"a","complaint"\n', "missing column(s) urgency"),
        ('"text","kind","urgency"\n"a","keluhan","normal"\n', "own.csv:2: unknown kind 'keluhan'"),
        ('"text","kind","urgency"\n"a","complaint","urgent"\n', "unknown urgency 'urgent'"),
        ('"text","kind","urgency"\n"a","praise","high"\n', "a praise has urgency low, not 'high'"),
        ('"text","kind","urgency"\n"  ","complaint","normal"\n', "own.csv:2: empty text"),
        ('"text","kind","urgency"\n"a","complaint","normal"\n', "two kinds and two urgencies"),
    ],
)
def test_a_bad_training_row_is_refused_with_its_file_and_line(
    tmp_path: Path, body: str, error: str
) -> None:
    with pytest.raises(SentenceError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_sentences([_write(tmp_path, body)])


def test_a_deployments_own_sentences_are_added_and_checked_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _write(tmp_path, '"text","kind","urgency"\n"a","complaint","normal"\n')
    monkeypatch.setenv("ADUAN_CLASSIFY_SENTENCES", f"{own}, {tmp_path / 'missing.csv'}")
    with pytest.raises(ValueError, match="no such file"):
        ClassifySettings()
    monkeypatch.setenv("ADUAN_CLASSIFY_SENTENCES", str(own))
    model = ClassifySettings().intent_model()
    assert model is not None
    assert model.rows == len(read_sentences(shipped_sentence_files()).texts) + 1


def test_the_classifier_carries_the_models_reading_and_keeps_the_rules_in_evidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the rules read this wish as a complaint (a drain, a flood); the model as the wish it is
    text = "semoga tahun depan got di kampung kami dibuat lebih lebar biar gak banjir lagi"
    learned = load_classifier(registry()).decide_many([text])[0]
    monkeypatch.setenv("ADUAN_CLASSIFY_INTENT", "rules")
    rules = load_classifier(registry()).decide_many([text])[0]
    assert rules.kind == RULES.apply(text).kind
    assert learned.kind == "aspiration" and learned.urgency == "low"
    assert any(e.startswith("intent-model:aspiration=") for e in learned.evidence)
    if rules.kind != learned.kind:
        assert f"intent-rules:{rules.kind}" in learned.evidence
    assert not any(e.startswith("intent-model:") for e in rules.evidence)


def test_a_level_the_model_chose_keeps_the_trigger_the_rules_found_as_its_reason() -> None:
    classifier = load_classifier(registry())
    for text in (
        "tolong pak, banjir di rumah kami sudah sepinggang, ada nenek tidak bisa keluar",
        "kabel listrik putus jatuh ke jalan depan SD, masih nyetrum, anak2 mau lewat",
    ):
        d = classifier.decide_many([text])[0]
        assert d.urgency == "emergency", d.evidence
        assert d.urgency_reason  # the rules' trigger, or "learned" where they found none


def test_one_feature_pass_reads_what_each_model_alone_decides() -> None:
    model = shipped_intent_model()
    plain = dataclasses.replace(model, emergency_bias=0.0, rules_emergency_bias=0.0)
    texts = read_sentences(shipped_sentence_files()[:2]).texts[:80]
    results = [RULES.apply(t) for t in texts]
    read = plain.read(results, RULES)
    kinds = model.kind.decide(results, RULES)
    urgencies = model.urgency.decide(results, RULES)
    assert [(r.model_kind, r.kind_confidence) for r in read] == kinds
    assert [r.urgency_confidence for r in read] == [c for _, c in urgencies]
    assert model.read([], RULES) == []


@pytest.mark.parametrize(
    ("text", "model_kind", "settled"),
    [
        # a portal request with a polite closing: the rules see no praise, so it stays one
        ("mohon dibantu bersihkan sampah di gang 3, terima kasih", "praise", "complaint"),
        ("mohon dibantu bersihkan sampah di gang 3, terima kasih", "spam", "complaint"),
        # thanks for a done fix: the rules see it too, so the model's praise stands
        ("makasih min, got sudah dikeruk, sekarang gak banjir lagi", "praise", "praise"),
        # thanks the rules do not know, with nothing asked: the model's reading stands
        (
            "sakalangkong bapak, jalanan e kampong kaula la eperbaiki, mon ojhan ta becek pole",
            "praise",
            "praise",
        ),
        # kinds that keep a clock are the model's to choose
        ("mohon dibantu bersihkan sampah di gang 3, terima kasih", "question", "question"),
        ("slot gacor depo 10rb bonus 100% klik link di bio", "spam", "spam"),
    ],
)
def test_the_model_takes_a_requests_clock_only_when_the_rules_see_a_cue(
    text: str, model_kind: str, settled: str
) -> None:
    assert settle_kind(model_kind, RULES.apply(text)) == settled


def test_the_emergency_margin_is_lowered_for_real_traffic() -> None:
    """Real traffic has far fewer emergencies than the sentence sets, so the emergency
    margin is shifted down before the urgency is chosen (never up)."""
    model = shipped_intent_model()
    texts = read_sentences(shipped_sentence_files()).texts
    results = [RULES.apply(t) for t in texts[::3]]

    def emergencies(bias: float) -> int:
        shifted = dataclasses.replace(model, emergency_bias=bias, rules_emergency_bias=bias)
        return sum(r.urgency == "emergency" for r in shifted.read(results, RULES))

    assert EMERGENCY_BIAS < 0 and model.emergency_bias == EMERGENCY_BIAS
    assert emergencies(-100.0) == 0 < emergencies(EMERGENCY_BIAS) <= emergencies(0.0)


def test_a_trigger_the_rules_found_needs_less_from_the_model(
    novel: tuple[IntentModel, LabelledSentences],
) -> None:
    """Where the rules found an emergency trigger the model's emergency margin is shifted by
    RULES_EMERGENCY_BIAS instead: more of those are emergencies, and no other message's
    reading moves (on sentences the model did not learn from, where margins are close)."""
    model, data = novel
    results = [RULES.apply(t) for t in data.texts]
    found = [r.urgency == "emergency" for r in results]
    assert 0 < sum(found) < len(found)
    one_shift = dataclasses.replace(model, rules_emergency_bias=EMERGENCY_BIAS)
    two, one = model.read(results, RULES), one_shift.read(results, RULES)
    assert RULES_EMERGENCY_BIAS > EMERGENCY_BIAS
    changed = [(a, f) for a, b, f in zip(two, one, found, strict=True) if a.urgency != b.urgency]
    # somewhere, only where the rules found one, and always to an emergency
    assert changed and all(f and a.urgency == "emergency" for a, f in changed)
    assert all(a == b for a, b, f in zip(two, one, found, strict=True) if not f)
    assert model.tag != one_shift.tag  # the shifts are part of the records' version


def test_records_name_the_sentences_the_kind_was_learned_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    learned = load_classifier(registry())
    assert learned.version.endswith(f"+intent-{shipped_intent_model().tag}")
    own = _write(tmp_path, '"text","kind","urgency"\n"a","complaint","normal"\n')
    monkeypatch.setenv("ADUAN_CLASSIFY_SENTENCES", str(own))
    assert load_classifier(registry()).version != learned.version  # more sentences, new tag
    monkeypatch.setenv("ADUAN_CLASSIFY_INTENT", "rules")
    assert "+intent-" not in load_classifier(registry()).version


def test_the_cases_above_reach_the_branch_they_name() -> None:
    """The rules call both thanks above complaints, so only the request word decides."""
    asked = RULES.apply("mohon dibantu bersihkan sampah di gang 3, terima kasih")
    told = RULES.apply(
        "sakalangkong bapak, jalanan e kampong kaula la eperbaiki, mon ojhan ta becek pole"
    )
    assert asked.kind == told.kind == "complaint"
    assert not any(
        e.startswith(("kind:praise=", "kind:solved=")) for e in asked.evidence + told.evidence
    )
