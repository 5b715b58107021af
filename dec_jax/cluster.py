"""DEC fine-tuning: the target-update / train-interval loop (Xie et al., 2016).

Every `update_interval` iterations the soft assignment Q of the *whole* data
set is computed, the target P derived from it and held fixed; the next
`update_interval` minibatch steps index P with the same indices as x, and
train the encoder and the centres jointly on KL(P || Q). The run stops when
the fraction of points whose label changed between two target updates falls
below `tol`, or at `maxiter`. Each interval is one compiled loop on the device;
the host only sees labels once per target update.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dec_jax import batching
from dec_jax import clustering
from dec_jax import parallel
from dec_jax.errors import TrainingDiverged
from dec_jax.models import MLP, Params


@dataclasses.dataclass(frozen=True)
class DECConfig:
  batch_size: int = 256
  update_interval: int = 140
  tol: float = 0.001
  maxiter: int = 20_000
  alpha: float = 1.0
  chunk_size: int = 8192  # rows embedded at once in a full-set target update
  # Off (0) in the original DEC. Otherwise, at a target update, a cluster
  # holding fewer than reseed_fraction * N / K points gets a new centre at
  # the embedding of the point farthest from its own centre.
  reseed_fraction: float = 0.0
  input_divisor: float = 1.0  # features = x / input_divisor (uint8 x)


@dataclasses.dataclass
class DECResult:
  params: Params            # {'encoder': ..., 'centres': [K, d]}
  labels: np.ndarray        # final hard assignment [N]
  q: np.ndarray             # final soft assignment [N, K]
  iterations: int
  stop_reason: str          # 'tol' or 'maxiter'


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


def make_dec_fns(encoder: MLP, tx: optax.GradientTransformation,
                 num_samples: int, cfg: DECConfig,
                 loss_fn: Optional[Callable[..., jax.Array]] = None,
                 augment_fn: Optional[Callable[[jax.Array, jax.Array],
                                               jax.Array]] = None):
  """Builds the two compiled pieces of the loop.

  target_update(params, x, prev_labels) -> dict with the full-set `q`, the
    target `p`, `labels`, `label_change` (fraction vs prev_labels),
    `cluster_sizes`, `mean_max_q` (mean confidence), and the `centres` used
    with a [K] mask of those `reseeded` (cfg.reseed_fraction > 0 only);
  train_interval(state, x, p, key, num_steps) -> (state, mean loss), donating
    state = {'params', 'opt'}; `num_steps` <= update_interval is traced, so a
    shorter last interval does not recompile.
  `loss_fn(params, x, p)` is the minibatch loss (default: DEC's KL); params
  holds 'encoder' and 'centres' and whatever else the loss trains.
  With `augment_fn(key, xb)` (DEC-DA), each step's loss sees augmented
  inputs against the targets P of the clean samples (the target update
  embeds clean x); the interval key is then split into the shuffling key and
  one whose fold_in(., step) augments step `step`.
  """
  pieces = _dec_pieces(encoder, tx, num_samples, cfg, loss_fn, augment_fn)
  return pieces.target_update, pieces.train_interval


class _DECPieces(NamedTuple):
  target_update: Callable  # (params, x, prev_labels) -> update dict
  train_interval: Callable  # (state, x, p, key, num_steps) -> (state, loss)
  # The same for x in host memory (streamed): the update from embeddings z
  # computed chunk by chunk, the interval's index plan, and the interval on
  # batches gathered on the host with that plan.
  assign: Callable  # (params, z, prev_labels) -> update dict
  interval_plan: Callable  # key -> idx [update_interval, batch_size]
  train_interval_on: Callable  # (state, batches, p, idx, key, num_steps)


def _dec_pieces(encoder, tx, num_samples, cfg, loss_fn, augment_fn):
  def assign(params, z, prev_labels):
    centres = params["centres"]
    reseeded = jnp.zeros(centres.shape[0], bool)
    if cfg.reseed_fraction > 0:
      centres, reseeded = reseed_small_clusters(z, centres,
                                                cfg.reseed_fraction)
    q = clustering.soft_assign(z, centres, cfg.alpha)
    labels = jnp.argmax(q, axis=1).astype(jnp.int32)
    return parallel.gather({
        "q": q, "p": clustering.target_distribution(q), "labels": labels,
        "label_change": clustering.label_change_fraction(labels, prev_labels),
        "cluster_sizes": clustering.cluster_sizes(labels, q.shape[1]),
        "mean_max_q": jnp.mean(jnp.max(q, axis=1)),
        "centres": centres, "reseeded": reseeded})

  def target_update(params, x, prev_labels):
    z = embed(encoder, params["encoder"], x, cfg.chunk_size,
              cfg.input_divisor)
    return assign(params, z, prev_labels)

  grad_fn = jax.value_and_grad(
      loss_fn or functools.partial(dec_loss, encoder, alpha=cfg.alpha))

  def interval_keys(key):
    """(shuffling key, augmentation key or None) of an interval."""
    if augment_fn is None:
      return key, None
    return tuple(jax.random.split(key))

  def interval_plan(key):
    return batching.epoch_indices(interval_keys(key)[0], num_samples,
                                  cfg.update_interval, cfg.batch_size)

  def run_steps(state, batch_at, p, idx, augment_key, num_steps):
    def step(i, carry):
      state, loss_sum = carry
      xb = parallel.shard_rows(batching.as_features(batch_at(i),
                                                    cfg.input_divisor))
      pb = parallel.shard_rows(p[idx[i]])
      if augment_fn is not None:
        xb = augment_fn(jax.random.fold_in(augment_key, i), xb)
      loss, grads = grad_fn(state["params"], xb, pb)
      updates, opt = tx.update(grads, state["opt"], state["params"])
      return ({"params": optax.apply_updates(state["params"], updates),
               "opt": opt}, loss_sum + loss)

    state, loss_sum = jax.lax.fori_loop(0, num_steps, step,
                                        (state, jnp.zeros((), jnp.float32)))
    return state, loss_sum / jnp.maximum(num_steps, 1)

  def train_interval(state, x, p, key, num_steps):
    idx = interval_plan(key)
    return run_steps(state, lambda i: x[idx[i]], p, idx,
                     interval_keys(key)[1], num_steps)

  def train_interval_on(state, batches, p, idx, key, num_steps):
    return run_steps(state, lambda i: batches[i], p, idx,
                     interval_keys(key)[1], num_steps)

  donated = functools.partial(jax.jit, donate_argnums=0)
  return _DECPieces(jax.jit(target_update), donated(train_interval),
                    jax.jit(assign), jax.jit(interval_plan),
                    donated(train_interval_on))


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


def run_dec(encoder: MLP, encoder_params: Params, centres: jax.Array,
            init_labels: jax.Array, x: jax.Array, key: jax.Array,
            tx: optax.GradientTransformation, cfg: DECConfig,
            log_fn: Optional[Callable[[dict], Any]] = None, *,
            loss_fn: Optional[Callable[..., jax.Array]] = None,
            extra_params: Optional[dict] = None,
            resume: Optional[dict] = None, checkpoint_every: int = 0,
            checkpoint_fn: Optional[Callable[[dict], Any]] = None,
            augment_fn: Optional[Callable[[jax.Array, jax.Array],
                                          jax.Array]] = None
            ) -> DECResult:
  """Runs DEC from a pretrained encoder and k-means centres.

  Variants train other parameters too (`extra_params`, e.g. IDEC's decoder)
  with another minibatch loss (`loss_fn`, see make_dec_fns), optionally on
  augmented minibatches (`augment_fn`, see make_dec_fns).

  `log_fn` receives, at every target update, a record with the iteration,
  the label-change fraction, the cluster sizes, the mean confidence
  (mean_i max_j q_ij), the mean loss of the interval just finished, and
  `labels` (a NumPy array, for scoring by the caller).

  Every `checkpoint_every` iterations (0: never; taken at the first target
  update past each multiple), `checkpoint_fn(loop)` may save
  loop = {'state', 'iteration', 'prev_labels', 'loss'}; passing it back as
  `resume` continues exactly where it stopped (interval keys are
  fold_in(key, iteration)), without the encoder/centres/init_labels.

  A NumPy x stays in host memory: target updates embed it chunk by chunk
  (`embed_streamed`) and each interval's minibatches, planned with the same
  indices as on the device, are gathered on the host and sent in one block.
  """
  streamed = isinstance(x, np.ndarray)
  x = x if streamed else jnp.asarray(x)
  pieces = _dec_pieces(encoder, tx, x.shape[0], cfg, loss_fn, augment_fn)

  def target_update(params, prev_labels):
    if not streamed:
      return pieces.target_update(params, x, prev_labels)
    z = embed_streamed(encoder, params["encoder"], x, cfg.chunk_size,
                       cfg.input_divisor)
    return pieces.assign(params, z, prev_labels)

  def train_interval(state, p, key, num_steps):
    if not streamed:
      return pieces.train_interval(state, x, p, key, num_steps)
    idx = pieces.interval_plan(key)
    batches = jax.device_put(x[np.asarray(idx)])
    return pieces.train_interval_on(state, batches, p, idx, key, num_steps)
  if resume is None:
    # Copied: the state is donated to the compiled interval, the caller's
    # arrays must survive it.
    params = jax.tree.map(jnp.array, {**(extra_params or {}),
                                      "encoder": encoder_params,
                                      "centres": centres})
    resume = {"state": {"params": params, "opt": tx.init(params)},
              "iteration": 0, "prev_labels": init_labels,
              "loss": float("nan")}
  state, iteration, loss = (resume["state"], int(resume["iteration"]),
                            float(resume["loss"]))
  prev_labels = jnp.asarray(resume["prev_labels"], jnp.int32)
  last_saved, start = iteration, time.perf_counter()
  while True:
    if (checkpoint_fn and checkpoint_every > 0
        and iteration // checkpoint_every > last_saved // checkpoint_every):
      checkpoint_fn({"state": state, "iteration": iteration,
                     "prev_labels": prev_labels, "loss": loss})
      last_saved = iteration
    update = target_update(state["params"], prev_labels)
    reseeded = np.flatnonzero(np.asarray(update["reseeded"])).tolist()
    if reseeded:  # train on from the moved centres
      state = {"params": {**state["params"], "centres": update["centres"]},
               "opt": state["opt"]}
    change = float(update["label_change"])
    converged = iteration > 0 and change < cfg.tol
    done = converged or iteration >= cfg.maxiter
    if not done:  # dispatch the next interval before scoring this update
      num_steps = min(cfg.update_interval, cfg.maxiter - iteration)
      state, next_loss = train_interval(
          state, update["p"], jax.random.fold_in(key, iteration), num_steps)
    if log_fn:
      log_fn({"stage": "dec", "iteration": iteration, "loss": loss,
              "label_change": change,
              "cluster_sizes": np.asarray(update["cluster_sizes"]).tolist(),
              "mean_max_q": float(update["mean_max_q"]),
              **({"reseeded": reseeded} if reseeded else {}),
              "time_s": time.perf_counter() - start,
              "labels": np.asarray(update["labels"])})
    if done:
      break
    iteration += num_steps
    loss = float(next_loss)
    if not math.isfinite(loss):
      raise TrainingDiverged(
          f"DEC diverged by iteration {iteration} (loss {loss}); rerun into "
          "the same workdir with a lower dec.learning_rate: the pretrained "
          "autoencoder is kept and reused.")
    prev_labels = update["labels"]
  return DECResult(params=state["params"], labels=np.asarray(update["labels"]),
                   q=np.asarray(update["q"]), iterations=iteration,
                   stop_reason="tol" if converged else "maxiter")


def _take(tree: Any, index: Any) -> Any:
  """Rows `index` of every leaf's leading (seed) axis."""
  return jax.tree.map(lambda a: a[index], tree)


def run_dec_seeds(encoder: MLP, starts: list[dict], x: jax.Array,
                  keys: list[jax.Array], tx: optax.GradientTransformation,
                  cfg: DECConfig,
                  log_fns: Optional[list[Callable[[dict], Any]]] = None, *,
                  loss_fn: Optional[Callable[..., jax.Array]] = None,
                  augment_fn: Optional[Callable[[jax.Array, jax.Array],
                                                jax.Array]] = None
                  ) -> list[DECResult]:
  """`run_dec` for several seeds at once: one compiled program, their states
  stacked on a leading axis and the target update and interval vmapped.

  starts[i] = {'params': {'encoder', 'centres', ...}, 'init_labels'} and
  keys[i] are what seed i's own `run_dec` would get (params = its
  extra_params + encoder + centres); log_fns[i] receives its records. Each
  seed stops as its own run would (tol or maxiter), with the same
  iterations, labels and, up to float rounding, q; a finished seed leaves
  the stack (one recompile for the smaller stack), so the work done is that
  of the separate runs. x must be on the device; no checkpoints are taken.
  """
  pieces = _dec_pieces(encoder, tx, x.shape[0], cfg, loss_fn, augment_fn)
  update_all = jax.jit(jax.vmap(pieces.target_update, in_axes=(0, None, 0)))

  def interval(state, x, p, keys, iteration, num_steps):
    keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, iteration)
    return jax.vmap(pieces.train_interval, in_axes=(0, None, 0, 0, None))(
        state, x, p, keys, num_steps)

  interval_all = jax.jit(interval, donate_argnums=0)
  stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)
  params = jax.tree.map(jnp.array, stack([s["params"] for s in starts]))
  state = {"params": params, "opt": jax.vmap(tx.init)(params)}
  prev_labels = jnp.stack([jnp.asarray(s["init_labels"], jnp.int32)
                           for s in starts])
  keys = jnp.stack(keys)
  alive = list(range(len(starts)))  # the seeds in the stack, in its order
  results: list[Optional[DECResult]] = [None] * len(starts)
  losses = np.full(len(starts), np.nan)
  iteration, start = 0, time.perf_counter()
  while True:
    update = update_all(state["params"], x, prev_labels)
    if cfg.reseed_fraction > 0:  # unmoved centres come back unchanged
      state = {"params": {**state["params"], "centres": update["centres"]},
               "opt": state["opt"]}
    change = np.asarray(update["label_change"]).tolist()  # as floats
    converged = [iteration > 0 and c < cfg.tol for c in change]
    done = [c or iteration >= cfg.maxiter for c in converged]
    finished = {i: _take(state["params"], j) for j, i in enumerate(alive)
                if done[j]}
    logged, keep = alive, [j for j, d in enumerate(done) if not d]
    if keep:  # dispatch the next interval before the host reads this update
      p, prev_labels = update["p"], update["labels"]
      if len(keep) < len(alive):  # the finished seeds leave the stack
        state, p, prev_labels, keys = _take((state, p, prev_labels, keys),
                                            jnp.asarray(keep))
        alive = [alive[j] for j in keep]
      num_steps = min(cfg.update_interval, cfg.maxiter - iteration)
      state, next_losses = interval_all(state, x, p, keys, iteration,
                                        num_steps)
    host = jax.device_get({k: update[k] for k in (
        "labels", "cluster_sizes", "mean_max_q", "reseeded")})
    for j, i in enumerate(logged):
      if log_fns:
        reseeded = np.flatnonzero(host["reseeded"][j]).tolist()
        log_fns[i]({
            "stage": "dec", "iteration": iteration, "loss": float(losses[j]),
            "label_change": change[j],
            "cluster_sizes": host["cluster_sizes"][j].tolist(),
            "mean_max_q": float(host["mean_max_q"][j]),
            **({"reseeded": reseeded} if reseeded else {}),
            "time_s": time.perf_counter() - start,
            "labels": host["labels"][j]})
      if done[j]:
        results[i] = DECResult(
            params=finished[i], labels=host["labels"][j],
            q=np.asarray(update["q"][j]), iterations=iteration,
            stop_reason="tol" if converged[j] else "maxiter")
    if not keep:
      break
    iteration += num_steps
    losses = np.asarray(next_losses)
    for i, loss in zip(alive, losses):
      if not math.isfinite(loss):
        raise TrainingDiverged(
            f"DEC of stacked run {i} (in the order given) diverged by "
            f"iteration {iteration} (loss {loss}); rerun with a lower "
            "dec.learning_rate.")
  return results
