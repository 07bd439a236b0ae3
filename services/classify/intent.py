"""What a message is (its kind) and how urgent it is, read from the whole message.

Topic words say what a message is about, not what the citizen wants: "mantap min, got di
jalan kami sudah dikeruk, sekarang gak banjir lagi" names a drain and a flood and is thanks;
"min, perpanjang SIM bisa di MPP gak?" names a service and is a question; "kapan jalan kami
diperbaiki? sudah rusak dari 2023" is a question in form and a complaint in substance. So
the cues of the configuration (``kinds``, ``context``, ``urgency``) are found with their
positions, and each is read against the words next to it:

- a *problem* word ("rusak", "mampet") is an open problem, unless negated ("tidak banjir"),
  solved ("gak banjir lagi", "sudah tidak bau"), inside a condition or an inquiry ("kalau
  KTP hilang ...", "apakah ada pemadaman ...") or about a plan ("besok ada pemadaman");
- a *fix* word ("diperbaiki", "dikeruk") after "sudah" is a done fix, after "belum"/"tidak"
  an open problem, after a request ("mohon", "kapan") the complaint's demand;
- an urgency trigger counts unless negated, hypothetical, a drill or a plan, next to a past
  time ("kebakaran minggu lalu"), or in a message that reports the fix ("sudah surut",
  "sudah ditangani") -- and an ongoing word next to it ("masih", "sekarang", "sejak")
  keeps it live, unless it was weeks ago ("tahun lalu ... kebakaran, sampai sekarang
  bantuan belum ada": the emergency is over, the aid is what goes on); nor does it count
  after a comparison ("panas kaya lagi kebakaran"), as news asked about ("denger2 ada
  kebakaran ..., bener ta?"), in a film or the news, or beside laughter or "hoax";
- a high-level trigger (a hazard) stays a risk in a complaint when past or feared ("kemarin
  ada motor jatuh", "kalau hujan bisa jebol"): only a negation, a drill, a fix or a wish
  defuse it;
- a drill or hoax denied is none ("ini bukan simulasi"); a count of times is a habit ("sudah
  3x ada begal"); a problem fixed in its own clause is news ("tanggul yang retak ... sudah
  diperbaiki"), and a fix does not cover what a "tapi" sets apart after it.

Then: spam and political noise need strong cues that outweigh the complaint evidence;
praise is praise/thanks with a done fix and no open problem; a wish or a question without an
open problem is an aspiration or a question; any open problem, demanded fix or complaint act
makes a complaint; topic words alone are a complaint only when nothing else speaks.
Urgency belongs to complaints; every other kind is ``low``.

Pure and cheap: the phrases are probed for every word and every word pair in C, Python only
runs at the (few) positions where a phrase starts; each rule reads a handful of positions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, pairwise
from operator import itemgetter

from services.classify.config import ClassifyConfig
from services.classify.text import stem, tokens

KIND, CTX, URG = 0, 1, 2
_NEG_WINDOW = 3  # "tidak pernah dipotong", "gak ada yang nolong"
_HYP_WINDOW = 5  # "kalau ada pohon tumbang ...", "apakah ada pemadaman listrik ..."
_PAST_WINDOW = 4  # "kebakaran pasar tahun lalu", "kemarin rumah saya kebakaran"
_LONG_PAST_WINDOW = 6  # "tiga tahun lalu jembatan desa kami hanyut"
# an emergency's own time may close its clause: "kebakaran gudang di ajung tadi malam"
_URGENT_PAST_WINDOW = 6
_FIX_REACH = 5  # "tanggul yang retak di desa morowudi sudah diperbaiki": the problem, fixed
_DRILL_REACH = (
    15  # "simulasi kebakaran dan evakuasi di RSUD Bangil, jangan panik kalau dengar sirine"
)
_WISH_WINDOW = 10  # "semoga ke depan ada layanan buat lapor kucing sama anjing liar"
_ONGOING_WINDOW = 3  # "air masih naik", "banjir dari kemarin belum surut"
_STRONG = 3.0
_LEVEL_ORDER = {"emergency": 0, "high": 1, "low": 2}
_TRIGGER_WEIGHT = {"emergency": 3.0, "high": 2.0, "low": 0.0}


@dataclass(frozen=True, slots=True)
class Intent:
    kind: str
    urgency: str
    reason: str | None
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    """What one phrase means: (group, label, weight) targets, plus two flags for overlaps."""

    targets: tuple[tuple[int, str, float], ...]
    group_word: bool = False  # only a word of some "all" urgency rule ("tiang", "jalan")
    any_trigger: bool = False  # an urgency trigger phrase on its own ("pohon tumbang")
    kinds: tuple[tuple[str, float], ...] = ()
    context: tuple[str, ...] = ()
    urgency: tuple[tuple[int, int], ...] = ()  # (rule rank, group; -1 for `any`)

    def __post_init__(self) -> None:
        urg = [label for g, label, _ in self.targets if g == URG]
        any_trigger = any(lab.endswith(":-1") for lab in urg)
        fields = {
            "any_trigger": any_trigger,
            "group_word": len(urg) == len(self.targets) and not any_trigger,
            "kinds": tuple((lab, w) for g, lab, w in self.targets if g == KIND),
            "context": tuple(lab for g, lab, _ in self.targets if g == CTX),
            "urgency": tuple((int(r), int(g)) for r, _, g in (lab.partition(":") for lab in urg)),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)


# a phrase's first two words -> (the two-word phrase's entry, [(number of further words,
# {those words (a string for one, else a tuple): entry})], longest first)
_Pair = tuple["_Entry | None", list[tuple[int, dict[object, "_Entry"]]]]


class IntentRules:
    """The ``kinds``, ``context`` and ``urgency`` sections of a config, compiled."""

    def __init__(self, config: ClassifyConfig) -> None:
        self.question_mark = 0.0
        entries: dict[str, list[tuple[int, str, float]]] = {}
        for kind, weighted in config.kinds.items():
            for phrase, weight in weighted.items():
                if phrase == "?":
                    self.question_mark = weight
                else:
                    entries.setdefault(phrase, []).append((KIND, kind, weight))
        for key, phrases in config.context.items():
            for phrase in phrases:
                entries.setdefault(phrase, []).append((CTX, key, 1.0))
                if (
                    key != "negation"
                    and phrase[:2] == "di"
                    and len(phrase) > 5
                    and " " not in phrase
                ):
                    # informal writing splits the passive prefix: "di angkut", "di perbaiki"
                    entries.setdefault("di " + phrase[2:], []).append((CTX, key, 1.0))
        # urgency rules by rank (emergency first); label "rank:group" (group -1 for `any`)
        self.rules: list[tuple[str, str, int, int]] = []  # (level, reason, groups, within)
        self._partners: list[list[dict[str, list[tuple[str, ...]]]]] = []
        for level in ("emergency", "high", "low"):
            for rule in config.urgency.get(level, []):
                rank = len(self.rules)
                self.rules.append((level, rule.reason, len(rule.all), rule.within))
                for phrase in rule.any:
                    entries.setdefault(phrase, []).append((URG, f"{rank}:-1", 1.0))
                # the first group is scanned for (keep it the rarer words); the others are only
                # looked for near one of its hits
                for phrase in rule.all[0] if rule.all else ():
                    entries.setdefault(phrase, []).append((URG, f"{rank}:0", 1.0))
                self._partners.append(
                    [_word_table(group) for group in rule.all[1:]] if rule.all else []
                )
        # phrases that normalize to the same words ("makasih", "terima kasih") are one entry
        merged: dict[tuple[bool, tuple[str, ...]], list[tuple[int, str, float]]] = {}
        for phrase, targets in entries.items():
            by_root = phrase.startswith("~")
            words = tuple(tokens(phrase.removeprefix("=").removeprefix("~")))
            if not words:
                raise ValueError(f"phrase {phrase!r} has no word characters")
            if by_root:
                words = tuple(stem(w) for w in words)
            merged.setdefault((by_root, words), []).extend(
                t for t in targets if t not in merged.get((by_root, words), ())
            )
        # One-word phrases by their word; longer ones by their first two words, each with the
        # entry of the two-word phrase and [(words to come, {those words: entry})]. Both are
        # probed for every position in C (map over the words and over the word pairs), so
        # Python only runs where a phrase may start: about half as often as by first word,
        # since "di", "tidak", "ada" start many phrases but rarely one that is there.
        self._singles: tuple[dict[str, _Entry], dict[str, _Entry]] = ({}, {})
        self._pairs: tuple[dict[tuple[str, str], _Pair], dict[tuple[str, str], _Pair]] = ({}, {})
        for (by_root, words), targets in merged.items():
            entry = _Entry(tuple(targets))
            if len(words) == 1:
                self._singles[by_root][words[0]] = entry
                continue
            pair = (words[0], words[1])
            two, longer = self._pairs[by_root].get(pair, (None, []))
            if len(words) == 2:
                two = entry
            else:
                k = len(words) - 2
                tails = next((t for j, t in longer if j == k), None)
                if tails is None:
                    tails = {}
                    longer.append((k, tails))
                    longer.sort(key=lambda jt: -jt[0])
                tails[words[2] if k == 1 else words[2:]] = entry
            self._pairs[by_root][pair] = (two, longer)

    # --- matching --------------------------------------------------------------------------
    def hits(self, toks: Sequence[str], roots: Sequence[str]) -> list[tuple[int, int, _Entry]]:
        """(start, end, entry) of every phrase in the text, in text order; a phrase inside a
        longer one is dropped ("rawan kecelakaan" is not "kecelakaan").

        Most hits are one-word phrases by their surface form (on the dev data 8 of a
        message's 10): found in text order, they cannot overlap, so a message with no other
        hit (a quarter of them) skips the sort and the overlap pass, and the others are
        sorted by start only (see below)."""
        n = len(toks)
        singles, pairs = self._singles, self._pairs
        found = [(i, i + 1, singles[0][toks[i]]) for i in _where(singles[0], toks, n)]
        longer: list[tuple[int, int, _Entry]] = []  # surface pairs first
        if pairs[0] and n > 1:
            self._pair_hits(pairs[0], toks, n, longer)
        by_root: list[tuple[int, int, _Entry]] = []
        if singles[1]:
            by_root = [(i, i + 1, singles[1][roots[i]]) for i in _where(singles[1], roots, n)]
        if pairs[1] and n > 1:  # root pairs: back to the general order of the first version
            found += longer
            found += by_root
            self._pair_hits(pairs[1], roots, n, found)
            found.sort(key=_start_longest_first)
        elif longer or by_root:
            # Sorting by start alone is stable: at one start the pairs (longest first) stay
            # before the surface single, which stays before the root single; the order the
            # two-key sort of all hits gives, without a Python key call per hit.
            longer += found
            longer += by_root
            found = longer
            found.sort(key=_start)
        else:
            return found  # in text order already, and single words cannot overlap
        kept: list[tuple[int, int, _Entry]] = []
        # sorted by start, longest first: a hit lies inside an earlier one iff that one ends
        # at or after it (same spans do not occur: one entry per word sequence and table)
        reach = reach_trigger = -1
        for h in found:
            end, entry = h[1], h[2]
            # a word of an "all" rule only yields to a trigger phrase ("tumbang" to "pohon
            # tumbang"), not to a context phrase ("jalan" in "menutup jalan")
            if end <= (reach_trigger if entry.group_word else reach):
                continue
            kept.append(h)
            if end > reach:
                reach = end
            if entry.any_trigger and end > reach_trigger:
                reach_trigger = end
        return kept

    @staticmethod
    def _pair_hits(
        pairs: dict[tuple[str, str], _Pair],
        seq: Sequence[str],
        n: int,
        found: list[tuple[int, int, _Entry]],
    ) -> None:
        """Append the phrases of two or more words that start in ``seq``, in text order and
        longest first at a position. ``pairwise`` reuses its tuple when ``map`` drops it, so
        probing every word pair allocates nothing; a hit's pair is built again."""
        for i in compress(range(n - 1), map(pairs.__contains__, pairwise(seq))):
            two, longer = pairs[seq[i], seq[i + 1]]
            for k, tails in longer:
                if i + 2 + k <= n:
                    key = seq[i + 2] if k == 1 else tuple(seq[i + 2 : i + 2 + k])
                    entry = tails.get(key)
                    if entry is not None:
                        found.append((i, i + 2 + k, entry))
            if two is not None:
                found.append((i, i + 2, two))

    # --- reading ---------------------------------------------------------------------------
    def read(self, toks: Sequence[str], roots: Sequence[str], text: str, topic: float) -> Intent:
        hits = self.hits(toks, roots)
        ctx: dict[str, list[int]] = {}
        ctx_end: dict[int, int] = {}
        kinds: dict[str, float] = {}
        urg: list[tuple[int, int, int]] = []  # (rank, group, position)
        unpraise = 0.0  # "tidak ramah", "kurang puas": praise words negated are complaints
        praised: list[tuple[int, float]] = []
        for start, end, entry in hits:
            for label in entry.context:
                ctx.setdefault(label, []).append(start)
                ctx_end[start] = end
            for label, weight in entry.kinds:
                if label == "aspiration" and weight >= _STRONG:
                    ctx.setdefault("wish", []).append(start)  # "semoga ada ...", "usul ..."
                if label != "praise":
                    kinds[label] = kinds.get(label, 0.0) + weight
                elif any(start - 2 <= p < start for p in ctx.get("negation", ())):
                    unpraise += 1
                else:
                    praised.append((start, weight))
            for rank, g in entry.urgency:
                urg.append((rank, g, start))
        n = len(toks)
        # spans of time and counts of times, found in one pass (probed in C)
        for i in compress(range(n), map(_SPANS_AND_TIMES.__contains__, toks)):
            if toks[i] in _TIMES:  # a count of times is a habit: "sudah 3x ada begal", "ping 3"
                if (i and _is_count(toks[i - 1])) or (i + 1 < n and _is_count(toks[i + 1])):
                    ctx.setdefault("habitual", []).append(i)
            elif i and toks[i - 1].isdigit():  # "sudah 4 bulan", "2 tahun": long-standing
                if i > 1 and toks[i - 2] in _AGE:
                    continue  # "anak saya umur 6 tahun hilang": an age, not a time
                ctx.setdefault("past", []).append(i)
                ctx.setdefault("duration", []).append(i)
            elif toks[i] == "tahun" and i + 1 < n and _YEAR.fullmatch(toks[i + 1]):
                ctx.setdefault("past", []).append(i)  # "kebakaran tahun 2019"
                ctx.setdefault("long_past", []).append(i)
        if "drill" in ctx and "negation" in ctx:
            _drop_denied_drills(ctx)
        reader = _Context(ctx, toks, text)
        open_problem, solved, demanded = reader.problems(ctx_end, n)
        open_problem += unpraise
        if praised:  # praise before "tapi"/"namun" introduces the complaint that follows
            last_contrast = max(ctx.get("contrast", (-1,)))
            kept = sum(w for p, w in praised if p > last_contrast)
            if kept:
                kinds["praise"] = kept
        if n and toks[0] == "info" and "?" not in text:
            kinds["other"] = kinds.get("other", 0.0) + _STRONG  # "Info: jalan ... sudah surut"
        if self.question_mark and "?" in text:
            kinds["question"] = kinds.get("question", 0.0) + self.question_mark
            end = n - 1 if n > 1 and toks[-1] in _VOCATIVES else n  # "... hoax ya min?"
            if end and (toks[end - 1] in _TAGS or "tidak" in toks[end - 3 : end]):
                kinds["question"] += 1.0  # "... bisa di MPP gak?", "... gak tahun ini?"
        live, defused, risks = self._urgency(urg, reader, solved)
        for level, _ in live:
            open_problem += _TRIGGER_WEIGHT[level]
        # thanks that open the message (or make up most of a short one) are meant; at the end
        # of a long complaint they are politeness ("... mohon bantuannya, terima kasih")
        # (positions are appended in text order: the first is the least)
        thanked = ctx.get("thanks")
        thanks = thanked is not None and (thanked[0] <= 3 or n <= 12)
        if "thanks" in ctx and solved and not open_problem:
            thanks = True  # thanks anywhere for a done fix: "... sudah lancar, makasih"
        kind = decide(
            kinds,
            open_problem,
            solved,
            demanded,
            thanks,
            "create" in ctx,
            "request" in ctx,
            topic,
            drill="drill" in ctx,
            figurative=not live and any(why in _FIGURATIVE for _, why in defused),
        )
        signals = {**kinds, "open_problem": open_problem, "solved": solved}
        evidence = [f"kind:{k}={v:g}" for k, v in sorted(signals.items()) if v]
        level, reason = "normal", None
        if kind == "complaint":
            if live:  # ordered by level: emergency, high, low
                level, reason = live[0]
            elif risks:
                level, reason = "high", risks[0]
        else:
            level = "low"
        if reason:
            evidence.append(f"urgency:{level}:{reason}")
        evidence += [f"urgency-defused:{self.rules[r][1]}:{why}" for r, why in defused]
        return Intent(kind, level, reason, tuple(evidence))

    def _urgency(
        self, urg: list[tuple[int, int, int]], reader: _Context, solved: float
    ) -> tuple[list[tuple[str, str]], list[tuple[int, str]], list[str]]:
        """(level, reason) of the live triggers, most urgent first, (rank, why) of the
        defused ones, and the reasons of high-level triggers that stay risks although past,
        feared or recurring (they make a complaint urgent, not a message a complaint). An
        emergency that recurs ("sering terjadi kecelakaan") is a hazard to fix, not one to
        run to: it counts as ``high``."""
        if not urg:
            return [], [], []
        combos: dict[int, list[list[int]]] = {}
        toks = reader.toks
        for rank, g, pos in urg:
            if g < 0:
                combos.setdefault(rank, []).append([pos])
                continue
            within = self.rules[rank][3]
            lo = max(0, pos - within)
            window = toks[lo : pos + within + 1]
            partners = [_find(table, window, lo) for table in self._partners[rank]]
            if all(p is not None for p in partners):
                combos.setdefault(rank, []).append([pos, *(p for p in partners if p is not None)])
        live: list[tuple[str, str]] = []
        defused: list[tuple[int, str]] = []
        risks: list[str] = []
        wished = "wish" in reader.ctx
        for rank in sorted(combos):
            level, reason = self.rules[rank][:2]
            if (
                level == "high"
                and wished
                and all(
                    any(reader.near("wish", p, _WISH_WINDOW) for p in combo)
                    for combo in combos[rank]
                )
            ):
                # a hazard inside a wish is what the wish is about ("semoga ke depan ada
                # peringatan dini banjir"); an emergency never is: it is reported whatever
                # the words before it
                defused.append((rank, "wish"))
                continue
            # a combination is defused when any of its words is ("pohon ... takut roboh")
            whys = [
                next((w for w in map(reader.defused, combo, [solved] * len(combo)) if w), None)
                for combo in combos[rank]
            ]
            if any(w is None for w in whys):
                live.append((level, reason))
            elif level == "emergency" and "habitual" in whys:
                live.append(("high", f"recurring: {reason}"))
                defused.append((rank, "habitual"))
            else:
                defused.append((rank, str(whys[0])))
                if level == "high" and not all(
                    any(reader.defused(p, solved, hazard=True) for p in combo)
                    for combo in combos[rank]
                ):
                    risks.append(reason)  # a fall yesterday, a dike that could burst
        live.sort(key=lambda lr: _LEVEL_ORDER[lr[0]])
        return live, defused, risks


def _drop_denied_drills(ctx: dict[str, list[int]]) -> None:
    """A drill denied is none ("ini bukan simulasi", "bukan latihan"): the message insists
    the emergency is real."""
    negations = ctx["negation"]
    real = [p for p in ctx["drill"] if not _near(negations, p, 2, 0)]
    if real:
        ctx["drill"] = real
    else:
        del ctx["drill"]


def _restored(toks: Sequence[str], pos: int) -> bool:
    """A good state "lagi"/"kembali": restored ("nyala lagi", "normal kembali")."""
    return pos + 1 < len(toks) and toks[pos + 1] in _AGAIN


def _is_count(word: str) -> bool:
    return word.isdigit() or word in _COUNTS


def _start_longest_first(hit: tuple[int, int, _Entry]) -> tuple[int, int]:
    return hit[0], -hit[1]


_start = itemgetter(0)


def _where(table: dict[str, _Entry], seq: Sequence[str], n: int) -> Iterator[int]:
    """Positions of ``seq`` whose word is a key of ``table`` (probed in C)."""
    return compress(range(n), map(table.__contains__, seq))


def _near(positions: Sequence[int], pos: int, before: int, after: int) -> bool:
    """Some position within ``before`` words before ``pos`` to ``after`` words after it,
    other than ``pos`` itself. A loop, not ``any()`` over a generator: about twice as fast
    for the one to three positions a list usually has."""
    lo, hi = pos - before, pos + after
    for p in positions:  # noqa: SIM110
        if lo <= p <= hi and p != pos:
            return True
    return False


def _word_table(phrases: list[str]) -> dict[str, list[tuple[str, ...]]]:
    table: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        words = tuple(tokens(phrase.removeprefix("=")))
        if words:
            table.setdefault(words[0], []).append(words)
    return table


def _find(
    table: dict[str, list[tuple[str, ...]]], window: Sequence[str], offset: int
) -> int | None:
    """Position of the first phrase of ``table`` in ``window`` (plus ``offset``), or None."""
    for i in compress(range(len(window)), map(table.__contains__, window)):
        for words in table[window[i]]:
            if tuple(window[i : i + len(words)]) == words:
                return offset + i
    return None


_SPANS = frozenset({"minggu", "bulan", "tahun", "pekan"})
_YEAR = re.compile(r"(19|20)\d\d")
_VOCATIVES = frozenset({"min", "admin", "pak", "bu", "kak", "gan", "mas", "mbak", "bos"})
_TAGS = frozenset(
    {"tidak", "belum", "ya", "kah", "kan", "nggak", "dong", "ta", "tah", "nggih", "yo"}
)
_TIMES = frozenset({"kali", "ping", "kalinya", "x"})  # "3x kejadian begal"
_SPANS_AND_TIMES = _SPANS | _TIMES
_COUNTS = frozenset(
    {"dua", "tiga", "empat", "lima", "beberapa", "berkali", "tigo", "pindo", "papat"}
)
_AGAIN = frozenset({"lagi", "kembali"})
_FIGURATIVE = frozenset({"figure of speech", "joke or hoax"})
_AGE = frozenset({"umur", "usia", "berumur", "berusia"})
# "panas kaya lagi kebakaran": an emergency right after a comparison is a figure of speech
# ("kayaknya", "sepertinya" -- it seems -- are not comparisons; "seperti" is left out, it
# also lists examples: "bencana seperti banjir bandang"); "kaya mau roboh" (looks about to
# fall) is no comparison, nor are hazards ("licin seperti ini membahayakan")
_SIMILE = frozenset(
    {"kaya", "kayak", "koyok", "koyo", "kek", "bagaikan", "ibarat", "laksana", "umpama"}
)
_MODAL = frozenset({"mau", "hampir", "nyaris", "akan"})
# laughter ("wkwk", "hahaha") or a hoax called out: nobody reports an emergency that way
# (substring tests on the lowered text, once per message: an IGNORECASE alternation regex
# cost ~40 us on a long message, a tenth of the whole classification)
_JOKE = ("wkwk", "haha", "hehe", "xixi", "awok", "hoax", "hoaks")
# "denger2 ada kebakaran di pasar, bener ta?": news heard and asked about, not a report
_HEARSAY = frozenset(
    {
        "katanya",
        "kabarnya",
        "dengar",
        "denger",
        "infonya",
        "berita",
        "beritanya",
        "konon",
        "beredar",
        "viral",
        # "beneran kah ada kebakaran di pasar? rame di tiktok": asking whether it is true
        "beneran",
        "bener",
        "benar",
        "betul",
        "betulkah",
        "emang",
        "emangnya",
    }
)
# an emergency named as what a film, a video or the news is about is no report
_MEDIA = frozenset({"film", "video", "berita", "sinetron", "beritanya", "filmnya"})


class _Context:
    """Positions of the context words of one message and the window tests on them."""

    def __init__(self, ctx: dict[str, list[int]], toks: Sequence[str], text: str = "") -> None:
        self.ctx = ctx
        self.toks = toks
        self.text = text
        self._joke: bool | None = None

    def near(self, key: str, pos: int, before: int, after: int = 0) -> bool:
        positions = self.ctx.get(key)
        return positions is not None and _near(positions, pos, before, after)

    def negated(self, pos: int) -> bool:
        return self.near("negation", pos, _NEG_WINDOW) or self.near("not_yet", pos, 2)

    def problems(self, ends: dict[int, int], n: int) -> tuple[float, float, float]:
        """(open problem, solved, demanded fix) evidence of the message.

        The tests are :meth:`near`'s, on position lists fetched once: most context words
        are absent from most messages (on the dev data 7 of 10 probes), so an empty list
        short-cuts without a call."""
        open_problem = solved = demanded = past_problems = 0.0
        toks, get = self.toks, self.ctx.get
        fix, good = get("fix", ()), get("good", ())
        negation, not_yet, done = get("negation", ()), get("not_yet", ()), get("done", ())
        hypothetical, inquiry = get("hypothetical", ()), get("inquiry", ())
        wish, future, past = get("wish", ()), get("future", ()), get("past", ())
        ongoing, contrast, duration = get("ongoing", ()), get("contrast", ()), get("duration", ())
        # (done word, fix) pairs: "sudah diperbaiki", to read the problem just before them as
        # fixed. A good state only when restored ("PJU yg mati 2 bulan akhirnya nyala lagi"):
        # in "jangan bikin kecewa, SB ini sudah bagus" the bus is good, not the complaint fixed
        fixed: list[tuple[int, int]] = []
        if done:  # most messages have no done word: nothing to pair
            restored = [q for q in good if _restored(toks, q)]
            fixed = [
                (d, q) for q in (*fix, *restored) if self.done(q) for d in done if q - 3 <= d < q
            ]
        for pos in get("problem", ()):
            end = ends.get(pos, pos + 1)
            if negation and _near(negation, pos, _NEG_WINDOW, 0):
                if "lagi" in toks[end : end + 2] or (done and _near(done, pos, _NEG_WINDOW + 1, 0)):
                    solved += 1  # "gak banjir lagi", "sudah tidak bau"
                continue
            if (hypothetical and _near(hypothetical, pos, _HYP_WINDOW, 0)) or (
                inquiry and _near(inquiry, pos, _HYP_WINDOW + 1, 0)
            ):
                continue
            if wish and _near(wish, pos, _WISH_WINDOW, 0):
                continue  # "semoga ada program perbaikan rumah tidak layak huni": the wish
            if future and _near(future, pos, 3, 3):
                continue
            if "lagi" in toks[end : end + 2] or (contrast and _near(contrast, pos, 4, 0)):
                open_problem += 1  # "rusak lagi", "tapi jalannya rusak": open again
                continue
            if fixed and any(pos < d and q <= pos + _FIX_REACH for d, q in fixed):
                continue  # "tanggul yang retak ... sudah diperbaiki": counted as solved below
            if (
                past
                and _near(past, pos, _PAST_WINDOW, _PAST_WINDOW)
                and not (ongoing and _near(ongoing, pos, _ONGOING_WINDOW, _ONGOING_WINDOW))
            ):
                if duration and _near(duration, pos, _PAST_WINDOW, _PAST_WINDOW):
                    open_problem += 0.5  # "mati sudah 2 minggu": a long-standing problem
                else:
                    past_problems += 1
                continue
            open_problem += 1
        requests = get("request", ())
        for pos in fix:
            if done and self.done(pos):
                solved += 1
            elif self.negated(pos):
                open_problem += 2
            elif requests and requests[0] < pos:  # positions ascend: the first is the least
                demanded += 2
        for pos in good:
            # "sudah lancar", "sekarang bersih" -- but "masih nyala" is a live wire, not a fix
            if self.negated(pos):
                open_problem += 2  # "belum cair", "sudah tidak lancar"
            elif (done and self.done(pos)) or "sekarang" in toks[max(0, pos - 3) : pos]:
                solved += 1
        for pos in contrast:
            if "masih" in toks[pos + 1 : pos + 5]:
                open_problem += 1  # "sudah dipotong, tapi batangnya masih di jalan"
        if not_yet:
            fixes = [*fix, *good]
            for pos in not_yet:
                if (
                    pos + 1 >= n
                    or toks[pos + 1] in _TAGS
                    or (pos + 2 == n and toks[pos + 1] in _VOCATIVES)
                ):
                    continue  # "... sudah bisa masuk SD belum ya?", "... udh ketemu blm min?"
                if any(pos < p <= pos + 3 for p in fixes):
                    continue  # counted with the fix
                open_problem += 1
        if not solved:  # a past problem counts half, unless the message reports its fix
            open_problem += 0.5 * past_problems  # "bocor kemarin sudah ditangani": news
        return open_problem, solved, demanded

    def drill(self, pos: int) -> bool:
        """A drill named near the trigger with no "namun" between: "simulasi banjir bulan
        lalu, namun sore ini benar-benar terjadi: seorang anak terseret arus" is real."""
        drills = self.ctx.get("drill")
        if not drills:
            return False
        contrast = self.ctx.get("contrast", ())
        return any(
            abs(d - pos) <= _DRILL_REACH
            and not any(min(d, pos) < c < max(d, pos) for c in contrast)
            for d in drills
        )

    def done(self, pos: int) -> bool:
        """A fix or good state reported done: "sudah diperbaiki", not "sudah setahun belum
        diganti" (the "belum" between says it is not)."""
        return self.near("done", pos, 3) and not self.near("not_yet", pos, 2)

    def long_ago(self, pos: int) -> bool:
        """Weeks or more ago ("minggu lalu", "dulu") next to ``pos`` and not the start of
        something still going on ("sejak minggu lalu"): an emergency that old is over,
        whatever else the message says is still the case (the aid, the rubble)."""
        since = self.ctx.get("since", ())
        return any(
            abs(p - pos) <= _LONG_PAST_WINDOW and not any(p - 2 <= s < p for s in since)
            for p in self.ctx.get("long_past", ())
        )

    def joking(self) -> bool:
        """Laughter or "hoax" anywhere in the message (computed once)."""
        if self._joke is None:
            # "ini bukan hoax": said to be believed
            low = self.text.lower().replace("bukan hoax", "").replace("bukan hoaks", "")
            self._joke = any(w in low for w in _JOKE)
        return self._joke

    def still(self, pos: int) -> bool:
        """An ongoing word ("masih", "sekarang", "sejak") next to ``pos`` -- unless it opens
        the end of the matter: "skrg udh surut", "sekarang sudah padam" say it is over."""
        positions = self.ctx.get("ongoing")
        if positions is None:
            return False
        done = self.ctx.get("done", ())
        lo, hi = pos - _ONGOING_WINDOW, pos + _ONGOING_WINDOW
        for p in positions:
            if lo <= p <= hi and p != pos and not any(p < d <= p + 2 for d in done):
                return True
        return False

    def defused(self, pos: int, solved: float, hazard: bool = False) -> str | None:
        """Why an urgency trigger at ``pos`` does not count, or None when it is live.

        A ``hazard`` (a high-level trigger) is a risk that stays until it is fixed: a fall
        yesterday ("kemarin ada motor jatuh") or one feared ("kalau hujan bisa jebol") is
        the reason to hurry, so only a drill, a negation or a reported fix defuse it."""
        near = self.near
        if self.drill(pos):
            return "drill"
        if near("negation", pos, 2):
            return "negated"
        ongoing = self.still(pos)
        toks = self.toks
        if (
            not hazard
            and pos
            and (toks[pos - 1] in _SIMILE or (pos > 1 and toks[pos - 2] in _SIMILE))
            and toks[pos] not in _MODAL
            and toks[pos - 1] not in _MODAL
        ):
            return "figure of speech"  # "kaya lagi kebakaran"; not "kaya mau roboh"
        if not hazard and self.joking():
            return "joke or hoax"  # "wkwk motorku tenggelam dlm cicilan", "... hoax itu"
        # the message's fix covers the trigger unless a "tapi" stands between: "jalan desa
        # udh dicor. tp skrg tanggul ... retak" is a new matter
        handled = solved and not ongoing and not near("contrast", pos, 8)
        if "?" in self.text and not _HEARSAY.isdisjoint(toks[max(0, pos - 6) : pos]):
            return "hearsay"  # "katanya tanggul kali porong retak? hoax apa bukan"
        if hazard:
            if handled:
                return "handled"
            # weeks ago and over; not "minggu lalu ada anak digigit, skrg masih berkeliaran"
            return "past" if self.long_ago(pos) and not ongoing else None
        if near("hypothetical", pos, _HYP_WINDOW) or near("inquiry", pos, _HYP_WINDOW):
            return "hypothetical"
        if not _MEDIA.isdisjoint(toks[max(0, pos - 3) : pos]):
            return "news or film"  # "film carok yg lagi viral", "video kebakaran tahun lalu"
        if near("future", pos, 3, 3) and not ongoing:
            return "planned"
        if handled:
            return "handled"
        if self.long_ago(pos):  # "tahun lalu rumah saya kebakaran, sampai sekarang ..."
            return "past"
        if near("past", pos, _URGENT_PAST_WINDOW, _URGENT_PAST_WINDOW) and not ongoing:
            return "past"
        # "sering terjadi kecelakaan", "wis ping 3 ono begal" (not after it: "mau ambruk, tiap
        # pagi anak sekolah lewat" is who is at risk, not a habit)
        if near("habitual", pos, _PAST_WINDOW):
            return "habitual"
        return None


def decide(
    kinds: dict[str, float],
    open_problem: float,
    solved: float,
    demanded: float,
    thanks: bool,
    create: bool,
    request: bool,
    topic: float,
    *,
    drill: bool = False,
    figurative: bool = False,
) -> str:
    """The message kind from its evidence (see the module docstring for the reasons)."""
    complaint = open_problem + demanded + kinds.get("complaint", 0.0)
    spam = kinds.get("spam", 0.0)
    if spam >= _STRONG and spam >= complaint + 1:
        return "spam"
    political = kinds.get("political", 0.0)
    if political >= _STRONG and political >= complaint + 1:
        return "political"
    praise = kinds.get("praise", 0.0)
    question = kinds.get("question", 0.0)
    if (
        open_problem == 0
        and demanded == 0
        # "usul ..., biar lebih puas olahraganya": the wish, not the praise word
        and ((praise >= 2 and praise >= kinds.get("aspiration", 0.0)) or (thanks and solved))
        and kinds.get("other", 0.0) < _STRONG  # "selamat hari jadi ..., semoga makin keren"
        and (question < _STRONG or praise >= _STRONG)
    ):
        return "praise"
    if praise >= _STRONG and praise > complaint and (solved or open_problem < 2):
        return "praise"  # not "mantul pemprov, lampu merah udah mati 4 hari ... top banget"
    aspiration = kinds.get("aspiration", 0.0)
    if aspiration and create:
        aspiration += 1
    if open_problem == 0 and demanded == 0:
        # "saya ingin menyampaikan keluhan ... semoga ke depan petugas lebih santun": told
        if (
            aspiration >= _STRONG
            and aspiration >= question
            and aspiration > kinds.get("complaint", 0.0)
        ):
            return "aspiration"
        if question >= 2 and (question >= _STRONG or kinds.get("complaint", 0.0) < _STRONG):
            return "question"  # not "jutek bgt, nanya baik2 malah dibentak": the asking is told
    other = kinds.get("other", 0.0)
    if other >= _STRONG and open_problem == 0 and demanded == 0 and question < 2:
        return "other"  # greetings, "izin share": topic words in them ask for nothing
    if open_problem == 0 and demanded <= 2 and not kinds.get("complaint") and question >= 5:
        return "question"  # "mau tanya, kalau kena banjir bisa minta bantuan ke mana?"
    if open_problem <= 1 and demanded == 0 and kinds.get("complaint", 0) <= 2 and question >= 3.5:
        # "apa saja dokumen untuk ganti KTP rusak?", "izin bertanya, untuk lapor jalan rusak
        # lewat apa?": the problem is the question's topic
        return "question"
    if open_problem or complaint >= 2:
        return "complaint"
    if aspiration >= 2:
        return "aspiration"
    if question >= 2 or (question >= 1 and topic >= 1):
        return "question"
    if figurative and open_problem <= 1 and demanded == 0 and complaint < 2:
        # the topic word was a figure of speech or a joke: "panas kayak kebakaran", "tolong
        # ada kebakaran... di hatiku wkwk"
        return "other"
    if request and topic >= 1:
        return "complaint"  # "mohon dibantu perantingan 5 pohon"
    if thanks or praise >= 1:
        return "praise"
    if (solved or drill) and open_problem == 0 and demanded == 0 and complaint < 2:
        return "other"  # news of a fix or a drill, nothing asked: "kebakaran ... ditangani"
    if topic >= 2 or complaint >= 1:
        return "complaint"
    return "other"
