"""Autoencoder pretraining: MSE reconstruction, one compiled scan per epoch."""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax

from dec_jax import batching
from dec_jax.errors import TrainingDiverged
from dec_jax.models import Autoencoder, Params


def reconstruction_loss(model: Autoencoder, params: Params,
                        x: jax.Array) -> jax.Array:
  """Mean squared error over all elements of x [B, D] (Keras's 'mse')."""
  recon = model.apply({"params": params}, x).astype(jnp.float32)
  return jnp.mean((recon - x) ** 2)


def make_epoch_fn(model: Autoencoder, tx: optax.GradientTransformation,
                  num_samples: int, batch_size: int):
  """Returns epoch(state, x, key) -> (state, mean loss), jitted, state donated.

  state = {'params': ..., 'opt': ...}. One call runs ceil(N / batch) steps of
  shuffled minibatches inside a `lax.scan`; x stays on the device.
  """
  steps = -(-num_samples // batch_size)

  def step(state, batch_idx, x):
    loss, grads = jax.value_and_grad(
        functools.partial(reconstruction_loss, model))(state["params"],
                                                       x[batch_idx])
    updates, opt = tx.update(grads, state["opt"], state["params"])
    return {"params": optax.apply_updates(state["params"], updates),
            "opt": opt}, loss

  @functools.partial(jax.jit, donate_argnums=0)
  def epoch(state, x, key):
    idx = batching.epoch_indices(key, num_samples, steps, batch_size)
    state, losses = jax.lax.scan(lambda s, i: step(s, i, x), state, idx)
    return state, jnp.mean(losses)

  return epoch


def pretrain(model: Autoencoder, params: Params, x: jax.Array, key: jax.Array,
             tx: optax.GradientTransformation, *, epochs: int, batch_size: int,
             log_every: int = 10,
             log_fn: Optional[Callable[[dict], Any]] = None,
             state: Optional[dict] = None, start_epoch: int = 0,
             checkpoint_every: int = 0,
             checkpoint_fn: Optional[Callable[[int, dict], Any]] = None
             ) -> Params:
  """Trains the autoencoder for `epochs` passes; logs every `log_every` epochs.

  Every `checkpoint_every` epochs (0: never) whose loss is finite,
  `checkpoint_fn(epoch, state)` may save state = {'params', 'opt'}; passing
  that state and `start_epoch=epoch` back resumes exactly where it stopped
  (epoch e always shuffles with fold_in(key, e)).
  """
  x = jnp.asarray(x)
  epoch_fn = make_epoch_fn(model, tx, x.shape[0], batch_size)
  if state is None:
    params = jax.tree.map(jnp.array, params)  # the caller's copy survives
    state = {"params": params, "opt": tx.init(params)}
  start = time.perf_counter()
  for epoch in range(start_epoch + 1, epochs + 1):
    state, loss = epoch_fn(state, x, jax.random.fold_in(key, epoch))
    log = epoch % log_every == 0 or epoch == epochs
    save = (checkpoint_fn is not None and checkpoint_every > 0
            and epoch % checkpoint_every == 0 and epoch < epochs)
    if log or save:
      loss = float(loss)
      if not math.isfinite(loss):
        raise TrainingDiverged(
            f"pretraining diverged by epoch {epoch} (loss {loss}); rerun "
            "with a lower pretrain.learning_rate.")
    if log and log_fn:
      log_fn({"stage": "pretrain", "epoch": epoch, "loss": loss,
              "time_s": time.perf_counter() - start})
    if save:
      checkpoint_fn(epoch, state)
  return state["params"]
