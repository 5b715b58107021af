"""Optimizers by name, with an optional cosine learning-rate schedule."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Union

import jax
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
    # A traced momentum (a stack's hyperparameter) always keeps the trace;
    # at 0 it adds nothing, so the result is that of plain SGD.
    traced = not isinstance(momentum, (int, float))
    return optax.sgd(lr, momentum=momentum if traced or momentum else None)
  if name == "adam":
    return optax.adam(lr)
  raise DecJaxError(f"Unknown optimizer {name!r}; expected one of {OPTIMIZERS}.")


def from_config(cfg, total_steps: int) -> optax.GradientTransformation:
  """The optimizer a config section (pretrain or dec) names: its optimizer,
  learning_rate, momentum and schedule over `total_steps`."""
  return make_optimizer(cfg.optimizer, cfg.learning_rate,
                        momentum=cfg.momentum, schedule=cfg.schedule,
                        total_steps=total_steps)


# The optimizer of a stack member, built from its hyperparameters (traced
# values under vmap), or one fixed transformation for every member.
TxFn = Union[optax.GradientTransformation,
             Callable[[dict], optax.GradientTransformation]]


def as_tx_fn(tx: TxFn) -> Callable[[Any], optax.GradientTransformation]:
  """tx as a function of a member's hyperparameters."""
  if isinstance(tx, optax.GradientTransformation):
    return lambda hp: tx
  return tx


@functools.partial(jax.jit, static_argnums=0)
def init_states(tx: TxFn, params: Any, hp: dict) -> dict:
  """The train states {'params', 'opt'} of a stack: stacked params [S, ...]
  and each member's optimizer state, built from its own hp ([S] arrays).
  One compiled program (an eager vmap would compile op by op)."""
  return jax.vmap(lambda p, h: {"params": p, "opt": as_tx_fn(tx)(h).init(p)})(
      params, hp)


@dataclasses.dataclass(frozen=True)
class HyperOptimizer:
  """The optimizer of a config section (pretrain or dec) as a function of a
  member's hp: `learning_rate` and `momentum` come from hp (so a stack's
  members may differ in them), the rest from here. Equal settings give
  equal (hashable) values, so the compiled programs built from one are
  reused by the next run in the same process (dec_loop._stack_fns)."""
  optimizer: str
  schedule: str
  total_steps: int

  def __call__(self, hp: dict) -> optax.GradientTransformation:
    return make_optimizer(self.optimizer, hp["learning_rate"],
                          momentum=hp["momentum"], schedule=self.schedule,
                          total_steps=self.total_steps)


def from_hyper(cfg, total_steps: int) -> HyperOptimizer:
  """The HyperOptimizer of config section `cfg` over `total_steps`."""
  return HyperOptimizer(cfg.optimizer, cfg.schedule, int(total_steps))
