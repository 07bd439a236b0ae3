"""The fast paths of the learned layer against the plain versions they replace.

``TextModel.term_matrix`` looks word pairs up by their two word ids instead of joining them
into strings; ``TextModel.char_matrix`` keeps every word's character n-grams in one growing
matrix instead of gathering a batch-local copy; ``rule_scores`` adds whole columns instead
of looping per message. Each must give exactly the same matrix (same entries in the same
order, same bits: the sparse-dense product sums in entry order, so a different order could
move a confidence by a rounding step), cold and with warm caches.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from services.classify import model as model_module
from services.classify.config import load_config
from services.classify.model import TextModel, _normalise_rows, rule_scores, train_model
from services.classify.rules import RuleResult, RuleSet
from services.classify.text import PII_TOKEN

RULES = RuleSet(load_config())
TOPICS = {
    "public_works": "jalan rusak berlubang aspal gang trotoar jembatan retak",
    "environment": "sampah menumpuk belum diangkut bau got selokan mampet",
    "transportation": "lampu pju mati traffic light parkir liar angkot",
    "health": "puskesmas bpjs dokter antri obat rumah sakit",
}
# the history's words, words it never saw (typos, numbers) and the personal-data token, so
# generated messages have known and unknown words, pairs and character n-grams
WORDS = [*{w for text in TOPICS.values() for w in text.split()}, "jln", "sampahh", "zzq", "07"]


@lru_cache(maxsize=1)
def trained() -> TextModel:
    texts, labels = [], []
    for i, (kind, words) in enumerate(TOPICS.items()):
        ws = words.split()
        for j in range(10):
            picked = [ws[(j + k * (i + 1)) % len(ws)] for k in range(5)]
            texts.append(" ".join([*picked, "[PHONE] rt 1" if j % 3 == 0 else f"rt {j}"]))
            labels.append(kind)
    return train_model(texts, labels, RULES, calibration_folds=0)


def fresh() -> TextModel:
    """The trained model with empty caches (as just loaded)."""
    copy = TextModel.__new__(TextModel)
    copy.__setstate__(trained().__getstate__())
    return copy


def plain_term_matrix(model: TextModel, results: Sequence[RuleResult]) -> csr_matrix:
    return model._term_matrix_plain(results)  # noqa: SLF001  # the reference being compared


def plain_char_matrix(model: TextModel, results: Sequence[RuleResult]) -> csr_matrix:
    """The character block as first written: the batch's distinct words in first-seen order,
    each with its n-gram counts, and a (messages x those words) @ (words x n-grams) product."""
    local = list(dict.fromkeys(itertools.chain.from_iterable(r.tokens for r in results)))
    row = {w: i for i, w in enumerate(local)}
    per_word = [Counter(model._word_char_ids(w)) for w in local]  # noqa: SLF001
    words = csr_matrix(
        (
            np.asarray([c for counts in per_word for c in counts.values()], dtype=np.float64),
            np.asarray([g for counts in per_word for g in counts], dtype=np.int64),
            np.cumsum([0, *(len(c) for c in per_word)]),
        ),
        shape=(len(local), len(model._char_idf)),  # noqa: SLF001
    )
    cols = [row[w] for r in results for w in r.tokens]
    docs = csr_matrix(
        (
            np.ones(len(cols)),
            np.asarray(cols, dtype=np.int64),
            np.cumsum([0, *(len(r.tokens) for r in results)]),
        ),
        shape=(len(results), len(local)),
    )
    x = (docs @ words).tocsr()
    x.data = (np.log(x.data) + 1.0) * model._char_idf[x.indices]  # noqa: SLF001
    _normalise_rows(x)
    return x


def plain_rule_scores(results: Sequence[RuleResult], ruleset: RuleSet) -> np.ndarray:
    """log(1 + summed category scores) per agency kind, one message at a time."""
    col = {k: i for i, k in enumerate(model_module.KIND_ORDER)}
    out = np.zeros((len(results), len(col)))
    for r, res in enumerate(results):
        for score, cat in zip(res.scores, ruleset.categories, strict=True):
            if score:
                out[r, col[ruleset.config.agency_kind_of(cat)]] += score
    return np.log1p(out) * model_module.RULE_FEATURE_SCALE


def assert_same(fast: csr_matrix, plain: csr_matrix) -> None:
    """Entry for entry, bit for bit, in the same order."""
    assert fast.shape == plain.shape
    assert np.array_equal(fast.indptr, plain.indptr)
    assert np.array_equal(fast.indices, plain.indices)
    assert np.array_equal(fast.data, plain.data)


def sized_texts(words: list[str]) -> st.SearchStrategy[list[str]]:
    text = st.lists(st.sampled_from(words), max_size=12).map(" ".join)
    return st.lists(text, min_size=0, max_size=8)


@given(batches=st.lists(sized_texts([*WORDS, "[PHONE]"]), min_size=1, max_size=3))
@settings(max_examples=150, deadline=None)
def test_fast_matrices_equal_the_plain_ones_cold_and_warm(batches: list[list[str]]) -> None:
    model = fresh()
    for texts in [*batches, *batches]:  # second round: every word's n-grams are cached
        results = [RULES.apply(t) for t in texts]
        assert_same(model.term_matrix(results), plain_term_matrix(model, results))
        assert_same(model.char_matrix(results), plain_char_matrix(model, results))
        assert np.array_equal(rule_scores(results, RULES), plain_rule_scores(results, RULES))


def test_the_fast_paths_are_taken_and_see_pairs_and_the_personal_data_token() -> None:
    model = fresh()
    assert model._pairs is not None  # noqa: SLF001
    vocabulary = model.terms.vocabulary_
    assert f"{PII_TOKEN}_rt" in vocabulary  # a pair term with underscores inside its word
    texts = ["[PHONE] rt 3 jalan rusak berlubang", "lampu pju mati parkir liar", ""]
    results = [RULES.apply(t) for t in texts]
    fast = model.term_matrix(results)
    assert_same(fast, plain_term_matrix(model, results))
    ref = model.terms.transform([(r.tokens, r.roots) for r in results])
    assert np.allclose(fast.toarray(), ref.toarray())
    terms = {t for t, col in vocabulary.items() if col in set(fast.indices)}
    assert f"{PII_TOKEN}_rt" in terms
    assert len({t for t in terms if "_" in t.strip("_") and PII_TOKEN not in t}) >= 2


def test_a_pruned_vocabulary_takes_the_plain_pair_lookup() -> None:
    """With ``max_features`` a pair may outlive one of its words, which the id lookup could
    not see; such a model joins the pairs into strings as before."""
    model = fresh()
    model.terms.max_features = 10
    pruned = TextModel.__new__(TextModel)
    pruned.__setstate__(model.__getstate__())
    model.terms.max_features = None
    assert pruned._pairs is None  # noqa: SLF001
    results = [RULES.apply("jalan rusak berlubang"), RULES.apply("zzq")]
    assert_same(pruned.term_matrix(results), plain_term_matrix(pruned, results))


def test_the_word_store_grows_and_is_emptied_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of new words overflow the first buffers; past the bound the store starts
    again. Neither changes a matrix."""
    model = fresh()
    # fused words ("sampahmenumpuk"): new words made of n-grams the model knows
    letters = [w for w in WORDS if w.isalpha()]
    typos = [a + b for a, b in itertools.product(letters, letters)]
    batches = [typos[i : i + 400] for i in range(0, len(typos), 400)]
    for words in batches:
        results = [RULES.apply(" ".join(words[k : k + 20])) for k in range(0, len(words), 20)]
        assert_same(model.char_matrix(results), plain_char_matrix(model, results))
    store = model._grams  # noqa: SLF001
    assert len(store.rows) > 1024 and store.indptr[len(store.rows)] > 8192
    monkeypatch.setattr(model_module, "CHAR_CACHE_MAX", 100)
    for words in batches[:2]:
        results = [RULES.apply(" ".join(words[k : k + 20])) for k in range(0, len(words), 20)]
        assert_same(model.char_matrix(results), plain_char_matrix(model, results))
    assert len(store.rows) <= 100 + 400


def test_decisions_equal_those_of_the_plain_matrices() -> None:
    """The whole model path: the same features give the same labels and confidences."""
    model = fresh()
    texts = ["jalan rusak berlubang di gang 3", "sampah menumpuk [PHONE]", "zzq", ""]
    results = [RULES.apply(t) for t in texts]
    fast = model.scores(results, RULES)
    x = np.hstack(
        [
            plain_term_matrix(model, results).toarray(),
            plain_char_matrix(model, results).toarray() * model.char_weight,
            plain_rule_scores(results, RULES),
        ]
    )
    parts = [model.clf, model.aux_clf, model.catch_all_clf]
    coef = np.vstack([m.coef_ for m in parts if m is not None])
    intercept = np.concatenate([m.intercept_ for m in parts if m is not None])
    assert np.allclose(fast, x @ coef.T + intercept, atol=1e-4)
    assert model.decide(results, RULES) == fresh().decide(results, RULES)
