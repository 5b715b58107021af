"""The scikit-learn-style estimator: fit / predict / transform / fit_predict
on arrays, the same result as the runner, sklearn's parameter protocol."""

import numpy as np
import pytest
from sklearn import base
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError

from dec_jax.errors import DecJaxError
from dec_jax.apps.estimator import DEC


def _small(**overrides):
  settings = dict(n_clusters=4, dims=(32, 4), pretrain_epochs=15,
                  update_interval=10, maxiter=40,
                  config_overrides={"pretrain.batch_size": 32,
                                    "dec.batch_size": 32, "kmeans.n_init": 4})
  settings.update(overrides)
  return DEC(**settings)


@pytest.fixture(scope="module")
def blobs():
  x, y = make_blobs(n_samples=240, centers=4, n_features=8, cluster_std=0.6,
                    random_state=0)
  return x.astype(np.float32), y


def test_fit_predict_transform_on_arrays(blobs, tmp_path):
  x, y = blobs
  model = _small(workdir=str(tmp_path / "run")).fit(x, y)
  assert model.labels_.shape == (240,)
  assert model.results_["acc"] > 0.9  # four well-separated blobs
  # predict on the training data gives the final DEC assignment
  np.testing.assert_array_equal(model.predict(x), model.labels_)
  np.testing.assert_allclose(model.predict_proba(x), model.soft_assignment_,
                             atol=1e-5)
  assert model.transform(x[:7]).shape == (7, 4)
  assert model.predict_proba(x[:3]).sum(axis=1) == pytest.approx(1.0)


def test_fit_predict_equals_labels_and_is_seeded(blobs):
  x, _ = blobs
  first = _small(seed=1).fit_predict(x)
  np.testing.assert_array_equal(first, _small(seed=1).fit_predict(x))


def test_sklearn_parameter_protocol():
  model = _small(method="idec")
  clone = base.clone(model)
  assert clone.get_params() == model.get_params()
  clone.set_params(n_clusters=3)
  assert clone.make_config().n_clusters == 3
  assert clone.make_config().method == "idec"


@pytest.mark.parametrize("settings, message", [
    (dict(method="kmeans"), "method must be one of"),
    (dict(config_overrides={"dec.nope": 1}), "dec.nope"),
    (dict(config_overrides={"dec.batch_size": "big"}), "dec.batch_size"),
])
def test_bad_settings_are_clear_errors(settings, message):
  with pytest.raises(DecJaxError, match=message):
    _small(**settings).make_config()


def test_predict_before_fit_and_wrong_width_are_clear_errors(blobs,
                                                             tmp_path):
  x, _ = blobs
  with pytest.raises(NotFittedError):
    _small().predict(x)
  model = _small(maxiter=10, workdir=str(tmp_path / "w")).fit(x)
  with pytest.raises(DecJaxError, match="does not fit the model"):
    model.predict(x[:, :5])
