"""The clustering methods, one module each, found by name (`config.method`).

A method is a `Method`: its name, what it needs and offers (an autoencoder?
does it save a model that predicts new data?), the checks of its config
section, and `run(stack) -> [one dict per member]` holding at least `labels`
(the final hard assignment) and optionally `soft_assignment` [N, K]; the
runner scores them and writes the results. Adding a method is one module
here that calls `register`, plus its import below.
"""

from __future__ import annotations

from dec_jax.errors import DecJaxError
from dec_jax.methods.base import Method

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


# pylint: disable=g-import-not-at-top,wrong-import-position
from dec_jax.methods import ae_kmeans, dec, kmeans, n2d  # noqa: E402,F401
