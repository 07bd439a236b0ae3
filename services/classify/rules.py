"""The keyword rule layer: a configuration compiled into one phrase index, applied in one pass.

Every phrase of the configuration (category keywords, subcategory cues, message-kind cues,
urgency triggers) is tokenized with the same normalizer as the text and indexed by its first
word, both as written and as its Sastrawi root. Matching a message is then one walk over its
tokens with a dict lookup per position: cost grows with the text, not with the size of the
lexicon, which keeps the rules far cheaper than the model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from services.classify.config import ClassifyConfig
from services.classify.text import stem, stems, tokens, tokens_and_roots

# group names inside the phrase index
CAT, SUB, KIND, URG = "cat", "sub", "kind", "urg"


@dataclass(frozen=True)
class Target:
    group: str
    label: str  # category id, "category/sub", message kind, or "level/reason"
    weight: float
    phrase: str
    root: str = ""  # the phrase's Sastrawi roots: "genangan" and "tergenang" count once


@dataclass
class PhraseIndex:
    """First word → [(remaining words, stemmed?, target index)]."""

    surface: dict[str, list[tuple[tuple[str, ...], int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    stemmed: dict[str, list[tuple[tuple[str, ...], int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    targets: list[list[Target]] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)
    # token -> its candidates by surface and by root; a token's root never changes, so this
    # per-token memo is exact. Bounded in practice by the stream's vocabulary.
    _cands: dict[str, list[tuple[tuple[str, ...], int, bool]]] = field(default_factory=dict)

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
        self._cands.clear()
        self.targets.append([target])
        self.surface[words[0]].append((tuple(words[1:]), pid))
        if not surface_only:
            roots = [stem(w) for w in words]
            self.stemmed[roots[0]].append((tuple(roots[1:]), pid))

    def match(self, toks: list[str], roots: list[str]) -> set[int]:
        found: set[int] = set()
        n = len(toks)
        cache = self._cands
        # one pass in a comprehension: positions whose token has candidates or is new
        for i in [i for i, tok in enumerate(toks) if cache.get(tok, True)]:
            tok = toks[i]
            cands = cache.get(tok)
            if cands is None:
                cands = cache[tok] = [
                    *((rest, pid, False) for rest, pid in self.surface.get(tok, ())),
                    *((rest, pid, True) for rest, pid in self.stemmed.get(roots[i], ())),
                ]
            for rest, pid, by_root in cands:
                k = len(rest)
                seq = roots if by_root else toks
                if k == 0 or (i + k < n and tuple(seq[i + 1 : i + 1 + k]) == rest):
                    found.add(pid)
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


class RuleSet:
    """A compiled :class:`ClassifyConfig`; immutable and safe to share between tasks."""

    def __init__(self, config: ClassifyConfig) -> None:
        self.config = config
        self.categories = list(config.categories)
        self._cat_pos = {c: i for i, c in enumerate(self.categories)}
        self.index = PhraseIndex()
        for cid, cat in config.categories.items():
            for phrase, weight in cat.keywords.items():
                root = " ".join(stems(tokens(phrase.removeprefix("="))))
                self.index.add(phrase, Target(CAT, cid, weight, phrase, root))
            for sub, cues in cat.subcategories.items():
                for phrase in cues:
                    self.index.add(phrase, Target(SUB, f"{cid}/{sub}", 1.0, phrase))
        self._question_mark = 0.0
        for kind, phrases in config.kinds.items():
            for phrase, weight in phrases.items():
                if phrase == "?":
                    self._question_mark = weight
                else:
                    self.index.add(phrase, Target(KIND, kind, weight, phrase))
        self._urgency_order: dict[str, int] = {}
        for level, rules in config.urgency.items():
            for rule in rules:
                label = f"{level}/{rule.reason}"
                self._urgency_order.setdefault(label, len(self._urgency_order))
                for phrase in rule.any:
                    self.index.add(phrase, Target(URG, label, 1.0, phrase))

    def apply(self, text: str) -> RuleResult:
        toks, roots = tokens_and_roots(text)
        hits = self.index.match(toks, roots)
        weights: dict[int, dict[str, float]] = {}  # category position -> root -> weight
        evidence_by_cat: dict[str, list[str]] = defaultdict(list)
        subs: dict[str, int] = defaultdict(int)
        kinds: dict[str, float] = defaultdict(float)
        urgent: list[str] = []
        targets, cat_pos = self.index.targets, self._cat_pos
        for pid in sorted(hits):  # sorted: evidence order must not depend on set order
            for t in targets[pid]:
                if t.group == CAT:
                    seen = weights.setdefault(cat_pos[t.label], {})
                    if t.weight > seen.get(t.root, 0.0):
                        seen[t.root] = t.weight
                    evidence_by_cat[t.label].append(t.phrase)
                elif t.group == SUB:
                    subs[t.label] += 1
                elif t.group == KIND:
                    kinds[t.label] += t.weight
                else:
                    urgent.append(t.label)
        decay = self.config.decay
        scores = [0.0] * len(self.categories)
        best, best_score = -1, 0.0
        for pos in sorted(weights):  # ascending: on a tie the first configured category wins
            score = scores[pos] = _diminishing(list(weights[pos].values()), decay)
            if score > best_score:
                best, best_score = pos, score
        if self._question_mark and "?" in text:
            kinds["question"] += self._question_mark
        if best >= 0 and best_score >= self.config.min_score:
            category = self.categories[best]
        else:
            category = self.config.fallback_category
        prefix = category + "/"
        cands = [(n, lab) for lab, n in subs.items() if lab.startswith(prefix)]
        subcategory = max(cands)[1].removeprefix(prefix) if cands else None
        level, reason = "normal", None
        if urgent:
            label = min(urgent, key=self._urgency_order.__getitem__)
            level, reason = label.split("/", 1)
        kind = decide_kind(kinds, best_score)
        evidence = [f"keyword:{p}" for p in evidence_by_cat.get(category, [])]
        evidence += [f"kind:{k}={v:g}" for k, v in sorted(kinds.items())]
        if reason:
            evidence.append(f"urgency:{level}:{reason}")
        return RuleResult(
            category=category,
            subcategory=subcategory,
            scores=tuple(scores),
            kind=kind,
            urgency=level,
            urgency_reason=reason,
            evidence=tuple(evidence),
            tokens=tuple(toks),
            roots=tuple(roots),
        )


def _diminishing(weights: list[float], decay: float) -> float:
    """Sum of weights, strongest first, each next one counting ``decay`` times the previous:
    a long letter that lists six school words must not outvote the one decisive term."""
    total, factor = 0.0, 1.0
    for w in sorted(weights, reverse=True):
        total += w * factor
        factor *= decay
    return total


def decide_kind(kinds: dict[str, float], topic_score: float) -> str:
    """Message kind from cue scores. A complaint is the default whenever a concrete problem
    (a category term) or a complaint cue is present; noise kinds need strong cues and must
    outweigh the complaint cues, because dropping a real complaint is worse than routing noise."""
    complaint = kinds.get("complaint", 0.0) + min(topic_score, 3.0)
    for noise in ("spam", "political"):
        if kinds.get(noise, 0.0) >= 3 and kinds[noise] >= complaint:
            return noise
    praise = kinds.get("praise", 0.0)
    if praise >= 2 and praise > complaint:
        return "praise"
    question = kinds.get("question", 0.0)
    aspiration = kinds.get("aspiration", 0.0)
    if aspiration >= 3 and aspiration >= question and aspiration > complaint - 2:
        return "aspiration"
    if question >= 3 and question > complaint:
        return "question"
    if complaint >= 1:
        return "complaint"
    if question >= 1:
        return "question"
    return "other"
