"""Naive-Bayes-weighted SVMs blended into the routing model's specialists.

Wang & Manning's NBSVM ("Baselines and Bigrams", ACL 2012): for each agency kind, a binary
LinearSVC over the features scaled by their naive-Bayes log-count ratio
``r = log((p / |p|) / (q / |q|))``, where ``p`` and ``q`` count the rows of that kind and of
the others in which each feature occurs (plus ``alpha``). A word that one agency's
complaints use and the others' hardly do weighs more than its TF-IDF alone gives it; a word
every agency's complaints share weighs less.

Why blended and not instead: 5-fold CV on the dev data, seeds 0 / 1 / 2, with the NBSVM
scores alone the specialist's accuracy on non-kelurahan rows rose 0.875 -> 0.877 (mean,
without the topic model); blended with the plain SVM, 0.880. In the whole router (topic
model, kelurahan signal at 0.42) at weight 0.5: accuracy 0.8100 / 0.8056 / 0.8043 ->
0.8113 / 0.8086 / 0.8063, excluding the kelurahan 0.8787 / 0.8725 / 0.8733 -> 0.8802 /
0.8759 / 0.8756, macro-F1 0.6597 / 0.6614 / 0.6583 -> 0.6648 / 0.6655 / 0.6590 (weight 1:
0.8109 / 0.8797 / 0.6603 on seed 0, weight 2: 0.8091 / 0.8776 / 0.6581). Blending the
kelurahan model or the topic model the same way did not help (docs/classify.md).

Both parts are linear in the same features, so the blend is folded into the SVM's own
coefficients: prediction costs nothing more and the model file keeps its format. Training
fits one more binary LinearSVC per kind.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix, diags
from sklearn.svm import LinearSVC

NB_WEIGHT = 0.5  # the NBSVM's share of the blend (0: the plain SVM)
NB_ALPHA = 0.5  # smoothing of the occurrence counts (1.0 scored 0.8106 / 0.8794 / 0.6666)


def log_count_ratios(
    x: csr_matrix, y: np.ndarray, kinds: np.ndarray, alpha: float = NB_ALPHA
) -> np.ndarray:
    """Per kind (a row each) and feature, the log ratio of the feature's occurrence share in
    that kind's rows to its share in the others' (features are non-negative; presence
    counts, not weights). One pass over the rows for every kind: the presence matrix is
    built once and counted per kind by one sparse product."""
    present = (x > 0).astype(np.float64)
    member = csr_matrix((y[:, None] == kinds[None, :]).astype(np.float64))
    counts = np.asarray((member.T @ present).todense())
    totals = np.asarray(present.sum(axis=0))
    p = counts + alpha
    q = totals - counts + alpha
    ratios: np.ndarray = np.log(
        (p / p.sum(axis=1, keepdims=True)) / (q / q.sum(axis=1, keepdims=True))
    )
    return ratios


def nb_svm(
    x: csr_matrix, positive: np.ndarray, ratios: np.ndarray, c: float
) -> tuple[np.ndarray, float]:
    """One kind's NBSVM (its rows ``positive``, its :func:`log_count_ratios` row) as weights
    over the unscaled features: ``x @ w + b``. Balanced like the specialist (a kind with 20
    rows is not drowned by 6,000 others)."""
    n, n_pos = len(positive), int(positive.sum())
    weights = {True: n / (2 * n_pos), False: n / (2 * (n - n_pos))}
    svm = LinearSVC(C=c, class_weight=weights, random_state=0).fit(x @ diags(ratios), positive)
    return svm.coef_.ravel() * ratios, float(svm.intercept_[0])


def blend_nb(
    svm: LinearSVC, x: csr_matrix, y: np.ndarray, c: float, weight: float = NB_WEIGHT
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and intercepts of ``(svm + weight * k * nbsvm) / (1 + weight)`` for the
    fitted multi-class ``svm`` and the rows it learned from, ``k`` scaling the NBSVM scores
    to the spread of the SVM's on those rows (the two are on different scales; the blend
    keeps the SVM's, which the topic model's margins are added to)."""
    # a two-class LinearSVC keeps one row of weights, for its second class
    kinds = svm.classes_ if svm.coef_.shape[0] > 1 else svm.classes_[1:]
    ratios = log_count_ratios(x, y, kinds)
    parts = [nb_svm(x, y == kind, r, c) for kind, r in zip(kinds, ratios, strict=True)]
    coef = np.vstack([w for w, _ in parts])
    intercept = np.asarray([b for _, b in parts])
    spread = float(np.std(x @ svm.coef_.T + svm.intercept_))
    k = spread / max(float(np.std(x @ coef.T + intercept)), 1e-12)
    blended = (svm.coef_ + weight * k * coef) / (1 + weight)
    return blended, (svm.intercept_ + weight * k * intercept) / (1 + weight)
