"""The keyword rule layer: a configuration compiled into one phrase index, applied in one pass.

Every phrase of the configuration (category keywords, subcategory cues, message-kind cues,
urgency triggers) is tokenized with the same normalizer as the text and indexed by its first
word, both as written and as its Sastrawi root. Matching a message is then one walk over its
tokens with a dict lookup per position: cost grows with the text, not with the size of the
lexicon, which keeps the rules far cheaper than the model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress

from services.classify.config import ClassifyConfig
from services.classify.intent import IntentRules
from services.classify.text import stem, stems, tokens, tokens_and_roots

# group names inside the phrase index (message kind and urgency: services/classify/intent.py)
CAT, SUB = "cat", "sub"


@dataclass(frozen=True)
class Target:
    group: str
    label: str  # category id, "category/sub", message kind, or "level/reason"
    weight: float
    phrase: str
    root: str = ""  # the phrase's Sastrawi roots: "genangan" and "tergenang" count once


# A multi-word phrase's continuation, as the match loop needs it: (compare roots rather than
# tokens?, number of words still to come, table from those words to the phrases they
# complete). The table's key is the next word itself when one word is left, else the tuple
# of words. One dict lookup per table replaces comparing the tail of every candidate phrase:
# "jalan" alone starts dozens of phrases.
_Tail = tuple[bool, int, dict[object, tuple[int, ...]]]


@dataclass
class PhraseIndex:
    """First word → [(remaining words, phrase id)], by surface form and by root.

    Matching uses two per-token memos compiled from these on first sight of a token (a
    token's root never changes, so they are exact): the phrases that are the token alone,
    and the tails of the longer phrases it starts. Both are bounded in practice by the
    stream's vocabulary and emptied whenever a phrase is added."""

    surface: dict[str, list[tuple[tuple[str, ...], int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    stemmed: dict[str, list[tuple[tuple[str, ...], int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    targets: list[list[Target]] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)
    # every token seen -> the one-word phrases it is (usually none: an empty tuple)
    _singles: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # only the tokens that start a longer phrase -> the tails of those phrases
    _tails: dict[str, tuple[_Tail, ...]] = field(default_factory=dict)

    def add(self, phrase: str, target: Target) -> None:
        if phrase in self._ids:
            self.targets[self._ids[phrase]].append(target)
            return
        surface_only = phrase.startswith("=")
        words = tokens(phrase.removeprefix("="))
        if not words:
            raise ValueError(f"keyword {phrase!r} has no word characters")
        pid = len(self.targets)
        self._ids[phrase] = pid
        self._singles.clear()
        self._tails.clear()
        self.targets.append([target])
        self.surface[words[0]].append((tuple(words[1:]), pid))
        if not surface_only:
            roots = [stem(w) for w in words]
            self.stemmed[roots[0]].append((tuple(roots[1:]), pid))

    def _learn(self, tok: str, root: str) -> None:
        """Compile the candidates of one new token (by its surface form and by its root)."""
        singles: list[int] = []
        tails: dict[tuple[bool, int], dict[object, list[int]]] = {}
        for by_root, cands in (
            (False, self.surface.get(tok, ())),
            (True, self.stemmed.get(root, ())),
        ):
            for rest, pid in cands:
                if not rest:
                    singles.append(pid)
                else:
                    key: object = rest[0] if len(rest) == 1 else rest
                    tails.setdefault((by_root, len(rest)), {}).setdefault(key, []).append(pid)
        self._singles[tok] = tuple(singles)
        if tails:
            self._tails[tok] = tuple(
                (by_root, k, {key: tuple(pids) for key, pids in table.items()})
                for (by_root, k), table in tails.items()
            )

    def match(self, toks: Sequence[str], roots: Sequence[str]) -> set[int]:
        """Ids of the phrases that occur in the token list (by surface) or its roots.

        One-word phrases, most of the hits, are collected in one C-level pass over the
        tokens; Python only visits the positions whose token starts a longer phrase."""
        singles = self._singles
        try:  # filter: most tokens have no one-word phrase, skip their empty tuples in C
            found = set(chain.from_iterable(filter(None, map(singles.__getitem__, toks))))
        except KeyError:  # a token never seen before
            for tok, root in zip(toks, roots, strict=True):
                if tok not in singles:
                    self._learn(tok, root)
            found = set(chain.from_iterable(filter(None, map(singles.__getitem__, toks))))
        tails = self._tails
        n = len(toks)
        for i in compress(range(n), map(tails.__contains__, toks)):
            for by_root, k, table in tails[toks[i]]:
                if i + k < n:
                    seq = roots if by_root else toks
                    pids = table.get(seq[i + 1] if k == 1 else tuple(seq[i + 1 : i + 1 + k]))
                    if pids:
                        found.update(pids)
        return found


@dataclass(frozen=True)
class RuleResult:
    """What the rules saw in one text. ``scores`` is per category in config order."""

    category: str
    subcategory: str | None
    scores: tuple[float, ...]
    kind: str
    urgency: str
    urgency_reason: str | None
    evidence: tuple[str, ...]
    tokens: tuple[str, ...]
    roots: tuple[str, ...] = ()

    @classmethod
    def _build(
        cls,
        category: str,
        subcategory: str | None,
        scores: tuple[float, ...],
        kind: str,
        urgency: str,
        urgency_reason: str | None,
        evidence: tuple[str, ...],
        tokens: tuple[str, ...],
        roots: tuple[str, ...],
    ) -> RuleResult:
        """The same instance as ``RuleResult(...)`` at half the cost, for the hot path.

        The frozen dataclass ``__init__`` calls ``object.__setattr__`` once per field (~1.4 µs
        for nine); this installs the finished instance dict in one call. Equality, hashing,
        repr and immutability come from the class and are unchanged."""
        self = _new_object(cls)
        _set_attribute(
            self,
            "__dict__",
            {
                "category": category,
                "subcategory": subcategory,
                "scores": scores,
                "kind": kind,
                "urgency": urgency,
                "urgency_reason": urgency_reason,
                "evidence": evidence,
                "tokens": tokens,
                "roots": roots,
            },
        )
        return self


_new_object = object.__new__
_set_attribute = object.__setattr__


class RuleSet:
    """A compiled :class:`ClassifyConfig`; immutable and safe to share between tasks."""

    def __init__(self, config: ClassifyConfig) -> None:
        self.config = config
        self.categories = list(config.categories)
        self._cat_pos = {c: i for i, c in enumerate(self.categories)}
        # per agency kind, the positions of its categories (config order): the classifier
        # looks a model's chosen kind up here instead of testing every category per message
        self.kind_positions: dict[str, tuple[int, ...]] = {}
        for i, c in enumerate(self.categories):
            kind = config.agency_kind_of(c)
            self.kind_positions[kind] = (*self.kind_positions.get(kind, ()), i)
        self.index = PhraseIndex()
        for cid, cat in config.categories.items():
            for phrase, weight in cat.keywords.items():
                root = " ".join(stems(tokens(phrase.removeprefix("="))))
                self.index.add(phrase, Target(CAT, cid, weight, phrase, root))
            for sub, cues in cat.subcategories.items():
                for phrase in cues:
                    self.index.add(phrase, Target(SUB, f"{cid}/{sub}", 1.0, phrase))
        self.intent = IntentRules(config)
        self._compile_effects()

    def _compile_effects(self) -> None:
        """Per phrase id, what a hit adds, as plain tuples the scoring loop unpacks without
        attribute lookups or group tests: most hits are category keywords and nothing else,
        so the other groups are only looked at for the ids in ``_non_cat``."""
        targets = self.index.targets
        self._cat_effects = [
            tuple((self._cat_pos[t.label], t.root, t.weight) for t in ts if t.group == CAT)
            for ts in targets
        ]
        self._keyword_evidence = [
            tuple((self._cat_pos[t.label], f"keyword:{t.phrase}") for t in ts if t.group == CAT)
            for ts in targets
        ]
        self._sub_labels = [tuple(t.label for t in ts if t.group == SUB) for ts in targets]
        self._non_cat = frozenset(
            pid for pid, ts in enumerate(targets) if any(t.group != CAT for t in ts)
        )

    def apply(self, text: str) -> RuleResult:
        toks, roots = tokens_and_roots(text)
        pids = sorted(self.index.match(toks, roots))  # sorted: evidence order is fixed
        weights: dict[int, dict[str, float]] = {}  # category position -> root -> weight
        subs: dict[str, int] = {}
        cat_effects, non_cat = self._cat_effects, self._non_cat
        for pid in pids:
            for pos, root, weight in cat_effects[pid]:
                seen = weights.setdefault(pos, {})
                if weight > seen.get(root, 0.0):
                    seen[root] = weight
            if pid in non_cat:
                for label in self._sub_labels[pid]:
                    subs[label] = subs.get(label, 0) + 1
        decay = self.config.decay
        scores = [0.0] * len(self.categories)
        best, best_score = -1, 0.0
        for pos in sorted(weights):  # ascending: on a tie the first configured category wins
            seen = weights[pos]
            if len(seen) == 1:  # the usual case: _diminishing's sum of one, without its loop
                (weight,) = seen.values()
                score = scores[pos] = 0.0 + weight
            else:
                score = scores[pos] = _diminishing(seen.values(), decay)
            if score > best_score:
                best, best_score = pos, score
        if best >= 0 and best_score >= self.config.min_score:
            pos = best
        else:
            pos = self._cat_pos[self.config.fallback_category]
        category = self.categories[pos]
        subcategory = None
        if subs:
            prefix = category + "/"
            cands = [(n, lab) for lab, n in subs.items() if lab.startswith(prefix)]
            subcategory = max(cands)[1].removeprefix(prefix) if cands else None
        intent = self.intent.read(toks, roots, text, best_score)
        kw = self._keyword_evidence
        evidence = [ev for pid in pids for p, ev in kw[pid] if p == pos]
        evidence += intent.evidence
        return RuleResult._build(  # noqa: SLF001  # its fast constructor, this module's own
            category,
            subcategory,
            tuple(scores),
            intent.kind,
            intent.urgency,
            intent.reason,
            tuple(evidence),
            toks,
            roots,
        )


def _diminishing(weights: Iterable[float], decay: float) -> float:
    """Sum of weights, strongest first, each next one counting ``decay`` times the previous:
    a long letter that lists six school words must not outvote the one decisive term."""
    total, factor = 0.0, 1.0
    for w in sorted(weights, reverse=True):
        total += w * factor
        factor *= decay
    return total
