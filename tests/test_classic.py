"""k-NN against scikit-learn, least squares against numpy.linalg.lstsq, and hand-worked fixtures."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import KNeighborsClassifier

from reference.classic import KNNClassifier, LeastSquaresClassifier, lstsq, pairwise_distances

TOL = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture
def blobs(seed):
    """Three overlapping Gaussian blobs in the plane (continuous: no exact distance ties)."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
    y = rng.integers(0, 3, 150)
    X = centers[y] + 1.2 * rng.normal(size=(150, 2))
    queries = rng.uniform(-4, 4, size=(300, 2))
    return X, y, queries


def test_pairwise_distances_are_cdist(blobs):
    X, _, queries = blobs
    np.testing.assert_allclose(pairwise_distances(queries, X), cdist(queries, X), **TOL)
    assert pairwise_distances(X[:5], X[:5]).diagonal().max() < 1e-7  # clipped, never NaN


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 15])
def test_knn_is_sklearn(blobs, k):
    X, y, queries = blobs
    theirs = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(X, y)
    ours = KNNClassifier(k).fit(X, y)
    distances, indices = ours.kneighbors(queries)
    expected_distances, expected_indices = theirs.kneighbors(queries)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, **TOL)
    np.testing.assert_allclose(ours.predict_proba(queries), theirs.predict_proba(queries), **TOL)
    np.testing.assert_array_equal(ours.predict(queries), theirs.predict(queries))


def test_vote_ties_go_to_the_smallest_label_as_sklearn(blobs):
    X, y, queries = blobs
    for labels in (np.array(["dog", "cat", "emu"])[y], np.array([7, -1, 3])[y]):
        ours = KNNClassifier(4).fit(X, labels)
        theirs = KNeighborsClassifier(4, algorithm="brute").fit(X, labels)
        proba = ours.predict_proba(queries)
        tied = (np.sort(proba, axis=1)[:, -1] == np.sort(proba, axis=1)[:, -2]).sum()
        assert tied > 20  # the comparison below really covers ties
        np.testing.assert_array_equal(ours.predict(queries), theirs.predict(queries))


def test_knn_by_hand():
    # Points on a line: 0 (class 0), 1 (class 1), 3 (class 1), 4 (class 0); query at 2.
    X, y, q = np.array([[0.0], [1.0], [3.0], [4.0]]), np.array([0, 1, 1, 0]), np.array([[2.0]])
    knn = KNNClassifier(3).fit(X, y)
    distances, indices = knn.kneighbors(q)
    assert distances.tolist() == [[1.0, 1.0, 2.0]]
    assert indices.tolist() == [[1, 2, 0]]  # 0 and 4 tie for third place: training order
    assert knn.predict(q).tolist() == [1]  # votes 1, 1, 0
    assert KNNClassifier(4).fit(X, y).predict(q).tolist() == [0]  # 2 - 2: the smaller label
    # k = 2, nearest is class 1 but one vote each: the tie goes to class 0, not to the nearest.
    two = KNNClassifier(2).fit(np.array([[0.0], [1.5]]), np.array([1, 0]))
    assert two.predict(np.array([[0.5]])).tolist() == [0]
    assert two.predict_proba(np.array([[0.5]])).tolist() == [[0.5, 0.5]]


def test_lstsq_line_fit_by_hand():
    # y = a + b x through (0, 0), (1, 1), (2, 3): b = 3/2, a = 4/3 - 3/2 = -1/6; the residuals
    # 1/6, -1/3, 1/6 square-sum to 1/6.
    A = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    result = lstsq(A, np.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(result.solution, [-1 / 6, 3 / 2], **TOL)
    np.testing.assert_allclose(result.residuals, [1 / 6], **TOL)
    assert result.rank == 2


@pytest.mark.parametrize("case", ["tall", "wide", "rank-deficient", "multi-rhs", "square"])
def test_lstsq_is_numpys(case, gen, seed):
    rng = np.random.default_rng(seed)
    A, b = rng.normal(size=(20, 5)), rng.normal(size=20)
    if case == "wide":
        A, b = rng.normal(size=(4, 9)), rng.normal(size=4)
    elif case == "rank-deficient":
        A[:, 4] = A[:, 0] - 2 * A[:, 1]
    elif case == "multi-rhs":
        b = rng.normal(size=(20, 3))
    elif case == "square":
        A = rng.normal(size=(6, 6))
        b = rng.normal(size=6)
    ours, theirs = lstsq(A, b), np.linalg.lstsq(A, b)
    np.testing.assert_allclose(ours.solution, theirs[0], **TOL)
    np.testing.assert_allclose(ours.residuals, theirs[1], **TOL)
    assert ours.rank == theirs[2]
    np.testing.assert_allclose(ours.singular_values, theirs[3], **TOL)


def test_lstsq_survives_where_the_normal_equations_do_not(seed):
    # cond(A) = 1e7: the SVD loses about cond * eps; inv(AᵀA) squares the condition number.
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(30, 6)))
    v, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    A = u @ np.diag(np.logspace(0, -7, 6)) @ v.T
    x_true = rng.normal(size=6)
    b = A @ x_true
    error = np.linalg.norm(lstsq(A, b).solution - x_true) / np.linalg.norm(x_true)
    normal = np.linalg.inv(A.T @ A) @ A.T @ b
    assert error < 1e-7
    assert np.linalg.norm(normal - x_true) / np.linalg.norm(x_true) > 1e3 * error
    np.testing.assert_allclose(lstsq(A, b).solution, np.linalg.lstsq(A, b)[0], rtol=1e-7)


def test_least_squares_classifier(blobs):
    X, y, queries = blobs
    labels = np.array(["b", "a", "c"])[y]
    clf = LeastSquaresClassifier().fit(X, labels)
    A = np.hstack([X, np.ones((len(X), 1))])
    onehot = (labels[:, None] == np.array(["a", "b", "c"])[None, :]).astype(float)
    np.testing.assert_allclose(clf.weight_, np.linalg.lstsq(A, onehot)[0], **TOL)
    scores = np.hstack([queries, np.ones((len(queries), 1))]) @ clf.weight_
    np.testing.assert_array_equal(clf.predict(queries), np.array(["a", "b", "c"])[scores.argmax(1)])
    assert (clf.predict(X) == labels).mean() > 0.8  # the blobs are mostly linearly separable


@pytest.mark.parametrize(
    "call",
    [lambda: KNNClassifier(0), lambda: KNNClassifier(2.0), lambda: KNNClassifier(5).fit(
        np.zeros((3, 2)), np.zeros(3)), lambda: KNNClassifier(1).fit(np.zeros(3), np.zeros(3)),
     lambda: pairwise_distances(np.zeros((2, 3)), np.zeros((2, 2))),
     lambda: lstsq(np.zeros((3, 2)), np.zeros(4))],
    ids=["k-0", "k-float", "k-too-big", "X-1d", "dims", "lstsq-rows"],
)  # fmt: skip
def test_bad_arguments(call):
    with pytest.raises(ValueError, match=r"\w"):
        call()
