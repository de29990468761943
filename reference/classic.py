"""Two classic classifiers, written out: k-nearest neighbours and least-squares linear.

`KNNClassifier` follows `sklearn.neighbors.KNeighborsClassifier(algorithm='brute')` with uniform
weights: Euclidean distances for all pairs at once (one matrix product), the k nearest in order
of distance, and a majority vote whose ties go to the smallest class label (`np.argmax` takes
the first maximum), as scikit-learn's. When several training points tie for the k-th place,
this keeps the earliest in training order; scikit-learn keeps whichever its fixed-size heap
happens to keep (its documentation warns that the result then depends on the order of the
training data), so on such exact distance ties the two may pick different, equally near points.

`LeastSquaresClassifier` regresses one-hot targets on `[x, 1]` by least squares and predicts the
class with the largest output. `lstsq` solves least squares through the SVD, as
`numpy.linalg.lstsq` does (never by inverting `AᵀA`, which squares the condition number), and
returns the minimum-norm solution when `A` is rank deficient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "KNNClassifier",
    "LeastSquaresClassifier",
    "Lstsq",
    "lstsq",
    "pairwise_distances",
    "three_blobs",
]


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between every row of `a` and every row of `b`, vectorized.

    Shapes: a (N, D), b (M, D) -> (N, M). |a - b|² = |a|² - 2 a·b + |b|² (one matrix product);
    rounding can make that a tiny negative number for (near) equal points, so it is clipped at 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"pairwise_distances: expected (N, D) and (M, D) arrays, got {a.shape} and {b.shape}"
        )
    squared = (a * a).sum(1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :]  # (N, M)
    return np.sqrt(np.maximum(squared, 0.0))


class KNNClassifier:
    """k-nearest-neighbour vote, as `KNeighborsClassifier(n_neighbors, algorithm='brute')`."""

    def __init__(self, n_neighbors: int = 5) -> None:
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) or n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive int, got {n_neighbors!r}")
        self.n_neighbors = n_neighbors

    def fit(self, X: np.ndarray, y: np.ndarray) -> KNNClassifier:
        """Remember the training set. Shapes: X (M, D), y (M,)."""
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        if X.ndim != 2 or y.shape != (len(X),):
            raise ValueError(f"fit: expected X (M, D) and y (M,), got {X.shape} and {y.shape}")
        if self.n_neighbors > len(X):
            raise ValueError(
                f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {self.n_neighbors}, "
                f"n_samples_fit = {len(X)}"
            )
        self.classes_, self._codes = np.unique(y, return_inverse=True)
        self._X = X
        return self

    def kneighbors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices) of the k nearest training points, nearest first. (N, k) each."""
        distances = pairwise_distances(X, self._X)  # (N, M)
        # A stable sort keeps equal distances in training order.
        order = np.argsort(distances, axis=1, kind="stable")[:, : self.n_neighbors]  # (N, k)
        return np.take_along_axis(distances, order, axis=1), order

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The fraction of the k neighbours in each class. Shapes: X (N, D) -> (N, n_classes)."""
        _, order = self.kneighbors(X)
        votes = np.zeros((len(order), len(self.classes_)))
        np.add.at(votes, (np.arange(len(order))[:, None], self._codes[order]), 1.0)
        return votes / self.n_neighbors

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The majority class of the k neighbours (a tie goes to the smallest label). (N,)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class Lstsq(NamedTuple):
    """`numpy.linalg.lstsq`'s four results."""

    solution: np.ndarray
    residuals: np.ndarray
    rank: int
    singular_values: np.ndarray


def lstsq(a: np.ndarray, b: np.ndarray, rcond: float | None = None) -> Lstsq:
    """The `x` minimising |a x - b|₂ (minimum |x| among ties), as `numpy.linalg.lstsq`.

    Shapes: a (M, N), b (M,) or (M, K) -> x (N,) or (N, K). Through the thin SVD a = U S Vᵀ:
    x = V S⁺ Uᵀ b, where S⁺ inverts the singular values above `rcond * max(s)` (default
    `eps * max(M, N)`, numpy's) and zeroes the rest. Residuals (squared, per column of b) are
    returned when rank == N < M, else an empty array, as numpy does.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim not in (1, 2) or len(b) != len(a):
        raise ValueError(f"lstsq: expected a (M, N) and b (M,) or (M, K), got {a.shape}, {b.shape}")
    m, n = a.shape
    rcond = np.finfo(np.float64).eps * max(m, n) if rcond is None else rcond
    u, s, vt = np.linalg.svd(a, full_matrices=False)  # (M, r), (r,), (r, N); r = min(M, N)
    keep = s > rcond * (s[0] if len(s) else 0.0)
    s_inv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    bb = b[:, None] if b.ndim == 1 else b  # (M, K)
    x = vt.T @ (s_inv[:, None] * (u.T @ bb))  # (N, K)
    rank = int(keep.sum())
    residuals = ((a @ x - bb) ** 2).sum(0) if rank == n and m > n else np.empty(0)
    return Lstsq(x[:, 0] if b.ndim == 1 else x, residuals, rank, s)


class LeastSquaresClassifier:
    """A linear classifier fit by least squares to one-hot targets; predicts the largest output."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> LeastSquaresClassifier:
        """Solve [X, 1] W ≈ onehot(y) by `lstsq`. Shapes: X (M, D), y (M,); W (D + 1, classes)."""
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        targets = np.eye(len(self.classes_))[codes]  # (M, n_classes)
        self.weight_ = lstsq(_augment(X), targets).solution  # (D + 1, n_classes)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """[X, 1] W. Shapes: X (N, D) -> (N, n_classes)."""
        return _augment(np.asarray(X, dtype=np.float64)) @ self.weight_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class with the largest output. Shapes: X (N, D) -> (N,)."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


def _augment(X: np.ndarray) -> np.ndarray:
    """[X, 1]: a column of ones for the bias. Shapes: (N, D) -> (N, D + 1)."""
    return np.hstack([X, np.ones((len(X), 1))])


def three_blobs(
    n_per_class: int = 50, spread: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Toy 2-D data: three Gaussian blobs around (0, 2), (-2, -1), (2, -1); labels 0, 1, 2.

    Shapes: -> X (3 * n_per_class, 2), y (3 * n_per_class,) int.
    """
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
    y = np.repeat(np.arange(3), n_per_class)
    return centers[y] + spread * rng.normal(size=(len(y), 2)), y
