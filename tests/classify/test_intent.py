"""Message kind and urgency on hand-written informal sentences (services/classify/sentences/).

``intent_sentences.csv`` (318 rows) is the set the rules were shaped on; its accuracy is a
regression floor. ``intent_holdout.csv`` (103 rows) was written at the same time but only
scored, never read while tuning (one missed emergency it showed through the aggregate was
fixed), so its figures estimate how the rules do on sentences they have not seen.
``intent_fresh.csv`` and ``intent_fresh2.csv`` (40 rows each) were written after the rules,
in other styles (more slang, abbreviations), each scored once before its errors were read
(first scores: kind 0.775 / 0.925, three and two missed emergencies): the honest estimate is
those first scores, the floors below are after the vocabulary gaps they showed were closed.
``intent_fresh3.csv`` (68 rows, all seven kinds) was written a session later and is kept
exactly as first scored, nothing tuned on it: kind 0.956, urgency 0.882, no missed
emergency, one false one (a fire "minggu lalu" whose "sekarang" is about the debris: the
ongoing cue sits within reach of the trigger; punctuation, which would separate the clauses,
is not part of the tokens); that fire is fixed since ("long ago" below), the floor is as scored.

Three more sets were written a session later, each scored once before its errors were read,
then its vocabulary and reading gaps closed; each next set was written after the previous
fixes, so its first score estimates the rules on unseen sentences:

- ``intent_fresh4.csv`` (70 rows) first scored kind 0.871, urgency 0.829, one false and one
  missed emergency. It showed emergencies weeks old kept live by an ongoing word about
  something else ("tahun lalu rumah saya kebakaran, sampai sekarang bantuan ..."), a fixed
  problem reported without thanks counted as open, hazards dropped because they happened
  yesterday ("kemarin ada motor jatuh"), greetings with a topic word read as complaints.
- ``intent_fresh5.csv`` (60 rows, Suroboyoan and more slang) first scored 0.867 / 0.800, one
  false and three missed emergencies (Javanese verbs "ketiban", breathing, an abandoned baby).
- ``intent_fresh6.csv`` (50 rows) first scored 0.920 / 0.900, one false and one missed
  emergency (a collapse with people inside; a bridge swept away "tiga tahun lalu").
- ``intent_fresh7.csv`` (50 rows, half of them emergencies and their look-alikes) first
  scored 0.900 / 0.840, no false and one missed emergency (a passenger "gak sadar").

Two more sets were written a session later, before the rules and their configuration were read,
scored once, then their gaps closed in general forms (phrase families, readings) and each fix
checked against the dev file's kinds and urgencies:

- ``intent_fresh8.csv`` (60 rows, East Java slang and Javanese, 12 emergencies and their
  look-alikes) first scored kind 0.917, urgency 0.817, two false and three missed emergencies
  (a news question "denger2 ada kebakaran ..., bener ta?", hyperbole "kaya lagi kebakaran";
  "kecemplung", "ketimbun", a missing child whose age read as a past time).
- ``intent_fresh9.csv`` (60 rows) first scored 0.833 / 0.783, no false and three missed
  emergencies (a child in a well, a venomous snakebite, a landslide that "nimbun" houses) and
  kind errors in spam without the usual words, wishes and questions.

Three more (stop 23) were written by writers who were shown only the label definitions,
never the rules or the earlier sets, each in one style: ``intent_fresh10.csv`` (older
citizens across East Java's regencies, Javanese ngoko and kromo), ``intent_fresh11.csv``
(X and Instagram replies: Gen-Z slang, sarcasm, English code-mixing) and
``intent_fresh12.csv`` (WhatsApp complaint lines: semi-formal letters, panicked bursts,
voice-note transcripts), 60 rows each, a third of them look-alikes. First scores (kind /
urgency / false / missed emergencies): 0.850 / 0.750 / 4 / 3, 0.800 / 0.767 / 3 / 1, 0.833 /
0.833 / 1 / 3. They showed readings the rules lacked: a drill or hoax denied ("ini bukan
simulasi"), a problem fixed in its own clause ("tanggul yang retak ... sudah diperbaiki"),
"sudah setahun belum diganti" counted as done, an emergency whose time closes the clause
("kebakaran gudang ... tadi malam"), counts of times as habits ("wis ping 3 ono begal"), a
hazard inside a wish, rumours asked with "beneran"; and vocabulary (Javanese depths, "semaput",
"ketindih", leaning trees and poles, water out for days, MLM and campaign phrases).
Two more were written the same way after those fixes, to score them: ``intent_fresh13.csv``
(Facebook comments from rural regencies: farmers, village officials, migrant workers
abroad) first scored 0.900 / 0.817 / 1 / 2, and ``intent_fresh14.csv`` (Instagram replies in
Jakarta-style informal Indonesian from Surabaya, Malang and Sidoarjo) 0.817 / 0.733 / 1 / 1;
their gaps were closed in turn (ground moving under homes, "mau ambrol", a feared hazard
that makes a flood conditional, figures of speech that are the only topic word, "3x").
A third pair followed: ``intent_fresh15.csv`` (a day's inbox of the provincial accounts:
every register, English and Madurese included) first scored 0.750 / 0.800 / 2 / 1 and
``intent_fresh16.csv`` (emergencies of every kind and their look-alikes) 0.900 / 0.733 / 5 /
3 (English reports, sarcastic praise over a live hazard, a capsized boat, a birth "ketuban
udah pecah", "arep lompat", a death "bulan Maret", a robber "ketangkep", "koyok kobongan").
The fourth pair: ``intent_fresh17.csv`` (a city command centre's inbox over a rainy week)
first scored 0.867 / 0.833 / 1 / 1 and ``intent_fresh18.csv`` (kinds that are hard to tell
apart: scams dressed as aid, questions naming broken things) 0.817 / 0.833 / 0 / 0 (a fix
that a "tapi" separates from the next hazard, a wish that names a praise word, a light
"akhirnya nyala lagi", announcements opening with "Info", "tinggal nunggu ada yg
ketabrak", "sebatas dada", Javanese greetings, "2029 ganti").
The fifth pair: ``intent_fresh19.csv`` (Tapal Kuda and Madura, Madurese words, older
writers) first scored 0.783 / 0.767 / 0 / 1 and ``intent_fresh20.csv`` (X and Instagram
from Surabaya, Sidoarjo and Gresik, emergencies without the obvious keywords) 0.783 /
0.733 / 0 / 4 ("asep item tebel", "ketindihan", a ceiling "melendut" over an exam hall,
"ta' sadar", "banjir orderan", a rumoured crack asked about, greetings with a praise word).
The sixth pair: ``intent_fresh21.csv`` (people who rarely write online: phonetic spelling,
Osing and Tengger words, voice-to-text) first scored 0.783 / 0.800 / 1 / 2 and
``intent_fresh22.csv`` (calm, formal letters) 0.817 / 0.767 / 2 / 3 (a drill named far from
a real emergency, "namun ... benar-benar terjadi", a complaint closing with a wish, Javanese
"mutah mencret", an app called "Cak Takon", "tadi subuh", "nyala lagi" of a fire).
The seventh pair: ``intent_fresh23.csv`` (a month's random sample; the same words in an
emergency and in something harmless) first scored 0.883 / 0.817 / 3 / 0 and
``intent_fresh24.csv`` (30 pairs that share their words and differ in label) 0.783 / 0.767 /
1 / 0 (complaints about spam in the comments read as spam, "ati ku kebakaran", "bikin
kesetrum", a child swept away "sudah ketemu dlm keadaan selamat").

Sixty-seven more sets were written after the rules' last round and never tuned on: fresh25-29
in five styles (a regency's Instagram, a call centre's WhatsApp, X mentions, village
Facebook, tense and context), fresh30-33 as complaint-portal messages (long, polite,
follow-ups, terse app reports), fresh34-37 (a city's Instagram and Facebook, a rainy
season's hotline, X replies with sarcasm, village offices in Javanese), fresh38-41 (live
stream comments, speech-to-text voice notes, community figures' letters, X messages in
English), fresh42-43 (hazard reports, most of them not emergencies), fresh44-47 (rarer
emergencies, Madurese and Osing, elderly writers, follow-ups), fresh48-51 (health,
crime, weather, children and schools), fresh52-55 (Madurese, Javanese, calm formal
reports, English), fresh56-59 (English, and English mixed with Indonesian) and fresh60-63
(several problems in one message, humour and irony, travellers' English, farmers,
fishermen and pesantren), fresh64-67 (Instagram comments, community info groups,
structured portal reports, mothers and PKK cadres) and fresh68-75 (Suroboyoan, SMS
abbreviations, elderly Facebook writers, emergencies buried in long multi-issue messages,
non-native English, Madurese, rainy-season hazard reports, two-to-twelve-word replies) and
fresh76-79 (emergencies buried in portal letters and village WhatsApp messages, tense and
negation in informal Indonesian, hazard reports in Javanese) and fresh80-83 (reports on
behalf of others, Indonesian-English code-mixing, the time of an event, badly typed
messages) and fresh84-87 (hazard reports in English, threats and crime, Madurese messages
with a buried emergency, Javanese krama letters) and fresh88-91 (English messages with a
buried emergency, Javanese krama and ngoko, plain words of children and the elderly,
follow-ups in a conversation): their one score is their floor. They
are also what the learned kind/urgency model was measured on before it learned from them
(``tests/classify/test_intent_model.py``, docs/classify.md).

Two labels were corrected after scoring, both praise written as "other" ("videonya keren",
"mantap jiwa"). All are the project's own writing, not evaluation data. These floors are
the rules' (``ADUAN_CLASSIFY_INTENT=rules``); the default reading is the learned model's."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.classify.config import load_config
from services.classify.rules import RuleSet

DATA = Path(__file__).parents[2] / "services" / "classify" / "sentences"
RULES = RuleSet(load_config())


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _score(name: str) -> tuple[float, float, list[str], list[str]]:
    rows = _rows(name)
    results = [RULES.apply(r["text"]) for r in rows]
    kind = sum(r["kind"] == res.kind for r, res in zip(rows, results, strict=True)) / len(rows)
    urgency = sum(r["urgency"] == res.urgency for r, res in zip(rows, results, strict=True))
    false = [
        r["text"]
        for r, res in zip(rows, results, strict=True)
        if res.urgency == "emergency" and r["urgency"] != "emergency"
    ]
    missed = [
        r["text"]
        for r, res in zip(rows, results, strict=True)
        if r["urgency"] == "emergency" and res.urgency != "emergency"
    ]
    return kind, urgency / len(rows), false, missed


def test_the_sets_are_large_enough_and_cover_every_kind_and_urgency() -> None:
    tuned, held = _rows("intent_sentences.csv"), _rows("intent_holdout.csv")
    assert len(tuned) >= 300 and len(held) >= 100
    kinds = {"complaint", "question", "aspiration", "praise", "spam", "political", "other"}
    for rows in (tuned, held):
        assert {r["kind"] for r in rows} == kinds
        assert {r["urgency"] for r in rows} == {"emergency", "high", "normal", "low"}
    assert not {r["text"] for r in tuned} & {r["text"] for r in held}


def test_tuned_set_regression_floor() -> None:
    kind, urgency, false, missed = _score("intent_sentences.csv")
    assert kind >= 0.98, kind  # measured 0.994
    assert urgency >= 0.96, urgency  # measured 0.975
    assert not false, false
    assert not missed, missed


@pytest.mark.parametrize("name", ["intent_fresh.csv", "intent_fresh2.csv"])
def test_sets_written_after_the_rules_floor(name: str) -> None:
    kind, urgency, false, missed = _score(name)
    assert kind >= 0.95, kind
    assert urgency >= 0.85, urgency
    assert not false and not missed, (false, missed)


def test_set_scored_once_and_never_tuned_on() -> None:
    kind, urgency, false, missed = _score("intent_fresh3.csv")
    assert kind >= 0.95, kind  # first and only score 0.956
    assert urgency >= 0.85, urgency  # 0.882
    assert not missed, missed
    assert len(false) <= 1, false


@pytest.mark.parametrize(
    "name", ["intent_fresh4.csv", "intent_fresh5.csv", "intent_fresh6.csv", "intent_fresh7.csv"]
)
def test_sets_scored_once_then_fixed_floor(name: str) -> None:
    kind, urgency, false, missed = _score(name)
    assert kind >= 0.95, kind  # after fixes 0.971 / 0.967 / 0.980 / 0.980
    assert urgency >= 0.92, urgency  # 0.971 / 0.967 / 0.980 / 0.940
    assert not false and not missed, (false, missed)


@pytest.mark.parametrize(
    ("name", "kind_floor", "urgency_floor"),
    [
        ("intent_fresh8.csv", 0.95, 0.93),  # after fixes 0.983 / 0.967
        ("intent_fresh9.csv", 0.92, 0.90),  # 0.950 / 0.933
        ("intent_fresh10.csv", 0.93, 0.86),  # 0.950 / 0.883
        ("intent_fresh11.csv", 0.96, 0.91),  # 0.983 / 0.933
        ("intent_fresh12.csv", 0.93, 0.93),  # 0.950 / 0.950
        ("intent_fresh13.csv", 0.96, 0.93),  # 0.983 / 0.950
        ("intent_fresh14.csv", 0.86, 0.83),  # 0.883 / 0.850
        ("intent_fresh15.csv", 0.86, 0.93),  # 0.883 / 0.950
        ("intent_fresh16.csv", 0.96, 0.90),  # 0.983 / 0.917
        ("intent_fresh17.csv", 0.91, 0.91),  # 0.933 / 0.933
        ("intent_fresh18.csv", 0.90, 0.91),  # 0.917 / 0.933
        ("intent_fresh19.csv", 0.88, 0.85),  # 0.900 / 0.867
        ("intent_fresh20.csv", 0.85, 0.81),  # 0.867 / 0.833
        ("intent_fresh21.csv", 0.81, 0.85),  # 0.833 / 0.867
        ("intent_fresh22.csv", 0.93, 0.85),  # 0.950 / 0.867
        ("intent_fresh23.csv", 0.86, 0.81),  # 0.883 / 0.833
        ("intent_fresh24.csv", 0.85, 0.83),  # 0.867 / 0.850
        # written after the rules' last round and never tuned on: their one score
        ("intent_fresh25.csv", 0.88, 0.83),  # 0.900 / 0.850
        ("intent_fresh26.csv", 0.86, 0.88),  # 0.883 / 0.900
        ("intent_fresh27.csv", 0.83, 0.85),  # 0.850 / 0.867
        ("intent_fresh28.csv", 0.80, 0.81),  # 0.817 / 0.833
        ("intent_fresh29.csv", 0.85, 0.83),  # 0.867 / 0.850
        ("intent_fresh30.csv", 0.93, 0.90),  # 0.950 / 0.917
        ("intent_fresh31.csv", 0.88, 0.76),  # 0.900 / 0.783
        ("intent_fresh32.csv", 0.80, 0.73),  # 0.817 / 0.750
        ("intent_fresh33.csv", 0.98, 0.95),  # 1.000 / 0.967
        ("intent_fresh34.csv", 0.81, 0.81),  # 0.833 / 0.833
        ("intent_fresh35.csv", 0.71, 0.66),  # 0.733 / 0.683
        ("intent_fresh36.csv", 0.80, 0.75),  # 0.817 / 0.767
        ("intent_fresh37.csv", 0.76, 0.73),  # 0.783 / 0.750
        ("intent_fresh38.csv", 0.80, 0.70),  # 0.817 / 0.717
        ("intent_fresh39.csv", 0.73, 0.60),  # 0.750 / 0.617
        ("intent_fresh40.csv", 0.91, 0.78),  # 0.933 / 0.800
        ("intent_fresh41.csv", 0.81, 0.76),  # 0.833 / 0.783
        ("intent_fresh42.csv", 0.91, 0.70),  # 0.933 / 0.717
        ("intent_fresh43.csv", 0.91, 0.60),  # 0.933 / 0.617
        ("intent_fresh44.csv", 0.88, 0.61),  # 0.900 / 0.633
        ("intent_fresh45.csv", 0.71, 0.63),  # 0.733 / 0.650
        ("intent_fresh46.csv", 0.78, 0.73),  # 0.800 / 0.750
        ("intent_fresh47.csv", 0.81, 0.75),  # 0.833 / 0.767
        ("intent_fresh48.csv", 0.83, 0.68),  # 0.850 / 0.700
        ("intent_fresh49.csv", 0.81, 0.69),  # 0.833 / 0.717
        ("intent_fresh50.csv", 0.89, 0.74),  # 0.917 / 0.767
        ("intent_fresh51.csv", 0.81, 0.66),  # 0.833 / 0.683
        ("intent_fresh52.csv", 0.66, 0.58),  # 0.683 / 0.600
        ("intent_fresh53.csv", 0.78, 0.70),  # 0.800 / 0.717
        ("intent_fresh54.csv", 0.79, 0.70),  # 0.817 / 0.717
        ("intent_fresh55.csv", 0.31, 0.55),  # 0.333 / 0.567: English, which the rules barely know
        ("intent_fresh56.csv", 0.36, 0.49),  # 0.383 / 0.517
        ("intent_fresh57.csv", 0.51, 0.58),  # 0.533 / 0.600
        ("intent_fresh58.csv", 0.84, 0.74),  # 0.867 / 0.767
        ("intent_fresh59.csv", 0.36, 0.49),  # 0.383 / 0.517
        ("intent_fresh60.csv", 0.88, 0.78),  # 0.900 / 0.800
        ("intent_fresh61.csv", 0.84, 0.78),  # 0.867 / 0.800
        ("intent_fresh62.csv", 0.25, 0.49),  # 0.267 / 0.517
        ("intent_fresh63.csv", 0.91, 0.78),  # 0.933 / 0.800
        ("intent_fresh64.csv", 0.88, 0.81),  # 0.900 / 0.833
        ("intent_fresh65.csv", 0.86, 0.74),  # 0.883 / 0.767
        ("intent_fresh66.csv", 0.91, 0.83),  # 0.933 / 0.850
        ("intent_fresh67.csv", 0.88, 0.78),  # 0.900 / 0.800
        ("intent_fresh68.csv", 0.81, 0.71),  # 0.833 / 0.733
        ("intent_fresh69.csv", 0.84, 0.79),  # 0.867 / 0.817
        ("intent_fresh70.csv", 0.83, 0.74),  # 0.850 / 0.767
        ("intent_fresh71.csv", 0.94, 0.71),  # 0.967 / 0.733
        ("intent_fresh72.csv", 0.54, 0.54),  # 0.567 / 0.567: English
        ("intent_fresh73.csv", 0.68, 0.61),  # 0.700 / 0.633
        ("intent_fresh74.csv", 0.88, 0.66),  # 0.900 / 0.683
        ("intent_fresh75.csv", 0.91, 0.83),  # 0.933 / 0.850
        ("intent_fresh76.csv", 0.93, 0.74),  # 0.950 / 0.767
        ("intent_fresh77.csv", 0.84, 0.66),  # 0.867 / 0.683
        ("intent_fresh78.csv", 0.93, 0.81),  # 0.950 / 0.833
        ("intent_fresh79.csv", 0.79, 0.49),  # 0.817 / 0.517
        ("intent_fresh80.csv", 0.89, 0.79),  # 0.917 / 0.817
        ("intent_fresh81.csv", 0.88, 0.78),  # 0.900 / 0.800
        ("intent_fresh82.csv", 0.84, 0.74),  # 0.867 / 0.767
        ("intent_fresh83.csv", 0.71, 0.61),  # 0.733 / 0.633
        ("intent_fresh84.csv", 0.29, 0.28),  # 0.317 / 0.300: English hazard reports
        ("intent_fresh85.csv", 0.73, 0.51),  # 0.750 / 0.533
        ("intent_fresh86.csv", 0.89, 0.64),  # 0.917 / 0.667
        ("intent_fresh87.csv", 0.68, 0.56),  # 0.700 / 0.583
        ("intent_fresh88.csv", 0.43, 0.46),  # 0.450 / 0.483: English
        ("intent_fresh89.csv", 0.74, 0.64),  # 0.767 / 0.667
        ("intent_fresh90.csv", 0.78, 0.63),  # 0.800 / 0.650
        ("intent_fresh91.csv", 0.89, 0.76),  # 0.917 / 0.783
    ],
)
def test_sets_written_without_reading_the_rules_floor(
    name: str, kind_floor: float, urgency_floor: float
) -> None:
    kind, urgency, false, missed = _score(name)
    assert kind >= kind_floor, kind
    assert urgency >= urgency_floor, urgency
    # left as scored: a wall leaning over market traders after a tremor, told in Javanese
    # (read as `high`), a pupil beaten "hampir tiap hari" (read as an emergency; a habit
    # after the trigger is more often who is at risk: "mau ambruk, tiap pagi anak lewat"),
    # a billboard leaning over waiting drivers "sebelum roboh" (read as `normal`), a
    # missing girl described 10 words after "ilang" (read as `normal`: "jam 4 sore" alone
    # would make "HP anak saya hilang jam 3" an emergency)
    # fresh20: the missing girl and a second keyword-free report; fresh22: a noise "seperti
    # bom meledak", thanks for a drowned child found, food poisoning "mengalami muntah"
    allowed = {
        "intent_fresh8.csv": 0,
        "intent_fresh9.csv": 0,
        "intent_fresh20.csv": 2,
        "intent_fresh22.csv": 3,
        "intent_fresh25.csv": 1,
        "intent_fresh26.csv": 2,
        "intent_fresh28.csv": 3,
        "intent_fresh32.csv": 2,
        "intent_fresh35.csv": 2,
        "intent_fresh36.csv": 2,
        # fresh38-43, written for emergencies in words the rules lack (speech-to-text
        # Javanese, calm letters, English) and for hazards that are not emergencies
        "intent_fresh38.csv": 6,
        "intent_fresh39.csv": 8,
        "intent_fresh40.csv": 4,
        "intent_fresh41.csv": 5,
        "intent_fresh42.csv": 4,
        "intent_fresh43.csv": 10,
        # fresh44-47: rarer emergencies (sea, mountain, factory, crowd), Madurese and Osing,
        # elderly writers, follow-ups in a conversation
        "intent_fresh44.csv": 6,
        "intent_fresh45.csv": 10,
        "intent_fresh46.csv": 5,
        "intent_fresh47.csv": 4,
        # fresh48-51: health, crime, weather, children and schools
        "intent_fresh48.csv": 7,
        "intent_fresh49.csv": 4,
        "intent_fresh50.csv": 5,
        "intent_fresh51.csv": 5,
        # fresh52-55: Madurese, Javanese, calm formal reports, English
        "intent_fresh52.csv": 13,
        "intent_fresh53.csv": 9,
        "intent_fresh54.csv": 6,
        "intent_fresh55.csv": 9,
        "intent_fresh56.csv": 10,  # fresh56-59: English and English mixed with Indonesian
        "intent_fresh57.csv": 8,
        "intent_fresh58.csv": 6,
        "intent_fresh59.csv": 10,
        # fresh60-63: several problems in one message, humour and irony, travellers'
        # English, farmers, fishermen and pesantren
        "intent_fresh60.csv": 6,
        "intent_fresh61.csv": 6,
        "intent_fresh62.csv": 10,
        "intent_fresh63.csv": 6,
        # fresh64-67: Instagram comments, community info groups, structured portal reports,
        # mothers and PKK cadres
        "intent_fresh64.csv": 3,
        "intent_fresh65.csv": 4,
        "intent_fresh66.csv": 6,
        "intent_fresh67.csv": 6,
        # fresh68-75: Suroboyoan, SMS abbreviations, elderly Facebook writers, emergencies
        # buried in long multi-issue messages, non-native English, Madurese, rainy-season
        # hazard reports, two-to-twelve-word replies
        "intent_fresh68.csv": 5,
        "intent_fresh69.csv": 3,
        "intent_fresh70.csv": 4,
        "intent_fresh71.csv": 9,
        "intent_fresh72.csv": 9,
        "intent_fresh73.csv": 8,
        "intent_fresh74.csv": 6,
        "intent_fresh75.csv": 5,
        # fresh76-79: emergencies buried in portal letters and in village WhatsApp messages,
        # tense and negation in informal Indonesian, hazard reports in Javanese
        "intent_fresh76.csv": 9,
        "intent_fresh77.csv": 8,
        "intent_fresh78.csv": 3,
        "intent_fresh79.csv": 9,
        # fresh80-83: reports on behalf of others (RT heads, teachers, nurses, drivers),
        # Indonesian-English code-mixing, the time of an event, badly typed messages
        "intent_fresh80.csv": 4,
        "intent_fresh81.csv": 5,
        "intent_fresh82.csv": 2,
        "intent_fresh83.csv": 8,
        # fresh84-87: hazard reports in English, threats and crime, Madurese messages with
        # a buried emergency, Javanese krama letters
        "intent_fresh84.csv": 10,
        "intent_fresh85.csv": 11,
        "intent_fresh86.csv": 11,
        "intent_fresh87.csv": 12,
        # fresh88-91: English messages with a buried emergency, Javanese krama and ngoko,
        # plain words of children and the elderly, follow-ups in a conversation
        "intent_fresh88.csv": 11,
        "intent_fresh89.csv": 9,
        "intent_fresh90.csv": 8,
        "intent_fresh91.csv": 6,
    }.get(name, 1)
    # (fresh23: "terjebak 2 jam di Porong" behind roadworks)
    assert len(false) + len(missed) <= allowed, (false, missed)


def test_held_out_set_floor() -> None:
    kind, urgency, false, missed = _score("intent_holdout.csv")
    assert kind >= 0.95, kind  # measured 0.981
    assert urgency >= 0.95, urgency
    assert len(false) <= 1 and not missed, (false, missed)


def test_a_fix_with_belum_between_is_not_done() -> None:
    """ "sudah sebulan belum diganti": the "sudah" dates the wait, the "belum" says no fix."""
    evidence = RULES.apply("mobil sampah kelurahan rusak sudah sebulan belum diganti").evidence
    assert not any(e.startswith("kind:solved") for e in evidence), evidence
    assert "kind:solved=1" in RULES.apply("mobil sampah kelurahan sudah diganti").evidence


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # the issue's own examples
        ("mantap min, got di jalan kami sudah dikeruk, sekarang gak banjir lagi", "praise"),
        ("min, perpanjang SIM bisa di mal pelayanan publik gak?", "question"),
        ("bener gak sih besok ada pemadaman seharian?", "question"),
        ("harapan kami ada posyandu lansia di RW 7", "aspiration"),
        ("jangan pilih petahana, cuma janji manis", "political"),
        ("kapan jalan kami diperbaiki? sudah rusak dari 2023", "complaint"),
        (
            "PKL berjualan di trotoar depan stasiun, pejalan kaki terpaksa jalan di aspal",
            "complaint",
        ),
        ("butuh dana cepat? pinjaman tanpa jaminan cair 1 jam, hubungi wa kami", "spam"),
        # thanks at the end of a complaint are politeness, not praise
        ("jalan berlubang di depan SD 2, mohon segera ditambal. terima kasih", "complaint"),
        ("terima kasih admin, tapi sampah di gang kami masih belum diangkut", "complaint"),
        # a complaint about gambling ads is a complaint, not spam
        ("ada iklan judi online di spanduk jembatan penyeberangan, mohon diturunkan", "complaint"),
        ("petugas loketnya tidak ramah dan lama", "complaint"),
        # a problem fixed in its own clause is news of the fix
        ("terima kasih, jembatan yang retak di dusun kami sudah diperbaiki", "praise"),
        ("beneran ada kebakaran di terminal? rame di grup", "question"),
        ("semoga ke depan ada sistem peringatan banjir untuk warga", "aspiration"),
        ("petugasnya jutek, saya nanya baik2 malah dibentak", "complaint"),
        # sarcastic praise over a live hazard is a complaint; a robber caught is news to praise
        ("mantul pemkot, lampu merah perempatan pasar udah mati 3 hari. top banget", "complaint"),
        ("mantap polisi, pelaku begal di jalan tol akhirnya ketangkep", "praise"),
        ("promo APAR 3kg, jangan nunggu kebakaran baru nyesel, order sekarang", "spam"),
        ("usul pak wali, jam buka taman diperpanjang sampai malam, biar lebih puas", "aspiration"),
        (
            "terima kasih pak camat, lampu PJU di gang kami yang mati sebulan akhirnya nyala lagi",
            "praise",
        ),
        ("Info: jalan Ijen sudah surut, motor sudah bisa lewat", "other"),
        ("sugeng enjing min, udan terus seminggu iki, jaga kesehatan", "other"),
        ("selamat hari jadi kota surabaya, semoga makin keren", "other"),
        # a complaint about spam asks for its removal
        (
            "tiap postingan pemkab ada komen slot gacor terus, tolong dihapus dan diblokir",
            "complaint",
        ),
        (
            "saya ingin menyampaikan keluhan atas petugas loket yang membentak, semoga ke depan"
            " lebih santun",
            "complaint",
        ),
        # the only topic word is a figure of speech
        ("panas banget hari ini kayak kebakaran, jangan lupa minum air", "other"),
    ],
)
def test_kind_is_read_from_the_whole_message(text: str, kind: str) -> None:
    result = RULES.apply(text)
    assert result.kind == kind, result.evidence


@pytest.mark.parametrize(
    ("text", "urgency"),
    [
        ("ada kebakaran minggu lalu di gang 3, sudah ditangani damkar", "low"),
        ("kebakaran minggu lalu sudah ditangani, tapi puingnya belum diangkut", "normal"),
        ("kapan ada simulasi kebakaran buat warga?", "low"),
        ("kemarin banjir tapi sudah surut, lumpurnya masih numpuk di jalan", "normal"),
        ("jalan ini tidak banjir tapi rusak parah", "normal"),
        ("kalau ada pohon tumbang lapornya ke mana?", "low"),
        ("sungai meluap masuk rumah, ada ibu hamil gak bisa keluar", "emergency"),
        ("jembatan bambu mau ambruk, tiap pagi anak sekolah lewat", "emergency"),
        ("murid2 muntah setelah makan siang dari sekolah", "emergency"),
        ("ada orang kesetrum kabel yang jatuh", "emergency"),
        ("bau gas dari rumah kosong sebelah, takut meledak", "emergency"),
        ("tiang listrik miring mau roboh ke jalan", "emergency"),
        ("sering terjadi kecelakaan di tikungan ini, mohon dipasang rambu", "high"),
        ("sudah 3 kali ada begal di jalan ini, mohon dipasang lampu", "high"),
        ("bulan ini sudah 3x ada begal di jalan tembus, mohon dipasang lampu", "high"),
        ("tanah di samping rumah bergerak, dinding dapur retak, nenek masih di dalam", "emergency"),
        ("jembatan kayu di dusun kami mau ambrol, anak2 masih di seberang", "emergency"),
        ("There's a man collapsed at the station, not breathing, please send help", "emergency"),
        ("perahu nelayan kebalik di dekat dermaga, 3 orang belum kelihatan", "emergency"),
        ("klaim santunan almarhum bapak yang meninggal laka bulan maret belum cair", "normal"),
        ("air sudah masuk rumah sebatas dada, ada nenek belum bisa keluar", "emergency"),
        ("lampu merah perempatan pasar sudah 5 hari mati, tinggal nunggu ada yg ketabrak", "high"),
        ("pohon trembesi di jalan diponegoro depan SD sudah miring ke arah kabel", "high"),
        # a fix the message reports does not cover a hazard a "tapi" sets apart
        (
            "makasih pak lurah jalan desa udh dicor. tp skrg tanggul kali sebelah lapangan retak"
            " panjang, kalo hujan deres lagi bisa jebol ke rumah warga",
            "high",
        ),
        ("asep item tebel keluar dari ruko sebelah, ada orang teriak di jendela atas", "emergency"),
        ("truk guling di jalan raya, pengendara motor ketindihan bak nya", "emergency"),
        ("plafon aula melendut dan bunyi krek krek, mahasiswa masih ujian di dalam", "emergency"),
        ("mbah saya ta' sadar dari tadi, ambulan desa tidak diangkat", "emergency"),
        ("alhamdulillah hari ini banjir orderan dari pagi", "low"),
        ("tagihan PDAM bulan ini bikin kesetrum, mohon dicek meterannya", "normal"),
        ("warga sak RT mutah mencret kabeh mari mangan nasi kotak pengajian", "emergency"),
        ("matur nuwun damkar, kebakaran toko tadi subuh cepet dipadamkan, gak ada korban", "low"),
        # a drill named far from the emergency, with a "namun" between, does not defuse it
        (
            "bulan lalu kami ikut simulasi banjir, namun sore ini benar-benar terjadi, seorang"
            " anak terseret arus sungai dan belum ditemukan",
            "emergency",
        ),
        # a feared hazard makes what follows it conditional
        ("tanggul retak, kalau hujan deras bisa jebol dan desa kami kebanjiran", "high"),
        # a drill or a hoax denied: the message insists it is real
        ("ini bukan simulasi, gedung sekolah kebakaran, anak2 masih di dalam", "emergency"),
        ("bukan hoax, ada orang tenggelam di waduk sekarang", "emergency"),
        # a time that closes the clause still dates the emergency
        ("kebakaran rumah di gang 4 tadi malam, puingnya masih menutup jalan", "normal"),
        ("pohon beringin di depan balai desa miring ke jalan, mohon dipotong", "high"),
        ("air pdam di rumah saya mati sudah 5 hari", "high"),
        # weeks ago, but the hazard goes on
        ("minggu lalu ada warga digigit anjing liar, sekarang masih berkeliaran", "high"),
        # ... but "kaya mau roboh" (looks about to fall) is no comparison
        ("pohon trembesi di depan SD kaya mau roboh, akarnya kebongkar", "high"),
        # an age is no time: the child is still missing
        ("anak sy umur 6 th ilang dr td siang di alun2, mohon bantuannya", "emergency"),
        # "sekarang sudah surut" ends the matter instead of keeping it live
        ("pas banjir kemarin air sepaha di rumah, skrg udh surut, minta bantuan bersih2",
         "normal"),
        # Javanese: "wes surut" is done, "kecemplung" and "kintir" are drownings
        ("banjir kemarin wes surut, tp lumpurnya masih tebel di jalan", "normal"),
        ("bocah kintir kali brantas pas adus, warga lg nyari", "emergency"),
        # a near miss or yesterday's crash is a hazard to fix, not an emergency to run to
        ("parkir truk nutup pandangan, tadi hampir saja terjadi laka", "high"),
        ("kemarin sore ada laka di tikungan, jalannya licin ketutup pasir", "high"),
        ("tadi ada kecelakaan, korban sudah dibawa ke rumah sakit, lampu jalannya mati", "normal"),
    ],
)  # fmt: skip
def test_urgency_reads_tense_negation_and_the_informal_ways_of_reporting(
    text: str, urgency: str
) -> None:
    result = RULES.apply(text)
    assert result.urgency == urgency, result.evidence
    if urgency in ("emergency", "high"):
        assert result.urgency_reason  # every urgency keeps its reason


@pytest.mark.parametrize(
    "text",
    [
        "panas bgt hari ini rek, kaya lagi kebakaran",
        "katanya ada kebakaran di pasar turi td pagi, bener ta min?",
        "film carok yg lagi viral itu seru bgt",
        "wkwk motorku tenggelam dlm cicilan",
        "ada anak tenggelam? gak ada kok, hoax itu",
    ],
)
def test_figures_of_speech_news_asked_about_films_and_jokes_are_no_emergency(text: str) -> None:
    result = RULES.apply(text)
    assert result.urgency != "emergency", result.evidence
    assert any(e.startswith("urgency-defused:") for e in result.evidence), result.evidence


def test_a_defused_trigger_says_why_in_the_evidence() -> None:
    result = RULES.apply("kebakaran minggu lalu sudah ditangani, puingnya belum diangkut")
    assert any(e.startswith("urgency-defused:fire:") for e in result.evidence), result.evidence


def test_only_complaints_carry_urgency() -> None:
    assert RULES.apply("terima kasih damkar, api semalam cepat dipadamkan").urgency == "low"


@pytest.mark.parametrize(
    ("text", "kind", "urgency"),
    [
        # weeks ago is over, whatever is still the case; "sejak" makes it still going on
        ("bulan lalu gudang kami kebakaran, sampai sekarang asuransi belum cair", "complaint",
         "normal"),
        ("banjir sejak minggu lalu, air sepinggang masih di dalam rumah, nenek kami terjebak",
         "complaint", "emergency"),
        # a hazard that hurt someone yesterday, or could give way, is still urgent
        ("jalan di tikungan licin berlubang, kemarin pengendara jatuh", "complaint", "high"),
        ("tanggul retak, kalau hujan deras bisa jebol", "complaint", "high"),
        # ... but the same words in a question do not make it a complaint
        ("kalau tanggul jebol, mengungsi ke mana?", "question", "low"),
        # greetings with topic words ask for nothing; a greeting before a problem is a complaint
        ("selamat hari kesehatan nasional untuk para dokter dan perawat", "other", "low"),
        ("selamat pagi min, jalan depan rumah berlubang besar", "complaint", "normal"),
        # a past problem with its fix reported is news; broken again is a complaint
        ("kebocoran pipa air kemarin sudah ditangani petugas", "other", "low"),
        ("sudah diperbaiki minggu lalu tapi lampunya mati lagi", "complaint", "normal"),
    ],
)  # fmt: skip
def test_time_hazards_and_greetings(text: str, kind: str, urgency: str) -> None:
    result = RULES.apply(text)
    assert (result.kind, result.urgency) == (kind, urgency), result.evidence
