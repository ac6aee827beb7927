"""The scikit-learn transformer: estimator checks, pipelines with grid search, labels, feature names, NaN."""

from __future__ import annotations

import numpy as np
import pytest
from multiclass_scenes import CLASS_IDS, planted_pair_scene
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from bandselect.errors import LabelError, NotFittedError, WavelengthError
from bandselect.selectors import OrthogonalProjectionBandSelector, SupervisedFullSpectrumBandSelector
from bandselect.sklearn_api import METHODS, SpectralBandSelector

SCENE = planted_pair_scene()
X = SCENE.cube.reshape(-1, SCENE.cube.shape[-1])
Y = SCENE.labels.reshape(-1)
#: Estimator checks that cannot apply, and why (the rest must pass).
NOT_APPLICABLE = {
    # The statistics engine is NumPy: inputs of other array libraries are converted, not computed on.
    "check_array_api_input": "array API inputs are not supported (tag array_api_support=False; scikit-learn "
    "skips it unless SCIPY_ARRAY_API is set)",
}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:k=3 is greater than n_features")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("method", METHODS)
def test_passes_sklearn_estimator_checks(method: str) -> None:
    results = check_estimator(SpectralBandSelector(method=method), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert not failed, failed
    assert skipped <= set(NOT_APPLICABLE), skipped
    assert len(results) > 40


def test_pipeline_with_grid_search_finds_the_planted_bands() -> None:
    counted = Y != 0
    pipeline = Pipeline(
        [
            ("select", SpectralBandSelector(wavelengths_nm=SCENE.wavelengths_nm)),
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    )
    grid = GridSearchCV(
        pipeline,
        {"select__k": [2, 6], "select__method": ["separability", "orthogonal_projection"]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )
    grid.fit(X[counted], Y[counted])
    assert grid.best_params_ == {"select__k": 6, "select__method": "separability"}
    assert grid.best_score_ > 0.95
    best = grid.best_estimator_.named_steps["select"]
    assert best.get_support(indices=True).tolist() == sorted(SCENE.planted)
    names = grid.best_estimator_[:-1].get_feature_names_out()
    assert names.tolist() == [str(float(SCENE.wavelengths_nm[b])) for b in sorted(SCENE.planted)]


def test_labels_follow_the_label_rule() -> None:
    selector = SpectralBandSelector(k=6, ignore_label=0).fit(X, Y)
    assert selector.classes_.tolist() == list(CLASS_IDS)
    assert sorted(selector.indices_.tolist()) == sorted(SCENE.planted)
    # Any label values, -1 for unlabelled rows as scikit-learn's semi-supervised estimators mark them.
    names = np.array(["soil", "tree", "water", "road"])
    words = np.where(Y == 0, "none", names[np.searchsorted(CLASS_IDS, np.where(Y == 0, 3, Y))])
    as_words = SpectralBandSelector(k=6).fit(X[Y != 0], words[Y != 0])
    assert as_words.indices_.tolist() == selector.indices_.tolist()
    semi = SpectralBandSelector(k=6, ignore_label=-1).fit(X, np.where(Y == 0, -1, Y))
    assert semi.indices_.tolist() == selector.indices_.tolist()
    # The same pixels through the selector node select the same bands, in the same order.
    node = SupervisedFullSpectrumBandSelector(
        num_spectral_bands=X.shape[1], criterion="separability", k=6, multiclass=True
    ).fit(SCENE.cube[None], SCENE.labels[None], ignore_label=0)
    assert node.selected_indices.tolist() == selector.indices_.tolist()
    one_vs_rest = SpectralBandSelector(k=3, positive_label=12, ignore_label=0).fit(X, Y)
    assert one_vs_rest.classes_.tolist() == [0, 1]
    pairs_of_12 = [b for b, (i, j) in zip(SCENE.planted, SCENE.pairs, strict=True) if 2 in (i, j)]
    assert sorted(one_vs_rest.indices_.tolist()) == sorted(pairs_of_12)


def test_unsupervised_methods_match_their_nodes() -> None:
    node = OrthogonalProjectionBandSelector(num_spectral_bands=X.shape[1], k=5).fit(SCENE.cube[None])
    estimator = SpectralBandSelector("orthogonal_projection", k=5).fit(X)
    assert estimator.indices_.tolist() == node.selected_indices.tolist()
    selection = (
        SpectralBandSelector("orthogonal_projection", k=5, wavelengths_nm=SCENE.wavelengths_nm)
        .fit(X)
        .selection_
    )
    assert selection.selector_type == "OrthogonalProjectionBandSelector"
    assert list(selection.indices) == node.selected_indices.tolist()


def test_bad_input() -> None:
    with pytest.raises(NotFittedError):
        SpectralBandSelector().transform(X)
    with pytest.raises(LabelError, match="one class only"):
        SpectralBandSelector(ignore_label=0).fit(X, np.where(Y == 3, 3, 0))
    with pytest.raises(LabelError, match="two different classes"):
        SpectralBandSelector(positive_label=3, ignore_label=3).fit(X, Y)
    with pytest.raises(LabelError, match="positive_label=5"):
        SpectralBandSelector(positive_label=5).fit(X, Y)
    with pytest.raises(ValueError, match="requires y"):
        SpectralBandSelector().fit(X)
    with pytest.raises(WavelengthError, match="24 values"):
        SpectralBandSelector(wavelengths_nm=[500.0, 600.0]).fit(X, Y)
    with pytest.raises(WavelengthError, match="wavelengths_nm"):
        SpectralBandSelector().fit(X, Y).selection_  # noqa: B018


def test_nan_rows_raise_or_are_left_out() -> None:
    dirty = X.copy()
    dirty[::7, 5] = np.nan  # a planted band: selected, so transform shows the NaN
    with pytest.raises(ValueError, match="NaN"):
        SpectralBandSelector(k=6).fit(dirty, Y)
    omitted = SpectralBandSelector(k=6, nan_policy="omit", ignore_label=0).fit(dirty, Y)
    kept = ~np.isnan(dirty).any(axis=1)
    dropped = SpectralBandSelector(k=6, ignore_label=0).fit(X[kept], Y[kept])
    assert omitted.indices_.tolist() == dropped.indices_.tolist()
    assert omitted.statistics_.n_nonfinite == int((~kept & (Y != 0)).sum())
    assert np.isnan(omitted.transform(dirty)).any()  # transform passes the rows through


def test_feature_names_from_a_dataframe_of_wavelength_columns() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(X, columns=[str(float(w)) for w in SCENE.wavelengths_nm])
    selector = SpectralBandSelector(k=6, ignore_label=0).fit(frame, Y)
    assert np.array_equal(selector.wavelengths_nm_, SCENE.wavelengths_nm)
    assert selector.selection_.wavelengths_nm == tuple(
        float(SCENE.wavelengths_nm[i]) for i in selector.indices_
    )
    assert list(selector.transform(frame).shape) == [X.shape[0], 6]


def test_bands_out_of_order_say_how_to_reorder_the_columns() -> None:
    # AVIRIS lists the bands of its overlapping spectrometers out of order (jasper's bands 28, 29).
    order = np.arange(X.shape[1])
    order[[4, 5]] = order[[5, 4]]
    unsorted_x, unsorted_wl = X[:, order], SCENE.wavelengths_nm[order]
    with pytest.raises(WavelengthError, match=r"np\.argsort\(wavelengths_nm") as error:
        SpectralBandSelector(k=6, wavelengths_nm=unsorted_wl).fit(unsorted_x, Y)
    assert "bands 4 and 5" in str(error.value)
    # The remedy, as the message writes it, gives the selection of the sorted scene.
    fix = np.argsort(unsorted_wl, kind="stable")
    fitted = SpectralBandSelector(k=6, wavelengths_nm=unsorted_wl[fix]).fit(unsorted_x[:, fix], Y)
    reference = SpectralBandSelector(k=6, wavelengths_nm=SCENE.wavelengths_nm).fit(X, Y)
    assert sorted(fitted.get_support(indices=True)) == sorted(reference.get_support(indices=True))
    assert sorted(fitted.get_support(indices=True)) == sorted(SCENE.planted)
