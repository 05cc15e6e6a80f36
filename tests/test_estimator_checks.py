"""Both models are scikit-learn estimators: they pass scikit-learn's own ``check_estimator``.

Each check is one test (``parametrize_with_checks``): input validation (``validate_data``),
``NotFittedError`` before ``fit``, cloning, pickling, ``n_features_in_``, and a classifier that
must learn a small blob problem. A check expected to fail is listed with its reason. The
defaults and the squared loss run in the quick suite; the other configurations are ``slow``.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline.models.numpy_mlp import NumpyMLP
from pipeline.models.sklearn_mlp import SklearnMLP

NUMPY_ONLY = {
    "check_array_api_input": (
        "the models compute in NumPy only; scikit-learn skips the check unless SCIPY_ARRAY_API=1"
    )
}
# float32 arithmetic agrees with itself to within rounding, not to the check's rtol=1e-7: BLAS
# may round a row's products differently by where the row sits in a block, so reordering the
# samples can move a probability by an ulp (~6e-8). The float64 models pass this check.
FLOAT32 = {
    "check_methods_sample_order_invariance": (
        "float32: a row's probabilities may differ by an ulp when the samples are reordered "
        "(BLAS blocking), more than the check's rtol=1e-7; the float64 models pass it"
    )
}


def _expected_failures(estimator) -> dict[str, str]:
    return NUMPY_ONLY | (FLOAT32 if estimator.dtype == "float32" else {})


@parametrize_with_checks(
    [
        NumpyMLP(),  # the defaults: sigmoid outputs, quadratic cost, float32
        NumpyMLP(loss="squared", activation="tanh", learning_rate=0.01, dtype="float64"),
    ],
    expected_failed_checks=_expected_failures,
)
def test_numpy_mlp_is_a_scikit_learn_classifier(estimator, check):
    check(estimator)


@pytest.mark.slow  # ~8 s per configuration
@parametrize_with_checks(
    [NumpyMLP(dtype="float64"), NumpyMLP(loss="cross_entropy", dtype="float64")],
    expected_failed_checks=_expected_failures,
)
def test_numpy_mlp_is_a_scikit_learn_classifier_in_float64(estimator, check):
    check(estimator)


# ``loss`` must be set: MLPClassifier trains cross-entropy only, and MLPBase's default is "mse".
@pytest.mark.slow  # MLPClassifier takes each mini-batch in its own partial_fit call: ~25 s
@parametrize_with_checks(
    [SklearnMLP(loss="cross_entropy", dtype="float64"), SklearnMLP(loss="cross_entropy")],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_mlp_is_a_scikit_learn_classifier(estimator, check):
    check(estimator)
