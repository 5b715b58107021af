"""The clustering methods, one module each, found by name (`config.method`).

A method is a `Method`: its name, what it needs and offers (an autoencoder?
does it save a model that predicts new data?), the checks of its config
section, and `run(stack) -> [one dict per member]` holding at least `labels`
(the final hard assignment) and optionally `soft_assignment` [N, K]; the
runner scores them and writes the results. Adding a method is one module
here that calls `register`, plus its import below.
"""

from __future__ import annotations

# The registry lives in base.py (each method module registers itself there);
# importing the modules here fills it.
from dec_jax.methods.base import METHODS, Method, config_sections, get, register

from dec_jax.methods import ae_kmeans, dec, kmeans, n2d  # noqa: F401,E402

__all__ = ["METHODS", "Method", "config_sections", "get", "register"]
