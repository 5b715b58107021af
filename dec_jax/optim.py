"""Optimizers by name, with an optional cosine learning-rate schedule."""

from __future__ import annotations

import optax

from dec_jax.errors import DecJaxError

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


def make_optimizer(name: str, learning_rate: float, *, momentum: float = 0.9,
                   schedule: str = "constant",
                   total_steps: int = 0) -> optax.GradientTransformation:
  """SGD with momentum (DEC-keras's recipe) or Adam.

  With `schedule='cosine'` the rate decays from `learning_rate` to 0 over
  `total_steps`.
  """
  if schedule == "constant":
    lr = learning_rate
  elif schedule == "cosine":
    lr = optax.cosine_decay_schedule(learning_rate, max(total_steps, 1))
  else:
    raise DecJaxError(f"Unknown schedule {schedule!r}; expected one of "
                      f"{SCHEDULES}.")
  if name == "sgd":
    return optax.sgd(lr, momentum=momentum or None)
  if name == "adam":
    return optax.adam(lr)
  raise DecJaxError(f"Unknown optimizer {name!r}; expected one of {OPTIMIZERS}.")


def from_config(cfg, total_steps: int) -> optax.GradientTransformation:
  """The optimizer a config section (pretrain or dec) names: its optimizer,
  learning_rate, momentum and schedule over `total_steps`."""
  return make_optimizer(cfg.optimizer, cfg.learning_rate,
                        momentum=cfg.momentum, schedule=cfg.schedule,
                        total_steps=total_steps)
