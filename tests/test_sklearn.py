"""xpann.sklearn: scikit-learn's own estimator checks, and the estimators in the code users have:
clone, Pipeline, GridSearchCV, cross_val_score, pickle, DataFrames with text and gaps."""

import pickle
import warnings

import numpy
import pandas
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import xpann  # noqa: E402
from xpann.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# What SGD training cannot meet by its nature, and nothing else.
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "a weight of 2 and a repeated row give the same loss, but not the same mini-batches or the same "
        "number of steps an epoch, so the weights differ (scikit-learn's own MLP fails it too)"),
}


@parametrize_with_checks([MLPClassifier(max_iter=50, random_state=0), MLPRegressor(max_iter=50, random_state=0)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def iris():
    data = xpann.datasets.load("iris")
    return data.x, numpy.asarray(data.target_names)[data.y]


def test_the_parameters_are_scikit_learns():
    ours = MLPClassifier().get_params()
    theirs = neural_network.MLPClassifier().get_params()
    for name in ("hidden_layer_sizes", "activation", "solver", "alpha", "batch_size", "learning_rate_init",
                 "max_iter", "shuffle", "random_state", "tol", "early_stopping", "validation_fraction",
                 "n_iter_no_change", "verbose", "warm_start"):
        assert ours[name] == theirs[name], name
    assert ours["backend"] is None


def test_labels_as_given_probabilities_and_fitted_attributes():
    x, y = iris()
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(x, y)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"] and clf.n_features_in_ == 4
    assert set(clf.predict(x)) <= set(clf.classes_) and clf.score(x, y) > 0.9
    numpy.testing.assert_allclose(clf.predict_proba(x).sum(axis=1), 1.0, rtol=1e-6)
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None


def test_the_stopping_rule_is_scikit_learns():
    x, y = iris()
    clf = MLPClassifier(max_iter=500, tol=1e-2, n_iter_no_change=3, random_state=0).fit(x, y)
    curve = clf.loss_curve_
    assert clf.n_iter_ < 500
    # scikit-learn's count: epochs whose loss is not below the best so far by tol, reset by a better one
    best, count = numpy.inf, 0
    for epoch, loss in enumerate(curve, 1):
        count = count + 1 if loss > best - 1e-2 else 0
        best = min(best, loss)
        if count > 3:
            break
    assert epoch == clf.n_iter_


def test_early_stopping_keeps_validation_scores_and_the_best_epoch():
    x, y = iris()
    clf = MLPClassifier(max_iter=200, early_stopping=True, validation_fraction=0.2, random_state=0).fit(x, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_a_frame_with_text_gaps_and_dates_goes_through_the_tabular_preprocessing():
    rng = numpy.random.default_rng(0)
    n = 300
    town = rng.choice(["Lyon", "Paris", "Nice"], n)
    area = rng.normal(100, 20, n)
    frame = pandas.DataFrame({"town": town, "area": area,
                              "built": pandas.to_datetime("2000-01-01") + pandas.to_timedelta(rng.integers(0, 5000, n), "D")})
    frame.loc[::17, "town"] = None
    price = 1000 * area + 30_000 * (town == "Paris")
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(frame, price)
    assert list(reg.feature_names_in_) == ["town", "area", "built"]
    predicted = reg.predict(frame)
    assert numpy.median(numpy.abs(predicted - price) / price) < 0.1  # in the target's units
    assert reg.score(frame, price) > 0.8


def test_clone_pipeline_grid_search_and_cross_validation():
    x, y = iris()
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=100, random_state=0)
    assert clone(clf).get_params() == clf.get_params()
    pipe = make_pipeline(StandardScaler(), clf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, x, y, cv=3)
        search = GridSearchCV(clf, {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(8,), (16,)]}, cv=3).fit(x, y)
    assert scores.shape == (3,) and scores.mean() > 0.8
    assert set(search.best_params_) == {"alpha", "hidden_layer_sizes"} and search.best_score_ > 0.8


def test_pickle_goes_through_the_model_file():
    x, y = iris()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    state = clf.__getstate__()
    assert "model_" not in state and isinstance(state["_model_file"], bytes)
    again = pickle.loads(pickle.dumps(clf))
    numpy.testing.assert_array_equal(again.predict_proba(x), clf.predict_proba(x))


def test_warm_start_continues_from_the_weights():
    x, y = iris()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
        first = clf.model_.get_weights()
        clf.fit(x, y)
    assert len(clf.loss_curve_) == 10 and clf.loss_curve_[5] < clf.loss_curve_[0]
    assert not numpy.array_equal(first[0], clf.model_.get_weights()[0])


def test_bad_input_is_the_error_scikit_learn_expects():
    x, y = iris()
    with pytest.raises(ValueError, match="lbfgs"):
        MLPClassifier(solver="lbfgs").fit(x, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(0,)).fit(x, y)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        MLPRegressor().predict(x)


def test_importing_xpann_does_not_import_scikit_learn():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import sys, xpann, xpann.tabular; print('sklearn' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_partial_fit_is_one_epoch_from_where_the_last_left_off():
    x, y = iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, shuffle=False, random_state=0).fit(x, y)
    step = MLPClassifier(hidden_layer_sizes=(8,), shuffle=False, random_state=0).partial_fit(x, y, classes=numpy.unique(y))
    numpy.testing.assert_array_equal(step.predict_proba(x), once.predict_proba(x))
    for _ in range(20):
        for part in range(0, 150, 50):
            step.partial_fit(x[part:part + 50], y[part:part + 50])
    assert step.loss_curve_[-1] < step.loss_curve_[0] and len(step.loss_curve_) == 61
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(x, y)
    with pytest.raises(ValueError, match="labels not in classes"):
        step.partial_fit(x[:2], numpy.array(["setosa", "rose"]))
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(x[:, :3], x[:, 3])
    reg = MLPRegressor(hidden_layer_sizes=(8,), batch_size=16, learning_rate_init=0.01, random_state=0)
    for _ in range(30):
        reg.partial_fit(x[:, :3], x[:, 3])
    assert reg.score(x[:, :3], x[:, 3]) > 0.5
