"""Autoencoder pretraining: MSE reconstruction, one compiled scan per epoch.

`pretrain` trains the whole autoencoder end to end; `greedy_pretrain` first
trains an MLP's layers one pair at a time as denoising autoencoders (the
original DEC's initialisation), before that end-to-end stage.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dec_jax.train import batching
from dec_jax.train.member_axis import over_members
from dec_jax import parallel
from dec_jax.nn.augment import AugmentFn
from dec_jax.errors import DecJaxError, TrainingDiverged
from dec_jax.train.optim import TxFn, as_tx_fn, init_states
from dec_jax.nn.models import (MLP, MLP_INITS, AnyAutoencoder, Autoencoder,
                               Params)

DROPOUT_RATE = 0.2  # DEC's corruption in greedy layer-wise pretraining


def reconstruction_loss(model: AnyAutoencoder, params: Params,
                        x: jax.Array) -> jax.Array:
  """Mean squared error over all elements of x [B, D] (Keras's 'mse')."""
  recon = model.apply({"params": params}, x).astype(jnp.float32)
  return jnp.mean((recon - x) ** 2)


def reconstruction_errors(model: AnyAutoencoder, params: Params, x,
                          chunk_size: int,
                          input_divisor: float = 1.0) -> jax.Array:
  """Each row's mean squared reconstruction error [N] on the clean features
  x / input_divisor (x [N, ...] on the device, uint8 decoded per chunk), in
  chunks of bounded memory: what pretraining reached, without augmentation."""
  def rows(xb):
    features = batching.as_features(xb, input_divisor)
    recon = model.apply({"params": params}, features).astype(jnp.float32)
    return jnp.mean((recon - features) ** 2,
                    axis=tuple(range(1, features.ndim)))
  return batching.map_in_chunks(rows, x, chunk_size)


def _train_step(loss_fn: Callable[..., jax.Array], tx: TxFn,
                input_divisor: float):
  """step(state, xb, step_key, hp) -> (state, loss): one optimizer step on
  the minibatch xb (stored inputs, decoded here), rows split over the mesh;
  hp: the member's hyperparameters the optimizer is built from."""
  grad_fn = jax.value_and_grad(loss_fn)
  tx_fn = as_tx_fn(tx)

  def step(state, xb, step_key, hp):
    xb = parallel.shard_rows(batching.as_features(xb, input_divisor))
    loss, grads = grad_fn(state["params"], xb, step_key)
    updates, opt = tx_fn(hp).update(grads, state["opt"], state["params"])
    return {"params": optax.apply_updates(state["params"], updates),
            "opt": opt}, loss

  return step


def make_minibatch_epoch(loss_fn: Callable[..., jax.Array],
                         tx: TxFn, num_samples: int,
                         batch_size: int, *, stochastic: bool = False,
                         input_divisor: float = 1.0):
  """Returns epoch(state, x, key, hp=None) -> (state, mean loss), jitted,
  state donated: one member's epoch (`pretrain` maps it over a stack).

  state = {'params': ..., 'opt': ...}; hp: the member's hyperparameters when
  `tx` is a function of them (optim.from_hyper). One call runs ceil(N / batch) steps of
  shuffled minibatches of x inside a `lax.scan`; x stays on the device.
  `loss_fn(params, xb, step_key)` is the minibatch loss. With `stochastic`
  (corruption, augmentation) the key is split in two: one half shuffles,
  step i gets fold_in(other half, i); otherwise the whole key shuffles (as
  before these options existed) and step_key is None. Minibatches of x are
  decoded by `batching.as_features(., input_divisor)` (uint8 inputs).
  """
  steps = -(-num_samples // batch_size)
  step = _train_step(loss_fn, tx, input_divisor)

  @functools.partial(jax.jit, donate_argnums=0)
  def epoch(state, x, key, hp=None):
    key, step_key = batching.split_pass_key(key, stochastic)
    idx = batching.epoch_indices(key, num_samples, steps, batch_size)

    def scan_step(state, inputs):
      i, batch_idx = inputs
      return step(state, x[batch_idx],
                  None if step_key is None else jax.random.fold_in(step_key, i),
                  hp)

    state, losses = jax.lax.scan(scan_step, state, (jnp.arange(steps), idx))
    return state, jnp.mean(losses)

  return epoch


def make_streamed_epoch(loss_fn: Callable[..., jax.Array], tx: TxFn,
                        num_samples: int, batch_size: int, *,
                        stochastic: bool = False, input_divisor: float = 1.0,
                        segment_steps: int = 64):
  """make_minibatch_epoch for x [N, D] held in host memory (NumPy), over a
  stack: epoch(states, x, keys, hps) with a leading member axis.

  Each member's plan of minibatch indices is the one the resident epoch uses
  (same key, same batches, same result), and the members' batches are
  gathered on the host and sent to the device `segment_steps` at a time,
  each segment one compiled scan per member: device memory holds one segment
  per member, not the data set.
  """
  steps = -(-num_samples // batch_size)
  step = _train_step(loss_fn, tx, input_divisor)

  def plan(key):
    key, _ = batching.split_pass_key(key, stochastic)
    return batching.epoch_indices(key, num_samples, steps, batch_size)

  def segment(state, batches, key, first_step, hp):
    _, step_key = batching.split_pass_key(key, stochastic)

    def scan_step(state, inputs):
      i, xb = inputs
      return step(state, xb,
                  None if step_key is None else jax.random.fold_in(step_key, i),
                  hp)

    ids = first_step + jnp.arange(batches.shape[0])
    state, losses = jax.lax.scan(scan_step, state, (ids, batches))
    return state, jnp.sum(losses)

  plans = jax.jit(over_members(plan))
  segments = jax.jit(over_members(segment, in_axes=(0, 0, 0, None, 0)),
                     donate_argnums=0)

  def epoch(state, x: np.ndarray, keys, hp=None):
    idx = np.asarray(plans(keys))
    loss_sum = 0.0
    for first in range(0, steps, segment_steps):
      batches = jax.device_put(x[idx[:, first:first + segment_steps]])
      state, segment_loss = segments(state, batches, keys, first, hp)
      loss_sum = loss_sum + segment_loss
    return state, loss_sum / steps

  return epoch


def make_epoch_fn(model: AnyAutoencoder, tx: TxFn,
                  num_samples: int, batch_size: int,
                  augment_fn: Optional[AugmentFn] = None, *,
                  input_divisor: float = 1.0, streamed: bool = False):
  """Returns epoch(state, x, key, hp=None) -> (state, mean loss): one
  member's pretraining pass (see make_minibatch_epoch) on the reconstruction
  loss; with `streamed`, the stacked epoch of make_streamed_epoch.

  With `augment_fn(key, xb)` each minibatch is augmented first, and the
  autoencoder reconstructs the *augmented* images, as DEC-DA does (input and
  target are the same transformed image).
  """
  def loss(params, xb, key):
    if augment_fn is not None:
      xb = augment_fn(key, xb)
    return reconstruction_loss(model, params, xb)

  make = make_streamed_epoch if streamed else make_minibatch_epoch
  return make(loss, tx, num_samples, batch_size,
              stochastic=augment_fn is not None, input_divisor=input_divisor)


@functools.lru_cache(maxsize=16)
def _stack_epoch(model: AnyAutoencoder, tx: TxFn, num_samples: int,
                 batch_size: int, augment_fn: Optional[AugmentFn],
                 input_divisor: float, streamed: bool):
  """The stacked epoch(states, x, keys, hps) of make_epoch_fn, cached on its
  settings: the next run of equal settings in this process reuses the
  compiled program (see dec_loop._stack_fns)."""
  epoch_fn = make_epoch_fn(model, tx, num_samples, batch_size, augment_fn,
                           input_divisor=input_divisor, streamed=streamed)
  if streamed:
    return epoch_fn
  return jax.jit(over_members(epoch_fn, in_axes=(0, None, 0, 0)),
                 donate_argnums=0)


def pretrain(model: AnyAutoencoder, params: Optional[Params], x, keys:
             jax.Array, tx: TxFn, *, epochs: int, batch_size: int,
             hp: Optional[dict] = None, log_every: int = 10,
             log_fn: Optional[Callable[[int, dict], Any]] = None,
             state: Optional[dict] = None, start_epoch: int = 0,
             checkpoint_every: int = 0,
             checkpoint_fn: Optional[Callable[[int, dict], Any]] = None,
             augment_fn: Optional[AugmentFn] = None,
             input_divisor: float = 1.0,
             names: Optional[Sequence[str]] = None,
             elapsed_s: float = 0.0) -> Params:
  """Trains a stack of S autoencoders for `epochs` passes, as one program.

  params (or a resumed `state` = {'params', 'opt'}) carry a leading member
  axis, keys [S] shuffle each member's data (epoch e: fold_in(key, e)), and
  hp ([S] arrays) holds what `tx` reads when it is a function of them. Every
  `log_every` epochs, log_fn(member, record) gets each member's loss; every
  `checkpoint_every` epochs (0: never) with finite losses,
  `checkpoint_fn(epoch, state)` may save the stacked state, and passing it
  back with `start_epoch=epoch` resumes exactly. `augment_fn`: see
  make_epoch_fn; x / input_divisor are the features (uint8 x stays uint8).
  A NumPy x stays in host memory and is streamed (make_streamed_epoch).
  `elapsed_s`: seconds spent before a resume (the logs' time_s go on from
  it). Returns the stacked parameters.
  """
  streamed = isinstance(x, np.ndarray)
  x = x if streamed else jnp.asarray(x)
  epoch_fn = _stack_epoch(model, tx, x.shape[0], batch_size, augment_fn,
                          input_divisor, streamed)
  if state is None:
    params = jax.tree.map(jnp.array, params)  # the caller's copy survives
    state = init_states(tx, params, hp)
  names = list(names or [""] * keys.shape[0])
  start = time.perf_counter() - elapsed_s
  for epoch in range(start_epoch + 1, epochs + 1):
    epoch_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, epoch)
    state, losses = epoch_fn(state, x, epoch_keys, hp)
    log = epoch % log_every == 0 or epoch == epochs
    save = (checkpoint_fn is not None and checkpoint_every > 0
            and epoch % checkpoint_every == 0 and epoch < epochs)
    if log or save:
      losses = np.asarray(losses).tolist()
      for name, loss in zip(names, losses):
        if not math.isfinite(loss):
          raise TrainingDiverged(
              f"pretraining{name and ' of ' + name} diverged by epoch "
              f"{epoch} (loss {loss}); rerun with a lower "
              "pretrain.learning_rate.")
    if log and log_fn:
      for i, loss in enumerate(losses):
        log_fn(i, {"stage": "pretrain", "epoch": epoch, "loss": loss,
                   "time_s": time.perf_counter() - start})
    if save:
      checkpoint_fn(epoch, state)
  return state["params"]


# ------------------------------------------- greedy layer-wise pretraining


def corrupt(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
  """Dropout corruption: each element zeroed with probability `rate`, the
  others scaled by 1 / (1 - rate) (as Caffe's Dropout layer that DEC used),
  so the expected input is unchanged."""
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


def _check_mlp(model: AnyAutoencoder) -> int:
  """The number of layer pairs of an MLP autoencoder (error for others)."""
  if not isinstance(model, Autoencoder):
    raise DecJaxError("greedy layer-wise pretraining (pretrain.greedy_epochs) "
                      "is defined for model.kind=mlp only.")
  return len(model.dims) - 1


def _pair_names(model: Autoencoder, layer: int) -> tuple[str, str]:
  """Encoder layer `layer` (dims[layer] -> dims[layer+1]) and the decoder
  layer mirroring it (dims[layer+1] -> dims[layer])."""
  return f"dense_{layer}", f"dense_{len(model.dims) - 2 - layer}"


def layer_pair_params(model: Autoencoder, params: Params, layer: int) -> dict:
  """{'encoder': ..., 'decoder': ...}: the two Dense layers of pair `layer`."""
  enc, dec = _pair_names(model, layer)
  return {"encoder": params["encoder"][enc], "decoder": params["decoder"][dec]}


def set_layer_pair(model: Autoencoder, params: Params, layer: int,
                   pair: dict) -> Params:
  """A copy of params with pair `layer` replaced."""
  enc, dec = _pair_names(model, layer)
  return {"encoder": {**params["encoder"], enc: pair["encoder"]},
          "decoder": {**params["decoder"], dec: pair["decoder"]},
          **{k: v for k, v in params.items() if k not in ("encoder",
                                                          "decoder")}}


def denoising_loss(model: Autoencoder, layer: int, pair: dict, h: jax.Array,
                   key: Optional[jax.Array] = None,
                   rate: float = DROPOUT_RATE) -> jax.Array:
  """DEC's denoising autoencoder for layer pair `layer`, on its input h [B, n]:

    h~ = Dropout(h),  e = g1(W1 h~ + b1),  e~ = Dropout(e),
    y = g2(W2 e~ + b2),  loss = mean((y - h)^2)

  g1 is ReLU except for the embedding layer, g2 ReLU except for the
  reconstruction of the data (Xie et al., 2016, Sec. 3.2). key=None: no
  corruption (the clean reconstruction loss of the pair).
  """
  n = len(model.dims) - 1
  init = MLP_INITS[model.mlp_init]
  dense = lambda width: nn.Dense(width, kernel_init=init, dtype=model.dtype)
  x = h
  if key is not None:
    input_key, hidden_key = jax.random.split(key)
    x = corrupt(input_key, x, rate)
  e = dense(model.dims[layer + 1]).apply({"params": pair["encoder"]}, x)
  if layer < n - 1:
    e = nn.relu(e)
  if key is not None:
    e = corrupt(hidden_key, e, rate)
  y = dense(model.dims[layer]).apply({"params": pair["decoder"]}, e)
  if layer > 0:
    y = nn.relu(y)
  return jnp.mean((y.astype(jnp.float32) - h) ** 2)


def layer_inputs(model: Autoencoder, params: Params, x: jax.Array, layer: int,
                 chunk_size: int = 8192) -> jax.Array:
  """The clean input of pair `layer`: x through encoder layers 0..layer-1
  (all hidden, so each followed by ReLU), [N, dims[layer]] float32."""
  if layer == 0:
    return x.astype(jnp.float32)
  encoder = {f"dense_{i}": params["encoder"][f"dense_{i}"]
             for i in range(layer)}
  lower = MLP(tuple(model.dims[1:layer + 1]), dtype=model.dtype,
              mlp_init=model.mlp_init)
  return batching.map_in_chunks(
      lambda xb: nn.relu(lower.apply({"params": encoder}, xb)).astype(
          jnp.float32), x, chunk_size)


def greedy_pretrain(model: AnyAutoencoder, params: Params, x: jax.Array,
                    keys: jax.Array, tx: TxFn, *, epochs: int,
                    batch_size: int, hp: Optional[dict] = None,
                    rate: float = DROPOUT_RATE, log_every: int = 10,
                    log_fn: Optional[Callable[[int, dict], Any]] = None,
                    chunk_size: int = 8192,
                    names: Optional[Sequence[str]] = None) -> Params:
  """DEC's greedy layer-wise pretraining of a stack of S MLP autoencoders.

  Pair by pair from the input up, encoder layer i and its mirrored decoder
  layer are trained as a denoising autoencoder (`denoising_loss`, dropout
  `rate` on its input and hidden layer) for `epochs` passes over the clean
  output of the layers below, with a fresh optimizer state from `tx`.
  params carry a leading member axis, keys [S] (layer l, epoch e:
  fold_in(fold_in(key, l), e)) and hp ([S] arrays) as in `pretrain`; each
  epoch of the whole stack is one compiled scan. Returns params with every
  pair replaced; the caller then fine-tunes end to end without corruption
  (`pretrain`). log_fn(member, record) gets 'pretrain_greedy' records.
  """
  num_pairs = _check_mlp(model)
  x = jnp.asarray(x)
  params = jax.tree.map(jnp.array, params)  # the caller's copy survives
  names = list(names or [""] * keys.shape[0])
  fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
  start = time.perf_counter()
  for layer in range(num_pairs):
    h = (x.astype(jnp.float32) if layer == 0 else
         _stack_layer_inputs(model, layer, chunk_size)(params, x))
    epoch_fn = _greedy_epoch(model, layer, rate, tx, x.shape[0], batch_size,
                             layer == 0)
    state = init_states(tx, jax.vmap(functools.partial(
        layer_pair_params, model, layer=layer))(params), hp)
    for epoch in range(1, epochs + 1):
      state, losses = epoch_fn(state, h, fold(fold(keys, layer), epoch), hp)
      if epoch % log_every == 0 or epoch == epochs:
        for j, loss in enumerate(np.asarray(losses).tolist()):
          _check_greedy_loss(loss, layer, epoch, names[j])
          if log_fn:
            log_fn(j, {"stage": "pretrain_greedy", "layer": layer,
                       "epoch": epoch, "loss": loss,
                       "time_s": time.perf_counter() - start})
    params = jax.vmap(lambda p, pair: set_layer_pair(model, p, layer, pair))(
        params, state["params"])
  return params


def _check_greedy_loss(loss: float, layer: int, epoch: int, name: str):
  if not math.isfinite(loss):
    raise TrainingDiverged(
        f"greedy pretraining{name and ' of ' + name} of layer {layer} "
        f"diverged by epoch {epoch} (loss {loss}); rerun with a lower "
        "pretrain.learning_rate.")


@functools.lru_cache(maxsize=16)
def _stack_layer_inputs(model: Autoencoder, layer: int, chunk_size: int):
  """Jitted (stacked params, x) -> [S, N, dims[layer]]: layer_inputs of
  each member."""
  return jax.jit(over_members(functools.partial(
      layer_inputs, model, layer=layer, chunk_size=chunk_size),
                              in_axes=(0, None)))


@functools.lru_cache(maxsize=16)
def _greedy_epoch(model: Autoencoder, layer: int, rate: float, tx: TxFn,
                  num_samples: int, batch_size: int, shared_inputs: bool):
  """The stacked epoch(states, h, keys, hps) of pair `layer`, cached on its
  settings; h is [N, D] shared by the members (layer 0) or [S, N, d]."""
  epoch_fn = make_minibatch_epoch(
      functools.partial(_pair_loss, model, layer, rate), tx, num_samples,
      batch_size, stochastic=True)
  return jax.jit(over_members(epoch_fn, in_axes=(
      0, None if shared_inputs else 0, 0, 0)), donate_argnums=0)


def _pair_loss(model, layer, rate, pair, h, key):
  """denoising_loss in make_minibatch_epoch's (params, xb, key) order."""
  return denoising_loss(model, layer, pair, h, key, rate)
