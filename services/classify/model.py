"""The learned layer: a deployment's own routing history turned into a linear text model.

Why scikit-learn: a well-kept, BSD-licensed library whose sparse TF-IDF and LinearSVC are the
strongest known baseline for short-text topic routing at this data size (thousands of rows),
train in seconds on a CPU, predict tens of thousands of messages per second in batches, and
pickle into a small file. Deep models would need GPUs and far more labelled history.

Features: TF-IDF of normalized words and word bigrams, TF-IDF of Sastrawi roots, TF-IDF of
character 2-5-grams within words (spelling variants and fused words: ``pju``/``pjum``,
``dispendukcapil``/``capil`` share pieces that whole words do not), and the rule layer's score
per agency kind (so the model learns how far to trust each keyword family and
the rules keep working for classes with little history). Class weights are balanced so rare
agencies are not drowned by roads and trees.

The catch-all kind (``subdistrict``: the kelurahan/kecamatan office, which ends up handling a
bit of everything) is not one class among the others. Its rows are roads, trees and documents
that a kelurahan happened to take, so as a class they blur every specialist's boundary. The
specialist model learns from the other rows only, and a separate model sends a message to the
kelurahan only when it is sure (:data:`CATCH_ALL_SIGNALS`). The model file is an artifact of
the deployment (``python -m services.classify.train``), never of the repository.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict, TypeVar

import joblib
import numpy as np
import orjson
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from services.classify.config import AGENCY_KINDS, ClassifyConfig
from services.classify.nb_weights import NB_WEIGHT, blend_nb
from services.classify.rules import RuleResult, RuleSet

# 2: the kelurahan decision may read a multi-class model (``catch_all_signal``); format-1
# files (binary detector) still load and decide as they did, older code refuses format 2
MODEL_FORMAT = 2
READABLE_FORMATS = (1, 2)
KIND_ORDER = tuple(sorted(AGENCY_KINDS))
RULE_FEATURE_SCALE = 0.3  # chosen by 5-fold CV on the dev data (0.3 > 1.0 > none)
AUX_WEIGHT = 0.5
AUX_MIN_COUNT = 10  # topics with fewer rows stay in their agency's "*" class
CATCH_ALL = "subdistrict"
# How a message is sent to the kelurahan, and the default threshold of each signal:
# - "multiclass": a LinearSVC over all agency kinds, kelurahan included; the signal is its
#   kelurahan margin minus the best other kind's margin (ROC AUC 0.884 out of fold). 5-fold
#   CV on the dev data at 0.42: accuracy 0.810, excl. kelurahan 0.879 (0.5: 0.806 / 0.879;
#   0.35: 0.812 / 0.878): the threshold that keeps both closest to 0.81 / 0.88;
# - "detector": a binary LinearSVC, kelurahan rows against the rest (AUC 0.868). At 0.75
#   about 5 in 6 of its decisions are right; 0.798 / 0.880 in the same CV.
# A specialist can forward a complaint it does not own; one parked at the kelurahan tends to
# wait, so neither signal takes a message unless it is fairly sure.
CATCH_ALL_SIGNALS = {"multiclass": 0.42, "detector": 0.75}
CATCH_ALL_SIGNAL = "multiclass"
CATCH_ALL_MARGIN = CATCH_ALL_SIGNALS[CATCH_ALL_SIGNAL]
# character n-grams within words (on by default; ``--no-char-ngrams``): 5-fold CV on the dev
# data, accuracy excl. subdistrict 0.875 -> 0.880, macro-F1 0.655 -> 0.661, for about a
# fifth of the throughput
CHAR_NGRAMS = (3, 4)
CHAR_WEIGHT = 0.6
CHAR_CACHE_MAX = 200_000
# Out-of-fold folds for the confidence calibration (0: none, a softmax of margins instead).
# Training takes about (1 + folds x (folds-1)/folds) times as long.
CALIBRATION_FOLDS = 3  # distinct words remembered; cleared when full (typos are endless)

T = TypeVar("T")


class HistoryError(ValueError):
    """A history file that cannot be learned from; the message names file, row and reason."""


def text_terms(doc: tuple[Sequence[str], Sequence[str]]) -> list[str]:
    """Words, word bigrams and ``~root`` terms of one (tokens, roots) pair: one vocabulary and
    one pass, because per-document overhead dominates vectorizing short texts."""
    toks, roots = doc
    out = [*toks, *(a + "_" + b for a, b in itertools.pairwise(toks))]
    out.extend("~" + r for r in roots)
    return out


def rule_features(results: Sequence[RuleResult], ruleset: RuleSet) -> csr_matrix:
    """log(1 + rule score) per agency kind, in the fixed :data:`KIND_ORDER` so a model stays
    usable when the deployment edits its categories (only their agency kinds matter)."""
    return csr_matrix(rule_scores(results, ruleset))


def rule_scores(results: Sequence[RuleResult], ruleset: RuleSet) -> np.ndarray:
    """:func:`rule_features` as a dense array (messages x agency kinds)."""
    col = {k: i for i, k in enumerate(KIND_ORDER)}
    cat_col = [col[ruleset.config.agency_kind_of(c)] for c in ruleset.categories]
    scores = np.array([r.scores for r in results], dtype=np.float64)
    if results and scores.shape != (len(results), len(cat_col)):
        raise ValueError("rule results of another configuration (category count differs)")
    out = np.zeros((len(results), len(KIND_ORDER)))
    # one column add per category, in category order: each kind's sum adds its categories'
    # scores in the order the former per-message loop did (adding a zero changes nothing)
    for pos, c in enumerate(cat_col if results else ()):
        out[:, c] += scores[:, pos]
    return np.log1p(out) * RULE_FEATURE_SCALE


class _WordGrams:
    """Every word seen so far and its character n-grams, as the rows of one CSR matrix
    (words x n-gram vocabulary, counts) that grows in place: :meth:`TextModel.char_matrix`
    multiplies a batch's messages x words matrix by it, touching only the rows it uses.

    Arrays are int32 (what scipy would convert them to anyway, so nothing is copied per
    batch) and grow by half when full, so the used part is never less than half of them
    (scipy copies a view of an array more than twice its size)."""

    def __init__(self, n_grams: int) -> None:
        self.n_grams = n_grams
        self.clear()

    def clear(self) -> None:
        self.rows: dict[str, int] = {}
        self.indptr = np.zeros(1024, dtype=np.int32)
        self.indices = np.zeros(8192, dtype=np.int32)
        self.counts = np.zeros(8192, dtype=np.float64)

    def add(self, word: str, counts: Counter[int]) -> None:
        """One new word's row: its n-gram ids and counts (in the Counter's order)."""
        row, start = len(self.rows), int(self.indptr[len(self.rows)])
        end = start + len(counts)
        if row + 2 > len(self.indptr):
            self.indptr = _grown(self.indptr, row + 2)
        if end > len(self.indices):
            self.indices, self.counts = _grown(self.indices, end), _grown(self.counts, end)
        self.indices[start:end] = np.fromiter(counts.keys(), np.int32, len(counts))
        self.counts[start:end] = np.fromiter(counts.values(), np.float64, len(counts))
        self.indptr[row + 1] = end
        self.rows[word] = row

    def matrix(self) -> csr_matrix:
        n, nnz = len(self.rows), int(self.indptr[len(self.rows)])
        return csr_matrix(
            (self.counts[:nnz], self.indices[:nnz], self.indptr[: n + 1]),
            shape=(n, self.n_grams),
        )


def _grown(array: np.ndarray, needed: int) -> np.ndarray:
    """``array`` in a buffer half as large again (or ``needed``), contents kept."""
    out = np.zeros(max(needed, len(array) * 3 // 2), dtype=array.dtype)
    out[: len(array)] = array
    return out


@dataclass
class TextModel:
    """Vectorizers plus a LinearSVC over agency kinds (or categories, for category-only data).

    ``bias`` shifts the margin of named classes at prediction time (none by default).
    ``catch_all_clf``, when present, decides the ``catch_all`` label, which ``clf`` never
    learned: a message goes there only if its signal exceeds ``catch_all_margin``. With
    ``catch_all_signal`` "detector" it is a binary model and the signal its margin; with
    "multiclass" it knows every kind and the signal is the catch-all's margin minus the best
    other one. Models trained before these fields existed lack them and decide as before (the
    class defaults below fill them in: a format-1 file holds a binary detector)."""

    label_field: str
    terms: TfidfVectorizer
    clf: LinearSVC
    bias: dict[str, float] = field(default_factory=dict)
    aux_clf: LinearSVC | None = None
    aux_weight: float = AUX_WEIGHT
    format: int = MODEL_FORMAT
    chars: TfidfVectorizer | None = None  # None in models trained before character n-grams
    char_weight: float = CHAR_WEIGHT
    catch_all: str | None = None
    catch_all_clf: LinearSVC | None = None
    catch_all_margin: float = CATCH_ALL_SIGNALS["detector"]
    calibration: Calibration | None = None  # None in models trained before calibration
    catch_all_signal: str = "detector"

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.clf.classes_]

    def __post_init__(self) -> None:
        self._index()

    def same_features(self, other: TextModel) -> bool:
        """Whether ``other`` reads the same feature blocks (vocabularies and idf weights), so
        one :meth:`term_matrix` / :meth:`char_matrix` serves both."""
        if self._vocab != other._vocab or not np.array_equal(self._idf, other._idf):
            return False
        if self.chars is None or other.chars is None:
            return self.chars is None and other.chars is None
        return self._char_vocab == other._char_vocab and np.array_equal(
            self._char_idf, other._char_idf
        )

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._index()

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def _index(self) -> None:
        vocab = {str(k): int(v) for k, v in self.terms.vocabulary_.items()}
        self._vocab = vocab
        self._root_vocab = {k[1:]: v for k, v in vocab.items() if k.startswith("~")}
        self._idf = np.asarray(self.terms.idf_, dtype=np.float64)
        self._pairs = _pair_table(self.terms, vocab)
        if self.chars is not None:
            self._char_vocab = {str(k): int(v) for k, v in self.chars.vocabulary_.items()}
            self._char_idf = np.asarray(self.chars.idf_, dtype=np.float64)
            self._grams = _WordGrams(len(self._char_idf))
        # both models' weights as one C-ordered float32 matrix (features x classes): one
        # sparse-dense product per batch instead of two, reading half the memory; the
        # rounding moves margins by ~1e-6, far below any decision
        parts = [m for m in (self.clf, self.aux_clf, self.catch_all_clf) if m is not None]
        self._n_main = int(self.clf.coef_.shape[0])
        self._n_aux = int(self.aux_clf.coef_.shape[0]) if self.aux_clf is not None else 0
        # which catch-all column is the kelurahan's (binary models: one column, positive for
        # the second class, ``True``)
        self._catch_col = 0
        if self.catch_all_clf is not None and self.catch_all_clf.coef_.shape[0] > 1:
            catch_classes = [str(c) for c in self.catch_all_clf.classes_]
            self._catch_col = catch_classes.index(str(self.catch_all))
        coef = np.ascontiguousarray(np.vstack([m.coef_ for m in parts]).T, np.float32)
        self._intercept = np.concatenate([m.intercept_ for m in parts])
        # split by feature block (row slices of a C-ordered array stay contiguous views), so
        # decide() multiplies each block on its own instead of stacking them first; the
        # character block's weight is folded into its rows once here
        n_terms = len(self._idf)
        n_chars = len(self._char_idf) if self.chars is not None else 0
        self._coef_terms = coef[:n_terms]
        self._coef_chars = coef[n_terms : n_terms + n_chars] * np.float32(self.char_weight)
        self._coef_rules = coef[n_terms + n_chars :]
        # for each main class, the columns of the auxiliary classes ("topic|agency") under it
        self._aux_cols: list[np.ndarray] = []
        if self.aux_clf is not None:
            owners = [str(c).rpartition("|")[2] for c in self.aux_clf.classes_]
            self._aux_cols = [
                np.flatnonzero(np.asarray(owners) == str(c)) for c in self.clf.classes_
            ]

    def term_matrix(self, results: Sequence[RuleResult]) -> csr_matrix:
        """Same numbers as ``self.terms.transform`` (sublinear tf x idf, l2 rows) in one lean
        loop: sklearn's generic transform builds every n-gram string first and was the
        slowest step of the pipeline.

        Words and roots are looked up with C-level loops; word pairs are not joined into
        strings at all but looked up as (first word's id, second word's id) keys in
        :attr:`_pairs` with one ``searchsorted``, as numpy arrays. Together with the word
        store of :meth:`char_matrix` this cut the CPU instructions per dev message of the
        whole trained path (rules and model) by 14 %. Models whose vocabulary does not
        allow it (see :func:`_pair_table`) take :meth:`_term_matrix_plain`."""
        if self._pairs is None:
            return self._term_matrix_plain(results)
        pair_keys, pair_ids = self._pairs
        n = len(results)
        unknown = itertools.repeat(-1)
        tokens_of = [r.tokens for r in results]
        roots_of = [r.roots for r in results]
        n_words = np.fromiter(map(len, tokens_of), np.int64, n)
        n_roots = np.fromiter(map(len, roots_of), np.int64, n)
        words = np.fromiter(
            map(self._vocab.get, _all(tokens_of), unknown), np.int64, int(n_words.sum())
        )
        roots = np.fromiter(
            map(self._root_vocab.get, _all(roots_of), unknown), np.int64, int(n_roots.sum())
        )
        rows = np.arange(n, dtype=np.int64)
        word_rows = np.repeat(rows, n_words)
        # each word with the next one of the same message, both known words
        first, second, pair_rows = words[:-1], words[1:], word_rows[:-1]
        both = (pair_rows == word_rows[1:]) & (first >= 0) & (second >= 0)
        keys = first[both] * len(self._idf) + second[both]
        at = np.searchsorted(pair_keys, keys)  # the table ends with a key above any pair
        hit = pair_keys[at] == keys
        ids = np.concatenate([words, pair_ids[at[hit]], roots])
        owners = np.concatenate([word_rows, pair_rows[both][hit], np.repeat(rows, n_roots)])
        return _tfidf_matrix(owners, ids, self._idf, n)

    def _term_matrix_plain(self, results: Sequence[RuleResult]) -> csr_matrix:
        """:meth:`term_matrix` by joining each word pair into its term string (any model)."""
        get, get_root, join = self._vocab.get, self._root_vocab.get, "_".join
        unknown = itertools.repeat(-1)
        # map() keeps the per-term loop in C: this runs for every word of every message.
        # Three runs over the batch (words, word pairs, roots); each term keeps its row.
        ids: list[int] = list(map(get, _all(r.tokens for r in results), unknown))
        pairs = _all(itertools.pairwise(r.tokens) for r in results)
        ids += map(get, map(join, pairs), unknown)
        ids += map(get_root, _all(r.roots for r in results), unknown)
        n_words = [len(r.tokens) for r in results]
        lengths = [*n_words, *(max(n - 1, 0) for n in n_words), *(len(r.roots) for r in results)]
        return _tfidf_rows(ids, lengths, self._idf, len(results))

    def char_matrix(self, results: Sequence[RuleResult]) -> csr_matrix:
        """Same numbers as ``self.chars.transform(" ".join(tokens))``, as a product of two
        sparse matrices (messages x words) @ (words x n-grams): the n-gram counts of each
        word are computed once and remembered as a row of :attr:`_grams`, and summing them
        per message happens in compiled code, since a message has hundreds of n-grams but
        tens of words. The messages x words matrix points at those rows directly (one
        C-level lookup per word), so a batch copies nothing per distinct word."""
        store = self._grams
        if len(store.rows) > CHAR_CACHE_MAX:
            store.clear()
        tokens_of = [r.tokens for r in results]
        indptr = np.zeros(len(results) + 1, dtype=np.int32)
        np.cumsum(np.fromiter(map(len, tokens_of), np.int32, len(results)), out=indptr[1:])
        try:
            cols = np.fromiter(
                map(store.rows.__getitem__, _all(tokens_of)), np.int32, int(indptr[-1])
            )
        except KeyError:  # words never seen before: their n-grams first
            for tok in dict.fromkeys(_all(tokens_of)):
                if tok not in store.rows:
                    store.add(tok, Counter(self._word_char_ids(tok)))
            cols = np.fromiter(
                map(store.rows.__getitem__, _all(tokens_of)), np.int32, int(indptr[-1])
            )
        docs = csr_matrix((np.ones(len(cols)), cols, indptr), shape=(len(results), len(store.rows)))
        x = (docs @ store.matrix()).tocsr()  # one entry per (message, n-gram): summed
        x.data = (np.log(x.data) + 1.0) * self._char_idf[x.indices]
        _normalise_rows(x)
        return x

    def _word_char_ids(self, token: str) -> list[int]:
        """Vocabulary ids of sklearn's ``char_wb`` n-grams of one token (padded by a space on
        both sides; a word shorter than n yields its padded self once)."""
        lo, hi = CHAR_NGRAMS
        get = self._char_vocab.get
        out: list[int] = []
        for word in token.split():
            w = f" {word} "
            for n in range(lo, hi + 1):
                grams = [w[i : i + n] for i in range(len(w) - n + 1)] if n < len(w) else [w]
                out.extend(j for j in map(get, grams) if j is not None)
                if n >= len(w):
                    break  # sklearn stops at the first n that covers the whole word
        return out

    def features(self, results: Sequence[RuleResult], ruleset: RuleSet) -> csr_matrix:
        blocks = [self.term_matrix(results)]
        if self.chars is not None:
            blocks.append(self.char_matrix(results) * self.char_weight)
        blocks.append(rule_features(results, ruleset))
        return hstack(blocks).tocsr()

    def scores(self, results: Sequence[RuleResult], ruleset: RuleSet) -> np.ndarray:
        """``features(...) @ coef + intercept`` for every model (main, auxiliary, detector),
        computed block by block in float32: the same numbers as stacking the blocks (to
        float32 rounding) without building and sorting the stacked matrix."""
        chars = self.char_matrix(results) if self.chars is not None else None
        return self.scores_of(self.term_matrix(results), chars, rule_scores(results, ruleset))

    def scores_of(
        self, terms: csr_matrix, chars: csr_matrix | None, rules: np.ndarray
    ) -> np.ndarray:
        """:meth:`scores` from the feature blocks (:meth:`term_matrix`, :meth:`char_matrix`,
        :func:`rule_scores`), so models sharing one vocabulary compute them once."""
        out = _float32(terms) @ self._coef_terms
        if chars is not None:
            out += _float32(chars) @ self._coef_chars
        out += rules.astype(np.float32) @ self._coef_rules
        margins: np.ndarray = np.asarray(out, dtype=np.float64) + self._intercept
        return margins

    def decide(self, results: Sequence[RuleResult], ruleset: RuleSet) -> list[tuple[str, float]]:
        """(label, confidence in 0..1) per message. With a calibration (models trained since
        it exists) the confidence is the estimated probability that the label is right."""
        return self.decide_with_features(results, ruleset)[0]

    def decide_with_features(
        self, results: Sequence[RuleResult], ruleset: RuleSet
    ) -> tuple[list[tuple[str, float]], np.ndarray]:
        """:meth:`decide` plus the :func:`decision_features` of each decision."""
        if not results:
            return [], np.zeros((0, 5))
        return self.decide_scores(self.scores(results, ruleset))

    def decide_scores(self, scores: np.ndarray) -> tuple[list[tuple[str, float]], np.ndarray]:
        """:meth:`decide_with_features` from :meth:`scores` (or :meth:`scores_of`)."""
        margins = scores[:, : self._n_main]
        if self._n_main == 1:  # two classes: one column, positive for the second class
            margins = np.concatenate([-margins, margins], axis=1)
        margins = _standardise(margins)
        if self.aux_clf is not None:
            aux = scores[:, self._n_main : self._n_main + self._n_aux]
            if aux.shape[1] > 1:
                best_aux = np.full_like(margins, -5.0)
                for k, cols in enumerate(self._aux_cols):
                    if len(cols):
                        best_aux[:, k] = aux[:, cols].max(axis=1)
                margins = margins + self.aux_weight * _standardise(best_aux)
        classes = self.classes
        for label, shift in self.bias.items():
            if label in classes:
                margins[:, classes.index(label)] += shift
        rows = np.arange(len(margins))
        best = margins.argmax(axis=1)
        top = margins[rows, best]
        second = np.partition(margins, -2, axis=1)[:, -2] if margins.shape[1] > 1 else top
        out = [classes[j] for j in best.tolist()]
        signal = np.zeros(len(out))
        caught = np.zeros(len(out), dtype=bool)
        if self.catch_all_clf is not None and self.catch_all:
            signal = self._catch_all_signal(scores[:, self._n_main + self._n_aux :])
            caught = signal > self.catch_all_margin
            for i in np.flatnonzero(caught):
                out[i] = self.catch_all
        features = decision_features(top - second, top, signal, caught)
        if self.calibration is not None:
            confidence = self.calibration.probability(features)
        else:  # models from before calibration: a softmax of the margins
            confidence = 1.0 / np.exp((margins - top[:, None]) * 3.0).sum(axis=1)
            confidence[caught] = 1.0 / (1.0 + np.exp(-3.0 * signal[caught]))
        decided = list(zip(out, confidence.tolist(), strict=True))  # Python floats, in C
        return decided, features

    def _catch_all_signal(self, margins: np.ndarray) -> np.ndarray:
        """How strongly ``catch_all_clf`` claims each message for the kelurahan: a binary
        detector's margin, or a multi-class model's kelurahan margin minus its best other."""
        if margins.shape[1] == 1:
            return np.asarray(margins[:, 0])
        j = self._catch_col
        others = np.delete(margins, j, axis=1).max(axis=1)
        signal: np.ndarray = margins[:, j] - others
        return signal


def decision_features(
    gap: np.ndarray, top: np.ndarray, signal: np.ndarray, caught: np.ndarray
) -> np.ndarray:
    """What the calibration reads from a decision: the winner's lead over the runner-up, the
    winner's (standardised) margin, the kelurahan signal (see :meth:`TextModel.decide`) and
    whether it decided."""
    caught_f = caught.astype(np.float64)
    return np.column_stack([gap, top, signal, caught_f, signal * caught_f])


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of :func:`decision_features` to the probability that the routing is
    right, fitted on out-of-fold decisions of the training history (so it describes how
    the model does on messages it has not seen, not on the ones it learned from)."""

    coef: tuple[float, ...]
    intercept: float
    folds: int

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = features @ np.asarray(self.coef) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)))


def fit_calibration(
    texts: Sequence[str],
    labels: Sequence[str],
    ruleset: RuleSet,
    folds: int,
    **train: object,
) -> Calibration | None:
    """Out-of-fold decisions of models trained on the other folds, and a logistic regression
    from their :func:`decision_features` to "was the label right". None when the history is
    too small to hold folds out."""
    y = np.asarray(labels)
    counts = Counter(labels)
    if len(y) < 20 * folds or len(counts) < 2:
        return None
    # classes with fewer rows than folds cannot be stratified; they go into any fold
    strata = np.asarray([lab if counts[lab] >= folds else "~rare" for lab in labels])
    split = StratifiedKFold(folds, shuffle=True, random_state=0)
    feats: list[np.ndarray] = []
    right: list[bool] = []
    aux = train.pop("aux", None)
    for fit, held in split.split(np.zeros(len(y)), strata):
        if len(set(y[fit])) < 2:
            continue
        model = train_model(
            [texts[i] for i in fit],
            [labels[i] for i in fit],
            ruleset,
            aux=[aux[i] for i in fit] if isinstance(aux, list) else None,
            calibration_folds=0,
            **train,  # type: ignore[arg-type]
        )
        results = [ruleset.apply(texts[i]) for i in held]
        decided, features = model.decide_with_features(results, ruleset)
        feats.append(features)
        right.extend(label == labels[i] for (label, _), i in zip(decided, held, strict=True))
    if not feats or len(set(right)) < 2:
        return None
    lr = LogisticRegression(C=1.0).fit(np.vstack(feats), np.asarray(right))
    return Calibration(tuple(float(c) for c in lr.coef_[0]), float(lr.intercept_[0]), folds)


def _tfidf_rows(ids: Sequence[int], lengths: Sequence[int], idf: np.ndarray, n: int) -> csr_matrix:
    """:func:`_tfidf_matrix` for ``n`` rows from the vocabulary ids of their terms (-1: out
    of vocabulary) in runs: ``lengths[k]`` ids for row ``k % n`` (a row may have several
    runs)."""
    flat = np.asarray(ids, dtype=np.int64)
    run_rows = np.arange(len(lengths), dtype=np.int64) % max(n, 1)
    rows = np.repeat(run_rows, np.asarray(lengths, dtype=np.int64))
    return _tfidf_matrix(rows, flat, idf, n)


def _tfidf_matrix(rows: np.ndarray, ids: np.ndarray, idf: np.ndarray, n: int) -> csr_matrix:
    """Sublinear tf x idf with l2-normalised rows, as ``TfidfVectorizer(sublinear_tf=True)``
    computes it, for ``n`` rows from one (row, vocabulary id) pair per term occurrence
    (id -1: out of vocabulary, ignored). Terms are counted per row by one ``np.unique``
    over ``row x vocabulary + id`` keys: a ``Counter`` per message was a tenth of the time
    of classifying it. The result has sorted, unique indices (canonical CSR)."""
    width = len(idf)
    known = ids >= 0
    keys, counts = np.unique(rows[known] * width + ids[known], return_counts=True)
    row_of, idx = np.divmod(keys, width)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=n), out=indptr[1:])
    data = (np.log(counts.astype(np.float64)) + 1.0) * idf[idx]
    x = csr_matrix((data, idx, indptr), shape=(n, width))
    _normalise_rows(x)
    return x


def _pair_table(
    terms: TfidfVectorizer, vocab: dict[str, int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The vocabulary's word-pair terms as sorted ``first id x vocabulary size + second id``
    keys (ending with a key above any pair) and their term ids, for :meth:`TextModel.term_matrix`.

    A pair ``a_b`` is found this way only when ``a`` and ``b`` are terms themselves. That
    holds for a vocabulary :func:`text_terms` built with nothing pruned but by ``min_df``: a
    message with the pair has both words, so each word is in at least as many messages as
    the pair. Any other vectorizer gets None (the plain lookup)."""
    if (
        terms.analyzer is not text_terms
        or terms.vocabulary is not None
        or terms.max_features is not None
        or terms.max_df != 1.0
    ):
        return None
    width = len(vocab)
    keys: list[int] = []
    ids: list[int] = []
    for term, i in vocab.items():
        if term.startswith("~"):
            continue
        # every split at an underscore into two terms: tokens have no underscore but the
        # personal-data token ``_pii_``, so a pair's own split is among them
        for at in (k for k, ch in enumerate(term) if ch == "_"):
            a, b = vocab.get(term[:at]), vocab.get(term[at + 1 :])
            if a is not None and b is not None:
                keys.append(a * width + b)
                ids.append(i)
    order = np.argsort(np.asarray(keys, dtype=np.int64), kind="stable")
    sorted_keys = np.append(np.asarray(keys, dtype=np.int64)[order], np.iinfo(np.int64).max)
    return sorted_keys, np.asarray(ids, dtype=np.int64)[order]


def _all(parts: Iterable[Iterable[T]]) -> Iterator[T]:
    """The items of every part, in order (``itertools.chain.from_iterable``)."""
    return itertools.chain.from_iterable(parts)


def _float32(x: csr_matrix) -> csr_matrix:
    """``x`` in float32 without ``astype``, which first sums duplicates and sorts every row's
    indices (5 % of classifying); these matrices have no duplicate entries to sum."""
    return csr_matrix((x.data.astype(np.float32), x.indices, x.indptr), shape=x.shape)


def _normalise_rows(x: csr_matrix) -> None:
    """Scale each row to unit L2 norm in place (empty rows stay empty). Sums squares per row
    with ``bincount`` rather than ``x.multiply(x)``, which sorts the indices of every row."""
    lengths = np.diff(x.indptr)
    squares = np.bincount(
        np.repeat(np.arange(x.shape[0]), lengths), weights=x.data * x.data, minlength=x.shape[0]
    )
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    x.data /= np.repeat(norms, lengths)


def _standardise(margins: np.ndarray) -> np.ndarray:
    """Per-row z-scores: puts the two models' margins on one scale (argmax unchanged)."""
    centred = margins - margins.mean(axis=1, keepdims=True)
    scaled: np.ndarray = centred / (centred.std(axis=1, keepdims=True) + 1e-9)
    return scaled


def auxiliary_labels(labels: Sequence[str], aux: Sequence[str], min_count: int) -> list[str]:
    """``"<finer label>|<label>"`` for finer labels seen ``min_count`` times with that label,
    ``"*|<label>"`` otherwise: the fine split where history supports it, never a class the
    main label does not own."""
    counts = Counter(zip(aux, labels, strict=True))
    return [
        f"{a}|{lab}" if a and counts[(a, lab)] >= min_count else f"*|{lab}"
        for a, lab in zip(aux, labels, strict=True)
    ]


def train_model(
    texts: Sequence[str],
    labels: Sequence[str],
    ruleset: RuleSet,
    label_field: str = "agency_kind",
    bias: dict[str, float] | None = None,
    c: float = 1.0,
    aux: Sequence[str] | None = None,
    aux_min_count: int = AUX_MIN_COUNT,
    char_ngrams: bool = True,
    catch_all_margin: float | Literal["default"] | None = "default",
    calibration_folds: int = CALIBRATION_FOLDS,
    catch_all_signal: str = CATCH_ALL_SIGNAL,
    nb_weight: float = NB_WEIGHT,
) -> TextModel:
    """Fit a model on labelled history. Deterministic: same rows, same model.

    ``aux`` is an optional finer label per row (the history's category or topic). A second
    LinearSVC learns "finer|label" classes and its best margin per label is added to the main
    model's: complaints of one agency kind are really several topics (tree pruning vs.
    waste), and separating them sharpens the boundary (5-fold CV on the dev data: macro-F1
    +0.015, accuracy +0.008).

    ``char_ngrams`` adds TF-IDF of character 3-4-grams within words (see :data:`CHAR_NGRAMS`):
    a small, fairly consistent gain that costs about a fifth of the throughput.

    With agency kinds that include :data:`CATCH_ALL`, the specialists never learn its rows; a
    separate model (``catch_all_signal``, see :data:`CATCH_ALL_SIGNALS`) sends a message there
    when its signal exceeds ``catch_all_margin`` ("default": that signal's default);
    ``None`` keeps it an ordinary class instead. 5-fold CV on the dev data, ordinary class ->
    multi-class signal at 0.42: accuracy on non-kelurahan rows 0.865 -> 0.879, macro-F1
    without the kelurahan class 0.647 -> 0.660, overall accuracy 0.819 -> 0.810 (see
    docs/classify.md for the trade-off).

    ``nb_weight`` blends a naive-Bayes-weighted SVM per class into the (specialist) model
    (:mod:`services.classify.nb_weights`; 0: the plain SVM)."""
    if len(texts) != len(labels):
        raise HistoryError("texts and labels differ in length")
    if catch_all_signal not in CATCH_ALL_SIGNALS:
        raise ValueError(f"unknown kelurahan signal {catch_all_signal!r}")
    if isinstance(catch_all_margin, str):  # "default"
        catch_all_margin = CATCH_ALL_SIGNALS[catch_all_signal]
    if len(set(labels)) < 2:
        raise HistoryError("need at least two distinct labels to learn from")
    results = [ruleset.apply(t) for t in texts]
    min_df = 2 if len(texts) >= 200 else 1
    terms = TfidfVectorizer(analyzer=text_terms, sublinear_tf=True, min_df=min_df)
    docs = [(r.tokens, r.roots) for r in results]
    blocks = [terms.fit_transform(docs)]
    chars = None
    if char_ngrams:
        chars = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=CHAR_NGRAMS,
            lowercase=False,  # tokens are normalized already; the lean transform relies on it
            sublinear_tf=True,
            min_df=min_df,
            dtype=np.float64,
        )
        blocks.append(chars.fit_transform([" ".join(r.tokens) for r in results]) * CHAR_WEIGHT)
    x = hstack([*blocks, rule_features(results, ruleset)]).tocsr()
    y = np.asarray(labels)
    catch_all, catch_all_clf = None, None
    specialist = y != CATCH_ALL
    if (
        catch_all_margin is not None
        and label_field == "agency_kind"
        and not specialist.all()
        and len(set(y[specialist])) >= 2
    ):
        catch_all = CATCH_ALL
        catch_all_clf = LinearSVC(C=c, class_weight="balanced", random_state=0)
        if catch_all_signal == "multiclass":
            catch_all_clf.fit(x, list(y))
        else:
            catch_all_clf.fit(x, ~specialist)
        rows = specialist
    else:
        rows = np.ones(len(y), dtype=bool)
    clf = LinearSVC(C=c, class_weight="balanced", random_state=0).fit(x[rows], list(y[rows]))
    if nb_weight > 0:
        clf.coef_, clf.intercept_ = blend_nb(clf, x[rows], y[rows], c, nb_weight)
    aux_clf = None
    if aux is not None:
        # like the specialist model, the topic model learns from the specialist rows only
        # when the catch-all has its own detector (same accuracy in CV, fewer classes)
        kept_aux = [a for a, keep in zip(aux, rows, strict=True) if keep]
        pseudo = auxiliary_labels(list(y[rows]), kept_aux, aux_min_count)
        if len(set(pseudo)) > len(set(y[rows])):
            aux_clf = LinearSVC(C=c, random_state=0).fit(x[rows], pseudo)
    calibration = None
    if calibration_folds > 1:
        calibration = fit_calibration(
            texts,
            labels,
            ruleset,
            calibration_folds,
            label_field=label_field,
            bias=bias,
            c=c,
            aux=list(aux) if aux is not None else None,
            aux_min_count=aux_min_count,
            char_ngrams=char_ngrams,
            catch_all_margin=catch_all_margin,
            catch_all_signal=catch_all_signal,
            nb_weight=nb_weight,
        )
    return TextModel(
        label_field,
        terms,
        clf,
        dict(bias or {}),
        aux_clf,
        chars=chars,
        catch_all=catch_all,
        catch_all_clf=catch_all_clf,
        catch_all_margin=CATCH_ALL_MARGIN if catch_all_margin is None else catch_all_margin,
        calibration=calibration,
        catch_all_signal=catch_all_signal,
    )


def add_training_options(ap: argparse.ArgumentParser) -> None:
    """The model options shared by ``train``, ``evaluate --train`` and ``crossval``."""
    ap.add_argument(
        "--char-ngrams",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="character 3-4-grams within words: a little more accurate, a fifth slower",
    )
    ap.add_argument(
        "--subdistrict-signal",
        choices=sorted(CATCH_ALL_SIGNALS),
        default=CATCH_ALL_SIGNAL,
        help=f"what sends a message to the kelurahan/kecamatan (default {CATCH_ALL_SIGNAL}: "
        f"a model over all kinds, its kelurahan margin minus the best other; detector: a "
        f"binary kelurahan-or-not model)",
    )
    defaults = ", ".join(f"{v} for {k}" for k, v in sorted(CATCH_ALL_SIGNALS.items()))
    ap.add_argument(
        "--subdistrict-margin",
        type=_margin,
        default="default",
        metavar="FLOAT|none",
        help=f"signal above which a message goes to the kelurahan/kecamatan (default "
        f"{defaults}; higher: fewer; 'none': an ordinary class)",
    )
    ap.add_argument(
        "--calibration-folds",
        type=int,
        default=CALIBRATION_FOLDS,
        metavar="N",
        help=f"calibrate the confidence on N out-of-fold parts of the history (default "
        f"{CALIBRATION_FOLDS}; 0: uncalibrated, training about 3x faster)",
    )
    ap.add_argument(
        "--nb-weight",
        type=_weight,
        default=NB_WEIGHT,
        metavar="FLOAT",
        help=f"share of the naive-Bayes-weighted SVM blended into the agency model (default "
        f"{NB_WEIGHT}; 0: the plain SVM)",
    )


class TrainingOptions(TypedDict):
    char_ngrams: bool
    catch_all_margin: float | Literal["default"] | None
    calibration_folds: int
    catch_all_signal: str
    nb_weight: float


def training_options(args: argparse.Namespace) -> TrainingOptions:
    """The parsed :func:`add_training_options`, as keyword arguments of :func:`train_model`."""
    return {
        "char_ngrams": args.char_ngrams,
        "catch_all_margin": args.subdistrict_margin,
        "calibration_folds": args.calibration_folds,
        "catch_all_signal": args.subdistrict_signal,
        "nb_weight": args.nb_weight,
    }


def _weight(value: str) -> float:
    try:
        weight = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= weight < math.inf:
        raise argparse.ArgumentTypeError(f"not a finite weight >= 0: {value!r}")
    return weight


def _margin(value: str) -> float | Literal["default"] | None:
    if value.lower() == "none":
        return None
    if value.lower() == "default":
        return "default"  # the chosen signal's own default threshold
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'none': {value!r}") from None


@dataclass(frozen=True)
class History:
    texts: list[str]
    labels: list[str]
    label_field: str
    aux: list[str] | None = None  # finer label per row (category or topic) when present


def read_history(path: Path, config: ClassifyConfig) -> History:
    """Rows of a CSV or JSONL history: ``text`` plus ``agency_kind`` and/or ``category``.

    ``agency_kind`` is preferred (it is what routing needs); a category-only history is
    accepted when the categories exist in the config. With ``agency_kind``, a ``category``
    or else ``topic`` column is kept as the finer auxiliary label. Rows without text or label
    are skipped; unknown labels are refused with the row number."""
    try:
        if path.suffix.lower() in {".jsonl", ".ndjson"}:
            rows = []
            for n, line in enumerate(path.read_bytes().splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(orjson.loads(line))
                    except orjson.JSONDecodeError as exc:
                        raise HistoryError(f"{path}:{n}: not valid JSON: {exc}") from exc
        else:
            with path.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read history: {exc}") from exc
    if not rows:
        raise HistoryError(f"{path}: no rows")
    fields = set().union(*(r.keys() for r in rows if isinstance(r, dict)))
    if "text" not in fields:
        raise HistoryError(f"{path}: missing column 'text'")
    if "agency_kind" in fields:
        label_field, allowed = "agency_kind", set(AGENCY_KINDS)
    elif "category" in fields:
        label_field, allowed = "category", set(config.categories)
    else:
        raise HistoryError(f"{path}: needs a column 'agency_kind' or 'category'")
    aux_field = None
    if label_field == "agency_kind":
        aux_field = next((f for f in ("category", "topic") if f in fields), None)
    texts, labels, aux = [], [], []
    for n, row in enumerate(rows, 2 if path.suffix.lower() == ".csv" else 1):
        if not isinstance(row, dict):
            raise HistoryError(f"{path}: row {n}: expected an object")
        text, label = row.get("text"), row.get(label_field)
        if not isinstance(text, str) or not text.strip() or not label:
            continue
        if label not in allowed:
            raise HistoryError(f"{path}: row {n}: unknown {label_field} {label!r}")
        texts.append(text)
        labels.append(str(label))
        aux.append(str(row.get(aux_field) or "") if aux_field else "")
    return History(texts, labels, label_field, aux if aux_field else None)


def save_model(model: TextModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path, compress=3)


def load_model(path: Path) -> TextModel:
    """A model written by ``python -m services.classify.train``; any other file is refused
    in one line (a model file is trusted configuration: joblib files can run code, so only
    load files the deployment wrote itself)."""
    try:
        model = joblib.load(path)
    except OSError:
        raise
    except Exception as exc:  # a file of another kind: unpickling fails in many ways
        raise HistoryError(
            f"{path}: not a model written by python -m services.classify.train "
            f"({type(exc).__name__})"
        ) from None
    if not isinstance(model, TextModel) or model.format not in READABLE_FORMATS:
        found = getattr(model, "format", None) if isinstance(model, TextModel) else None
        raise HistoryError(
            f"{path}: not an aduan classify model this version reads (format "
            f"{found if found is not None else 'unknown'}; readable: "
            f"{', '.join(map(str, READABLE_FORMATS))}): train it again"
        )
    return model


def softmax_confidence(score: float, total: float) -> float:
    """Rule confidence: share of the winning score, squashed by its size (helper for rules)."""
    if total <= 0:
        return 0.2
    return min(0.95, (score / total) * (1 - math.exp(-score / 3)))
