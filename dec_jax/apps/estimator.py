"""A scikit-learn-style estimator around the runner, for notebooks.

  from dec_jax.apps.estimator import DEC
  model = DEC(n_clusters=10, pretrain_epochs=50).fit(x)   # x [N, D] or images
  labels = model.labels_                  # the training data's clusters
  model.predict(x_new); model.transform(x_new); model.predict_proba(x_new)

`fit` runs exactly what `python -m experiments.main` runs (same config, same
workdir files, same checkpoints; plots only with `report` overridden to
True) on in-memory arrays; the fitted model is
the workdir's trained DEC/IDEC model (`dec_jax.predict.TrainedModel`).
Inputs are checked as scikit-learn's estimators check theirs (finite,
numeric, dense, at least 2 samples; `n_features_in_`), and scikit-learn's
estimator checks pass (tests/test_estimator.py lists those that cannot).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Optional, Sequence

import ml_collections
import numpy as np
from scipy import sparse
from sklearn import base
from sklearn.utils import multiclass
from sklearn.utils import validation

from dec_jax.apps import report
from dec_jax.runner import data
from dec_jax.errors import DecJaxError
from dec_jax.apps.predict import TrainedModel, load_trained
from dec_jax.runner.config import get_config as default_config
from dec_jax.methods import METHODS
from dec_jax.runner.run import run

# The methods whose trained model predicts new data.
TRAINABLE_METHODS = tuple(sorted(name for name, m in METHODS.items()
                                 if m.predicts))
# The config fields the estimator's parameters set (field: parameter).
PARAMETERS = {"method": "method", "seed": "seed", "n_clusters": "n_clusters",
              "model.dims": "dims", "pretrain.epochs": "pretrain_epochs",
              "pretrain.optimizer": "pretrain_optimizer",
              "pretrain.learning_rate": "pretrain_learning_rate",
              "dec.update_interval": "update_interval",
              "dec.maxiter": "maxiter", "dec.tol": "tol", "scale": "scale"}
# Fields an estimator fits one model of: several members, a consensus or
# another data set are runs.
NOT_OVERRIDABLE = ("seeds", "grid", "ensemble", "dataset", "split",
                   "data_dir")


def _set(config: ml_collections.ConfigDict, name: str, value: Any) -> None:
  """Sets the existing config field `name` (dotted) to value."""
  *parents, leaf = name.split(".")
  try:
    node = config
    for parent in parents:
      node = node[parent]
    node[leaf]  # pylint: disable=pointless-statement  # must exist
    node[leaf] = value
  except (KeyError, TypeError, AttributeError) as e:
    raise DecJaxError(f"DEC estimator: cannot set config field {name!r} "
                      f"to {value!r} ({e}).") from None


class DEC(base.ClusterMixin, base.TransformerMixin, base.BaseEstimator):
  """Deep Embedded Clustering (or IDEC: `method="idec"`) as an estimator.

  Args:
    n_clusters: number of clusters k.
    method: `dec` or `idec` (the methods that train a model to predict with).
    dims: hidden layer widths of the encoder, embedding width last.
    pretrain_epochs, pretrain_optimizer, pretrain_learning_rate: the
      autoencoder's pretraining (its cosine schedule and every field not
      named here are the default config's: default.py's recipe).
    update_interval, maxiter, tol: the clustering loop (see config.dec).
    scale: inputs are divided by this; `auto`: 255 for uint8, else 1.
    seed: the run's seed (initialisation, shuffling, k-means): `fit` is
      deterministic for a seed.
    workdir: where the run's files go; None: a new temporary folder
      (kept, see `workdir_`). A workdir with a finished run is refused.
    config_overrides: any other config fields, dotted names to values,
      e.g. `{"dec.learning_rate": 0.001, "model.dtype": "bfloat16"}`;
      not those in NOT_OVERRIDABLE (one model per fit, on x) nor those
      a parameter sets (PARAMETERS).
      The pretraining and clustering batch sizes are capped at the number
      of samples (as scikit-learn's MLP caps its batch size).

  Attributes after `fit`: `labels_` [N], `soft_assignment_` [N, k],
  `results_` (what results.json holds: ACC/NMI/ARI when `y` was given,
  times, ...), `model_` (`TrainedModel`), `workdir_`, `n_features_in_`
  (D, the width of a flattened input row).
  """

  def __init__(self, n_clusters: int = 10, *, method: str = "dec",
               dims: Sequence[int] = (500, 500, 2000, 10),
               pretrain_epochs: int = 200, pretrain_optimizer: str = "adam",
               pretrain_learning_rate: float = 1e-3,
               update_interval: int = 140, maxiter: int = 20_000,
               tol: float = 0.001, scale: str | float = "auto", seed: int = 0,
               workdir: Optional[str] = None,
               config_overrides: Optional[dict[str, Any]] = None):
    self.n_clusters = n_clusters
    self.method = method
    self.dims = dims
    self.pretrain_epochs = pretrain_epochs
    self.pretrain_optimizer = pretrain_optimizer
    self.pretrain_learning_rate = pretrain_learning_rate
    self.update_interval = update_interval
    self.maxiter = maxiter
    self.tol = tol
    self.scale = scale
    self.seed = seed
    self.workdir = workdir
    self.config_overrides = config_overrides

  def make_config(self) -> ml_collections.ConfigDict:
    """The run config these settings stand for (no plots unless
    `config_overrides={"report": True}`)."""
    if self.method not in TRAINABLE_METHODS:
      raise DecJaxError(f"DEC estimator: method must be one of "
                        f"{TRAINABLE_METHODS}, got {self.method!r}.")
    config = default_config()
    config.report = False
    for field, parameter in PARAMETERS.items():
      if field != "scale":  # the data's own (data.from_arrays)
        value = getattr(self, parameter)
        _set(config, field, tuple(value) if field == "model.dims" else value)
    for name, value in (self.config_overrides or {}).items():
      if name in NOT_OVERRIDABLE:
        raise DecJaxError(
            f"DEC estimator: config_overrides cannot set {name!r} (one model "
            f"per fit, on x: run several members with experiments.main).")
      if name in PARAMETERS:
        raise DecJaxError(
            f"DEC estimator: config_overrides cannot set {name!r}: it is the "
            f"parameter {PARAMETERS[name]}=.")
      _set(config, name, value)
    return config

  def __sklearn_tags__(self):
    tags = super().__sklearn_tags__()
    tags.non_deterministic = False  # a seed gives the same fit
    # transform() gives float32 embeddings whatever the input dtype.
    tags.transformer_tags.preserves_dtype = ["float32"]
    return tags

  def _check_x(self, x, *, reset: bool):
    """x as scikit-learn checks it, flattened to rows [N, D]; returns those
    rows and the shape of one sample (images keep theirs for conv models).
    Raises ValueError / TypeError with scikit-learn's messages."""
    sample_shape = None
    if not (sparse.issparse(x) or hasattr(x, "columns")):  # not a DataFrame
      x = np.asarray(x)
      if x.ndim > 2:  # images [N, H, W, ...]
        sample_shape = x.shape[1:]
        x = x.reshape(x.shape[0], -1)
    x = validation.validate_data(self, x, reset=reset,
                                 ensure_min_samples=2 if reset else 1)
    return x, sample_shape

  @staticmethod
  def _check_y(y, n: int) -> Optional[np.ndarray]:
    """Class labels of any type (ints, strings, objects) as integer codes
    [N]: the scores only compare partitions, so the names do not matter."""
    if y is None:
      return None
    y = validation.column_or_1d(y)
    if y.shape[0] != n:
      raise DecJaxError(f"y: labels must have shape [{n}] to match x, got "
                        f"shape {y.shape}.")
    kind = multiclass.type_of_target(y, input_name="y", raise_unknown=True)
    if kind not in ("binary", "multiclass"):
      raise DecJaxError(f"y: labels must be class labels, got {kind} "
                        "values.")
    return np.unique(y, return_inverse=True)[1].astype(np.int32)

  def fit(self, x, y=None) -> "DEC":
    """Pretrains, initialises with k-means and runs DEC on x [N, ...];
    labels y [N], if given, are only used to score the run."""
    config = self.make_config()
    x, sample_shape = self._check_x(x, reset=True)
    if sample_shape is not None:
      x = x.reshape((x.shape[0],) + sample_shape)
    for stage in ("pretrain", "dec"):
      config[stage].batch_size = min(config[stage].batch_size, x.shape[0])
    dataset = data.from_arrays(x, self._check_y(y, x.shape[0]),
                               scale=self.scale)
    workdir = self.workdir or tempfile.mkdtemp(prefix="dec_jax-")
    self.results_ = run(config, workdir, dataset=dataset,
                        after_member=report.hook(config))
    self.workdir_ = os.path.abspath(workdir)
    with np.load(os.path.join(self.workdir_, "assignments.npz")) as saved:
      self.labels_, self.soft_assignment_ = saved["labels"], saved["q"]
    self.model_: TrainedModel = load_trained(self.workdir_)
    return self

  def _raw(self, x) -> np.ndarray:
    """New data checked and flattened, as given: `model_` (a TrainedModel)
    divides them by the training run's scale itself."""
    base.check_is_fitted(self, "model_")
    x, _ = self._check_x(x, reset=False)
    return x

  def predict(self, x) -> np.ndarray:
    """Cluster ids [N] of new data, scaled as the training data was."""
    x = self._raw(x)
    return self.model_.predict(x)

  def predict_proba(self, x) -> np.ndarray:
    """Soft assignments q [N, k] of new data."""
    x = self._raw(x)
    return self.model_.soft_assign(x)

  def transform(self, x) -> np.ndarray:
    """Embeddings z [N, d] of new data."""
    x = self._raw(x)
    return self.model_.embed(x)

  def fit_predict(self, x, y=None, **kwargs) -> np.ndarray:
    """Fits on x and returns its cluster ids (the final DEC assignment)."""
    return self.fit(x, y).labels_
