"""What a method is: a name, what it needs and offers, and how it runs."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

import ml_collections

from dec_jax.errors import DecJaxError

if TYPE_CHECKING:
  from dec_jax.runner.stack import Stack


def _no_checks(config: ml_collections.ConfigDict, *args) -> None:
  del config, args


@dataclasses.dataclass(frozen=True)
class Method:
  """A clustering method.

  Attributes:
    name: `config.method`'s value.
    run: run(stack) -> one output dict per member (labels, optionally
      soft_assignment [N, K], n_clusters and what results.json should add).
    summary: one line for help texts and the docs.
    needs_autoencoder: it pretrains (or reuses) an autoencoder.
    predicts: it saves checkpoints/dec, a model that predicts new data
      (`dec_jax.predict.load_trained`, the estimator).
    stages: the training stages it runs (config sections whose batch
      size must fit the data).
    streams: it runs with data_on_device=False (data streamed from host).
    refines_from_consensus: ensemble=consensus_refine reruns its clustering
      stage from the members' consensus.
    check: check(config) raises a DecJaxError for a bad config section.
    check_size: check_size(config, n) does so against the data size.
    config_sections: the config sections it reads, each a function that
      returns the section with its defaults (collected by config.py).
  """
  name: str
  run: Callable[["Stack"], list[dict]]
  summary: str
  needs_autoencoder: bool = True
  predicts: bool = False
  stages: tuple[str, ...] = ("pretrain",)
  streams: bool = True
  refines_from_consensus: bool = False
  check: Callable[[ml_collections.ConfigDict], None] = _no_checks
  check_size: Callable[[ml_collections.ConfigDict, int], None] = _no_checks
  config_sections: dict[str, Callable[[], ml_collections.ConfigDict]] = (
      dataclasses.field(default_factory=dict))


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
  METHODS[method.name] = method
  return method


def get(name: str) -> Method:
  """The method called `name`; a clear error naming the known ones."""
  if name not in METHODS:
    raise DecJaxError(f"Unknown method {name!r}; expected one of "
                      f"{sorted(METHODS)}.")
  return METHODS[name]


def config_sections() -> dict:
  """name -> function returning the section, over all methods."""
  return {name: make for method in METHODS.values()
          for name, make in method.config_sections.items()}


