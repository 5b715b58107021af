"""DEC fine-tuning over a stack of members (Xie et al., 2016).

Every `update_interval` iterations the soft assignment Q of the *whole* data
set is computed, the target P derived from it and held fixed; the next
`update_interval` minibatch steps index P with the same indices as x, and
train the encoder and the centres jointly on KL(P || Q). A member stops when
the fraction of points whose label changed between two target updates falls
below its `tol`, or at `maxiter`, or (with `patience` > 0, off in DEC) once
that fraction has not reached a new low for `patience` target updates: under
augmentation (DEC-DA) it never falls below `tol`, and the clusters drift.

One member's pieces (`target_update`, `train_interval`) are pure functions of
its state and hyperparameters; `run_dec` drives S members at once, their
states stacked on a leading member axis and the pieces mapped over it
(member_axis.over_members: vmap on accelerators, lax.map on CPUs), so a single
seed is a stack of one and a grid of seeds x learning rates is one compiled
program. Each interval is one compiled loop on the device; the host reads
labels once per target update. A member that stops leaves the stack.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dec_jax.train import batching
from dec_jax.train.member_axis import over_members
from dec_jax.core import clustering
from dec_jax import parallel
from dec_jax.errors import TrainingDiverged
from dec_jax.nn.models import MLP, Params
from dec_jax.train.optim import TxFn, as_tx_fn, init_states

# hp: a member's numeric hyperparameters by name (scalars, or [S] arrays for
# a stack): alpha, reseed_fraction, and whatever the loss and the optimizer
# read (learning_rate, momentum, gamma, ...).
Hyper = dict[str, Any]
# loss_fn(params, xb, pb, hp) -> scalar: a minibatch loss (default: DEC's KL).
LossFn = Callable[[Params, jax.Array, jax.Array, Hyper], jax.Array]


@dataclasses.dataclass(frozen=True)
class DECConfig:
  """What shapes the loop's programs (and the defaults of its hp)."""
  batch_size: int = 256
  update_interval: int = 140
  tol: float = 0.001
  maxiter: int = 20_000
  patience: int = 0  # updates without a new lowest label change (0: off)
  alpha: float = 1.0
  chunk_size: int = 8192  # rows embedded at once in a full-set target update
  # Off (0) in the original DEC. Otherwise, at a target update, a cluster
  # holding fewer than reseed_fraction * N / K points gets a new centre at
  # the embedding of the point farthest from its own centre. > 0 here turns
  # the reseeding on for the program; each member's hp holds its fraction.
  reseed_fraction: float = 0.0
  input_divisor: float = 1.0  # features = x / input_divisor (uint8 x)

  def hyper(self) -> Hyper:
    """The hp of a member that uses this config's values."""
    return {"alpha": self.alpha, "reseed_fraction": self.reseed_fraction}


@dataclasses.dataclass
class DECResult:
  params: Params            # {'encoder': ..., 'centres': [K, d], ...}
  labels: np.ndarray        # final hard assignment [N]
  q: np.ndarray             # final soft assignment [N, K]
  iterations: int
  stop_reason: str          # 'tol', 'patience' or 'maxiter'


def embed(encoder: MLP, encoder_params: Params, x: jax.Array,
          chunk_size: int, input_divisor: float = 1.0) -> jax.Array:
  """Embeddings [N, d] of the features x / input_divisor, x [N, D] (float32,
  or uint8 decoded chunk by chunk), computed in chunks of bounded memory."""
  return batching.map_in_chunks(
      lambda xb: _encode(encoder, encoder_params, xb, input_divisor), x,
      chunk_size)


def _encode(encoder: MLP, encoder_params: Params, xb: jax.Array,
            input_divisor: float) -> jax.Array:
  """Float32 embeddings of the stored inputs xb (decoded here)."""
  return encoder.apply({"params": encoder_params},
                       batching.as_features(xb, input_divisor)).astype(
                           jnp.float32)


_embed_compiled = jax.jit(embed, static_argnums=(0, 3, 4))  # embed_streamed


def embed_streamed(encoder: MLP, encoder_params: Params, x: np.ndarray,
                   chunk_size: int, input_divisor: float = 1.0) -> jax.Array:
  """`embed` for x [N, D] in host memory: chunks go to the device one at a
  time (transfers overlap compute), each split over the mesh's devices;
  only the embeddings [N, d] stay there."""
  parts = [_embed_compiled(encoder, encoder_params,
                           jax.device_put(x[start:start + chunk_size]),
                           chunk_size, input_divisor)
           for start in range(0, x.shape[0], chunk_size)]
  return jnp.concatenate(parts)


def dec_loss(encoder: MLP, params: Params, x: jax.Array, p: jax.Array,
             alpha: float) -> jax.Array:
  """KL(P || Q) on a minibatch: x [B, D], fixed targets p [B, K]."""
  z = encoder.apply({"params": params["encoder"]}, x).astype(jnp.float32)
  return clustering.kl_divergence(p, clustering.soft_assign(
      z, params["centres"], alpha))


def idec_loss(encoder: MLP, decoder: MLP, params: Params, x: jax.Array,
              p: jax.Array, *, gamma: float, alpha: float) -> jax.Array:
  """IDEC's loss on a minibatch: L_rec + gamma * KL(P || Q).

  L_rec is the mean squared reconstruction error over all elements of
  x [B, D] (as in pretraining); P [B, K] are the fixed targets. gamma weighs
  the clustering term (Guo et al., 2017: 0.1).
  """
  z = encoder.apply({"params": params["encoder"]}, x).astype(jnp.float32)
  recon = decoder.apply({"params": params["decoder"]}, z).astype(jnp.float32)
  reconstruction = jnp.mean((recon - x) ** 2)
  kl = clustering.kl_divergence(p, clustering.soft_assign(
      z, params["centres"], alpha))
  return reconstruction + gamma * kl


# Optimizer states that scale steps rather than carry them (Adam's second
# moment): zeroed, they would make a moved centre's next steps several
# times larger (the bias correction has long reached 1).
_STEP_SCALES = ("nu",)


def forget_moved_centres(opt_state: Any, moved: jax.Array) -> Any:
  """Zeroes the optimizer's momentum (SGD's trace, Adam's first moment) of
  the centres `moved` [S, K] marks: a reseeded centre starts at rest, not
  pushed on by the momentum of the place it left. Adam's second moment is
  kept, so its first steps are small, not inflated."""
  def reset(path, leaf):
    names = {getattr(key, "key", None) for key in path} | {
        getattr(key, "name", None) for key in path}
    if "centres" in names and not names & set(_STEP_SCALES):
      return jnp.where(moved[..., None], jnp.zeros_like(leaf), leaf)
    return leaf
  return jax.tree_util.tree_map_with_path(reset, opt_state)


def reseed_small_clusters(z: jax.Array, centres: jax.Array,
                          fraction: float) -> tuple[jax.Array, jax.Array]:
  """Moves the centres of starved clusters to the worst-fitting points.

  A cluster with fewer than `fraction` * N / K of the hard assignments gets
  the embedding of a point far from its own centre (the farthest point for
  the first such cluster, the second farthest for the next, ...), as
  k-means implementations do for empty clusters. z [N, d], centres [K, d] ->
  (new centres [K, d], reseeded [K] bool).
  """
  n, k = z.shape[0], centres.shape[0]
  d2 = clustering.squared_distances(z, centres)
  labels = jnp.argmin(d2, axis=1)
  small = clustering.cluster_sizes(labels, k) < fraction * n / k
  farthest = jnp.argsort(-jnp.min(d2, axis=1))
  rank = jnp.cumsum(small) - 1
  new = jnp.where(small[:, None], z[farthest[jnp.clip(rank, 0, n - 1)]],
                  centres)
  return new, small


# ------------------------------------------------------- one member's pieces


class DECPieces(NamedTuple):
  """One member's pure functions; `run_dec` maps them over the stack."""
  target_update: Callable  # (params, x, prev_labels, hp) -> update dict
  train_interval: Callable  # (state, x, p, key, num_steps, hp) -> (state, loss)
  # For x in host memory (streamed): the update from embeddings z computed
  # chunk by chunk, the interval's index plan, and the interval on batches
  # gathered on the host with that plan.
  assign: Callable  # (params, z, prev_labels, hp) -> update dict
  interval_plan: Callable  # key -> idx [update_interval, batch_size]
  train_interval_on: Callable  # (state, batches, p, idx, key, num_steps, hp)


def dec_pieces(encoder: MLP, tx: TxFn, num_samples: int, cfg: DECConfig,
               loss_fn: Optional[LossFn] = None,
               augment_fn: Optional[Callable[[jax.Array, jax.Array],
                                             jax.Array]] = None) -> DECPieces:
  """One member's DEC functions (not jitted: `run_dec` maps and jits them).

  target_update returns the full-set `q`, the target `p`, `labels`,
  `label_change` (fraction vs prev_labels), `cluster_sizes`, `mean_max_q`
  (mean confidence), and the `centres` used with a [K] mask of those
  `reseeded` (cfg.reseed_fraction > 0 only). train_interval runs
  `num_steps` <= update_interval minibatch steps (traced: a shorter last
  interval does not recompile). With `augment_fn(key, xb)` (DEC-DA), each
  step's loss sees augmented inputs against the targets P of the clean
  samples; the interval key is then split into the shuffling key and one
  whose fold_in(., step) augments step `step`.
  """
  tx_fn = as_tx_fn(tx)
  if loss_fn is None:
    loss_fn = lambda params, xb, pb, hp: dec_loss(encoder, params, xb, pb,
                                                  hp["alpha"])
  grad_fn = jax.value_and_grad(loss_fn)

  assign = functools.partial(_assign, reseed=cfg.reseed_fraction > 0)

  def target_update(params, x, prev_labels, hp):
    z = embed(encoder, params["encoder"], x, cfg.chunk_size,
              cfg.input_divisor)
    return assign(params, z, prev_labels, hp)

  def interval_keys(key):
    return batching.split_pass_key(key, augment_fn is not None)

  def interval_plan(key):
    return batching.epoch_indices(interval_keys(key)[0], num_samples,
                                  cfg.update_interval, cfg.batch_size)

  run_steps = _steps_fn(tx_fn, grad_fn, cfg.input_divisor, augment_fn)

  def train_interval(state, x, p, key, num_steps, hp):
    idx = interval_plan(key)
    return run_steps(state, lambda i: x[idx[i]], p, idx,
                     interval_keys(key)[1], num_steps, hp)

  def train_interval_on(state, batches, p, idx, key, num_steps, hp):
    return run_steps(state, lambda i: batches[i], p, idx,
                     interval_keys(key)[1], num_steps, hp)

  return DECPieces(target_update, train_interval, assign,
                   interval_plan, train_interval_on)


def _assign(params, z, prev_labels, hp, *, reseed: bool) -> dict:
  """A target update from the embeddings z [N, d] (see dec_pieces)."""
  centres = params["centres"]
  reseeded = jnp.zeros(centres.shape[0], bool)
  if reseed:
    centres, reseeded = reseed_small_clusters(z, centres,
                                              hp["reseed_fraction"])
  q = clustering.soft_assign(z, centres, hp["alpha"])
  labels = jnp.argmax(q, axis=1).astype(jnp.int32)
  return parallel.gather({
      "q": q, "p": clustering.target_distribution(q), "labels": labels,
      "label_change": clustering.label_change_fraction(labels, prev_labels),
      "cluster_sizes": clustering.cluster_sizes(labels, q.shape[1]),
      "mean_max_q": jnp.mean(jnp.max(q, axis=1)),
      "centres": centres, "reseeded": reseeded})


def _steps_fn(tx_fn, grad_fn, input_divisor: float, augment_fn):
  """run_steps(state, batch_at, p, idx, augment_key, num_steps, hp): the
  interval's minibatch steps in one fori_loop; (state, mean loss)."""
  def run_steps(state, batch_at, p, idx, augment_key, num_steps, hp):
    tx = tx_fn(hp)

    def step(i, carry):
      state, loss_sum = carry
      xb = parallel.shard_rows(batching.as_features(batch_at(i),
                                                    input_divisor))
      pb = parallel.shard_rows(p[idx[i]])
      if augment_fn is not None:
        xb = augment_fn(jax.random.fold_in(augment_key, i), xb)
      loss, grads = grad_fn(state["params"], xb, pb, hp)
      updates, opt = tx.update(grads, state["opt"], state["params"])
      return ({"params": optax.apply_updates(state["params"], updates),
               "opt": opt}, loss_sum + loss)

    state, loss_sum = jax.lax.fori_loop(0, num_steps, step,
                                        (state, jnp.zeros((), jnp.float32)))
    return state, loss_sum / jnp.maximum(num_steps, 1)

  return run_steps


def make_dec_fns(encoder: MLP, tx: TxFn, num_samples: int, cfg: DECConfig,
                 loss_fn: Optional[LossFn] = None,
                 augment_fn: Optional[Callable[[jax.Array, jax.Array],
                                               jax.Array]] = None,
                 hp: Optional[Hyper] = None):
  """One member's (target_update(params, x, prev_labels),
  train_interval(state, x, p, key, num_steps)), jitted, the interval
  donating its state, with hp fixed (default: cfg.hyper()). For tests and
  the benchmark's single-model rows; runs go through `run_dec`."""
  pieces = dec_pieces(encoder, tx, num_samples, cfg, loss_fn, augment_fn)
  hp = cfg.hyper() if hp is None else hp
  update = jax.jit(lambda params, x, prev: pieces.target_update(
      params, x, prev, hp))
  interval = jax.jit(lambda state, x, p, key, n: pieces.train_interval(
      state, x, p, key, n, hp), donate_argnums=0)
  return update, interval


# ---------------------------------------------------------- the stacked loop


class DECStart(NamedTuple):
  """Where a stack of S members starts: params stacked on the member axis
  ({'encoder', 'centres', + what the loss trains besides}) and each member's
  k-means labels [S, N]."""
  params: Params
  init_labels: jax.Array


def _take(tree: Any, index: Any) -> Any:
  """Rows `index` of every leaf's leading (member) axis."""
  return jax.tree.map(lambda a: a[index], tree)


class _StackFns:
  """The pieces mapped over the members and jitted, for x resident on the
  device or streamed (a NumPy x)."""

  def __init__(self, pieces: DECPieces):
    self.pieces = pieces
    self.update = jax.jit(over_members(pieces.target_update,
                                       in_axes=(0, None, 0, 0)))
    self.assign = jax.jit(over_members(pieces.assign))
    self.plan = jax.jit(over_members(pieces.interval_plan))
    self.interval = jax.jit(over_members(
        pieces.train_interval, in_axes=(0, None, 0, 0, None, 0)),
                            donate_argnums=0)
    self.interval_on = jax.jit(over_members(
        pieces.train_interval_on, in_axes=(0, 0, 0, 0, 0, None, 0)),
                               donate_argnums=0)

  def target_update(self, x, params, prev_labels, hp, encoder, cfg):
    if not isinstance(x, np.ndarray):
      return self.update(params, x, prev_labels, hp)
    z = jnp.stack([embed_streamed(encoder, e, x, cfg.chunk_size,
                                  cfg.input_divisor)
                   for e in unstack(params["encoder"])])
    return self.assign(params, z, prev_labels, hp)

  def train_interval(self, x, state, p, keys, num_steps, hp):
    if not isinstance(x, np.ndarray):
      return self.interval(state, x, p, keys, num_steps, hp)
    idx = self.plan(keys)
    batches = jax.device_put(x[np.asarray(idx)])
    return self.interval_on(state, batches, p, idx, keys, num_steps, hp)


@functools.lru_cache(maxsize=16)
def _stack_fns(encoder: MLP, tx: TxFn, num_samples: int, cfg: DECConfig,
               loss_fn: Optional[LossFn],
               augment_fn: Optional[Callable]) -> _StackFns:
  """The stack's programs, cached on their settings: the next run of equal
  settings in this process (a test suite, a sweep, an estimator's refit)
  reuses them and traces nothing again. Equal settings need values, not
  fresh closures: optim.HyperOptimizer, augment.Augment, modules."""
  return _StackFns(dec_pieces(encoder, tx, num_samples, cfg, loss_fn,
                              augment_fn))


def unstack(tree: Any) -> list[Any]:
  """A stacked tree -> the list of its members' trees."""
  size = jax.tree.leaves(tree)[0].shape[0]
  return [_take(tree, i) for i in range(size)]


def stack(trees: Sequence[Any]) -> Any:
  """Trees of the same structure -> one tree with a leading member axis."""
  return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _stack_hp(hp: Hyper, size: int) -> Hyper:
  """hp with every value an [S] float32 array (scalars broadcast)."""
  return {k: jnp.broadcast_to(jnp.asarray(v, jnp.float32), (size,))
          for k, v in hp.items()}


def run_dec(encoder: MLP, start: Optional[DECStart], x, keys: jax.Array,
            tx: TxFn, cfg: DECConfig, hp: Optional[Hyper] = None,
            tols: Optional[Sequence[float]] = None,
            log_fn: Optional[Callable[[int, dict], Any]] = None, *,
            patiences: Optional[Sequence[int]] = None,
            loss_fn: Optional[LossFn] = None, resume: Optional[dict] = None,
            checkpoint_every: int = 0,
            checkpoint_fn: Optional[Callable[[dict], Any]] = None,
            augment_fn: Optional[Callable[[jax.Array, jax.Array],
                                          jax.Array]] = None,
            names: Optional[Sequence[str]] = None) -> list[DECResult]:
  """Runs DEC for a stack of S members; returns each member's result.

  Args:
    encoder: the encoder module (shared by the members).
    start: stacked params and k-means labels (None when resuming).
    x: the data [N, D] on the device, or a NumPy array streamed from host
      memory (embedded chunk by chunk, minibatches gathered on the host).
    keys: [S] member keys; interval keys are fold_in(key, iteration).
    tx: the optimizer, or a function of a member's hp building it.
    cfg: the static settings (batch, interval, maxiter, ...).
    hp: each member's hyperparameters ([S] arrays or scalars; default
      cfg.hyper()).
    tols, patiences: each member's stop tolerance and patience (default
      cfg.tol, cfg.patience; see _Stops).
    log_fn: log_fn(member, record) at each of its target updates: the
      iteration, label change, cluster sizes, mean max_j q_ij, the last
      interval's mean loss, and `labels` (NumPy, for scoring).
    loss_fn: the minibatch loss (params, xb, pb, hp) (default DEC's KL);
      variants train other parameters too (e.g. IDEC's decoder, in params).
    resume: what `checkpoint_fn` received, to continue exactly from it
      (optionally with 'elapsed_s', where the logs' time_s go on from).
    checkpoint_every: iterations between checkpoints (0: never).
    checkpoint_fn: saves what _Loop.saved returns (state, labels,
      iteration, alive and finished members, plateaus) before returning:
      the next interval is donated the state's buffers.
    augment_fn: DEC-DA's augmentation of the minibatches (see dec_pieces).
    names: how errors name the members (none for a stack of one).

  A member that stops (_Stops) leaves the stack (one recompile), so the
  work done is that of separate runs.
  """
  size = keys.shape[0]
  hp = _stack_hp(cfg.hyper() if hp is None else hp, size)
  x = x if isinstance(x, np.ndarray) else jnp.asarray(x)
  fns = _stack_fns(encoder, tx, x.shape[0], cfg, loss_fn, augment_fn)
  resume = resume or _fresh_start(start, tx, hp, size)
  stops = _Stops(list(tols or [cfg.tol] * size),
                 list(patiences or [cfg.patience] * size),
                 resume.get("plateau", {}))
  loop = _Loop(resume, keys, hp, fns, x, encoder, cfg, stops,
               list(names or [""] * size), log_fn)
  last_saved = loop.iteration
  while True:
    if (checkpoint_fn and checkpoint_every > 0
        and loop.iteration // checkpoint_every > last_saved // checkpoint_every):
      checkpoint_fn(loop.saved())
      last_saved = loop.iteration
    if not loop.advance():
      return [loop.finished[i] for i in range(size)]


def _fresh_start(start: DECStart, tx: TxFn, hp: Hyper, size: int) -> dict:
  """The loop's state at iteration 0 (run_dec's `resume` format)."""
  params = jax.tree.map(jnp.array, start.params)  # donated: copied
  return {"state": init_states(tx, params, hp), "iteration": 0,
          "prev_labels": start.init_labels, "loss": [math.nan] * size,
          "alive": list(range(size)), "finished": {}}


def plateau_step(lowest: Optional[float], since: int,
                 change: float) -> tuple[float, int]:
  """(lowest label change so far, target updates since it was reached),
  after a target update whose label change is `change`."""
  if lowest is None or change < lowest:
    return change, 0
  return lowest, since + 1


class _Stops:
  """Each member's stopping rule: at a target update after the first
  interval, it stops if its label change is below its tol, or has not
  reached a new low for `patience` updates (0: never), or at maxiter.
  `plateau`: member -> [lowest label change, target updates since]."""

  def __init__(self, tols: list[float], patiences: list[int],
               plateau: dict):
    self.tols, self.patiences = tols, patiences
    self.plateau = {int(i): list(v) for i, v in plateau.items()}

  def reason(self, member: int, iteration: int, change: float,
             maxiter: int) -> Optional[str]:
    """Why `member` stops at this target update ('tol', 'patience',
    'maxiter'), or None; records the update in its plateau. The first
    update (iteration 0) has no change."""
    if iteration > 0:
      if change < self.tols[member]:
        return "tol"
      lowest, since = plateau_step(*self.plateau.get(member, (None, 0)),
                                   change)
      self.plateau[member] = [lowest, since]
      if 0 < self.patiences[member] <= since:
        return "patience"
    return "maxiter" if iteration >= maxiter else None


def replay_stop(updates: Sequence[tuple[int, float]], tol: float,
                patience: int, maxiter: int) -> int:
  """The index of the target update at which a member would have stopped,
  replayed on its logged updates [(iteration, label change), ...] with
  `run_dec`'s own rule: what tol and patience would have given on a run
  that went on at least as long. The last update if none stops it."""
  stops = _Stops([tol], [patience], {})
  for index, (iteration, change) in enumerate(updates):
    if stops.reason(0, iteration, change, maxiter):
      return index
  return len(updates) - 1


class _Loop:
  """The host side of `run_dec`: the stack's state between target updates,
  the members still in it (`alive`, in stack order) and those that stopped."""

  def __init__(self, resume: dict, keys, hp: Hyper, fns: _StackFns, x,
               encoder, cfg: DECConfig, stops: _Stops, names: list[str],
               log_fn):
    self.alive = list(resume["alive"])
    self.state, self.iteration = resume["state"], int(resume["iteration"])
    self.prev_labels = jnp.asarray(resume["prev_labels"], jnp.int32)
    self.loss, self.finished = list(resume["loss"]), dict(resume["finished"])
    self.keys, self.hp = _take((keys, hp), jnp.asarray(self.alive))
    self.fns, self.x, self.encoder, self.cfg = fns, x, encoder, cfg
    self.stops, self.names, self.log_fn = stops, names, log_fn
    self.start_time = time.perf_counter() - resume.get("elapsed_s", 0.0)

  def saved(self) -> dict:
    """What a checkpoint holds (run_dec's `resume` format)."""
    return {"state": self.state, "iteration": self.iteration,
            "prev_labels": self.prev_labels, "loss": self.loss,
            "alive": self.alive, "finished": self.finished,
            "plateau": self.stops.plateau}

  def advance(self) -> bool:
    """One target update, then (if any member goes on) the next interval
    dispatched before the host reads the update; False once all stopped."""
    cfg = self.cfg
    update = self.fns.target_update(self.x, self.state["params"],
                                    self.prev_labels, self.hp, self.encoder,
                                    cfg)
    if cfg.reseed_fraction > 0:  # unmoved centres come back unchanged
      self.state = {"params": {**self.state["params"],
                               "centres": update["centres"]},
                    "opt": forget_moved_centres(self.state["opt"],
                                                update["reseeded"])}
    change = np.asarray(update["label_change"]).tolist()  # as floats
    reasons = [self.stops.reason(i, self.iteration, c, cfg.maxiter)
               for c, i in zip(change, self.alive)]
    done = [r is not None for r in reasons]
    stopped = {j: _take(self.state["params"], j)
               for j, d in enumerate(done) if d}
    logged, keep = self.alive, [j for j, d in enumerate(done) if not d]
    if keep:
      next_loss, num_steps = self._dispatch(update, keep)
    host = jax.device_get({k: update[k] for k in (
        "labels", "cluster_sizes", "mean_max_q", "reseeded")})
    for j, i in enumerate(logged):
      if self.log_fn:
        self.log_fn(i, _record(self.iteration, self.loss[j], change[j], host,
                               j, time.perf_counter() - self.start_time))
      if done[j]:
        self.finished[i] = DECResult(
            params=stopped[j], labels=host["labels"][j],
            q=np.asarray(update["q"][j]), iterations=self.iteration,
            stop_reason=reasons[j])
    if not keep:
      return False
    self.iteration += num_steps
    self.loss = np.asarray(next_loss).tolist()
    self._check_finite()
    return True

  def _dispatch(self, update: dict, keep: list[int]):
    """Drops the stopped members; starts the next interval of the others."""
    p, self.prev_labels = update["p"], update["labels"]
    if len(keep) < len(self.alive):
      self.state, p, self.prev_labels, self.keys, self.hp = _take(
          (self.state, p, self.prev_labels, self.keys, self.hp),
          jnp.asarray(keep))
      self.alive = [self.alive[j] for j in keep]
    num_steps = min(self.cfg.update_interval,
                    self.cfg.maxiter - self.iteration)
    keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(self.keys,
                                                           self.iteration)
    self.state, loss = self.fns.train_interval(self.x, self.state, p, keys,
                                               num_steps, self.hp)
    return loss, num_steps

  def _check_finite(self) -> None:
    for i, loss in zip(self.alive, self.loss):
      if not math.isfinite(loss):
        name = self.names[i]
        raise TrainingDiverged(
            f"DEC{name and ' of ' + name} diverged by iteration "
            f"{self.iteration} (loss {loss}); rerun into the same workdir "
            "with a lower dec.learning_rate: the pretrained autoencoder is "
            "kept and reused.")


def _record(iteration: int, loss: float, change: float, host: dict, j: int,
            elapsed: float) -> dict:
  """Member j's log record of a target update."""
  reseeded = np.flatnonzero(host["reseeded"][j]).tolist()
  return {"stage": "dec", "iteration": iteration, "loss": loss,
          "label_change": change,
          "cluster_sizes": host["cluster_sizes"][j].tolist(),
          "mean_max_q": float(host["mean_max_q"][j]),
          **({"reseeded": reseeded} if reseeded else {}),
          "time_s": elapsed, "labels": host["labels"][j]}
