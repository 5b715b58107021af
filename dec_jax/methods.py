"""The clustering methods, found by name: `--config.method=<name>`.

A method is a function `(ctx: RunContext) -> dict` that returns at least
`labels` (the final hard assignment) and optionally `soft_assignment` [N, K];
the runner scores them and writes the results. Adding a method is one
function here plus its `@register` line.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable

import jax
import jax.numpy as jnp
import optax

from dec_jax import cluster
from dec_jax import models
from dec_jax import optim
from dec_jax.workdir import DATA_FINGERPRINT, PARTIAL_SUFFIX

if TYPE_CHECKING:
  from dec_jax.run import RunContext

Method = Callable[["RunContext"], dict]
METHODS: dict[str, Method] = {}


def register(name: str) -> Callable[[Method], Method]:
  def decorator(fn: Method) -> Method:
    METHODS[name] = fn
    return fn
  return decorator


@register("kmeans")
def kmeans_on_inputs(ctx: RunContext) -> dict:
  """k-means on the raw (scaled) inputs: the first baseline of every paper."""
  result = ctx.kmeans(ctx.features(), stage="kmeans")
  return {"labels": result.labels, "inertia": float(result.inertia)}


@register("ae_kmeans")
def ae_kmeans(ctx: RunContext) -> dict:
  """k-means on the embedding of a pretrained autoencoder."""
  model, params = ctx.autoencoder()
  z = ctx.embed(model, params["encoder"])
  result = ctx.kmeans(z, stage="kmeans")
  return {"labels": result.labels, "inertia": float(result.inertia)}


DEC_PARTIAL = "dec" + PARTIAL_SUFFIX  # clustering state, saved as it goes


def dec_settings(config, input_divisor: float) -> cluster.DECConfig:
  """The DEC loop's settings from a run config."""
  cfg = config.dec
  return cluster.DECConfig(
      batch_size=cfg.batch_size, update_interval=cfg.update_interval,
      tol=cfg.tol, maxiter=cfg.maxiter, alpha=cfg.alpha,
      chunk_size=config.chunk_size, reseed_fraction=cfg.reseed_fraction,
      input_divisor=input_divisor)


def dec_optimizer(config) -> optax.GradientTransformation:
  """The DEC loop's optimizer (its schedule spans dec.maxiter steps)."""
  return optim.from_config(config.dec, config.dec.maxiter)


def clustering_loss(config, model: models.AnyAutoencoder, params):
  """(minibatch loss or None for DEC's KL, the parameters trained besides
  encoder and centres) of the fine-tuning methods: dec and idec."""
  if config.method != "idec":
    return None, {}
  loss_fn = functools.partial(
      cluster.idec_loss, models.encoder_module(model),
      models.decoder_module(model), gamma=config.idec.gamma,
      alpha=config.dec.alpha)
  return loss_fn, {"decoder": params["decoder"]}


def _fine_tune(ctx: RunContext, model: models.Autoencoder, params) -> dict:
  """AE + k-means init, then the DEC loop with the method's minibatch loss.

  Resumes from this workdir's `dec_partial` checkpoint when an interrupted
  run with the same config left one (k-means is then not rerun). With
  `ctx.stacked_dec` (this seed's share of `--config.seeds`' vmapped DEC
  phase) the k-means init and the loop have run already: their records are
  logged and their result kept.
  """
  if ctx.stacked_dec is not None:
    return _from_stacked(ctx, model, ctx.stacked_dec)
  cfg = ctx.config.dec
  loss_fn, extra_params = clustering_loss(ctx.config, model, params)
  tx = dec_optimizer(ctx.config)
  settings = ctx.result_settings()
  resume, meta = ctx.resume_point(
      DEC_PARTIAL, settings,
      lambda meta: _dec_loop_shapes(ctx, params, tx, extra_params,
                                    meta["n_clusters"]))
  if meta is None:
    z = ctx.embed(model, params["encoder"])
    init = ctx.kmeans(z, stage="kmeans")
    init_scores = ctx.score(init.labels)
    ctx.log({"stage": "kmeans_init", **init_scores})
    centres, init_labels = init.centres, init.labels
  else:
    init_scores, centres, init_labels = meta["init_metrics"], None, None
    ctx.n_clusters = meta["n_clusters"]
    resume = {**resume, "iteration": meta["iteration"], "loss": meta["loss"]}
    ctx.extra["dec_resumed_from_iteration"] = meta["iteration"]
    ctx.log({"stage": "dec", "resumed_from_iteration": meta["iteration"]})

  def save_partial(loop: dict) -> None:
    ctx.workdir.save_params(
        DEC_PARTIAL, {"state": loop["state"],
                      "prev_labels": loop["prev_labels"]},
        {"settings": settings, "iteration": loop["iteration"],
         "loss": loop["loss"], "n_clusters": ctx.n_clusters,
         "init_metrics": init_scores})

  with ctx.stage(ctx.config.method):
    result = cluster.run_dec(
        models.encoder_module(model), params["encoder"], centres,
        init_labels, ctx.x, dec_key(ctx.key), tx,
        dec_settings(ctx.config, ctx.input_divisor),
        log_fn=ctx.log_assignment, loss_fn=loss_fn,
        extra_params=extra_params, resume=resume,
        checkpoint_every=cfg.checkpoint_every, checkpoint_fn=save_partial,
        augment_fn=ctx.augment_fn())
  return _finish(ctx, model, result, init_scores)


def dec_key(run_key: jax.Array) -> jax.Array:
  """The DEC loop's key (interval keys are fold_in(it, iteration))."""
  return jax.random.fold_in(run_key, 2)


def _from_stacked(ctx: RunContext, model: models.Autoencoder,
                  stacked: dict) -> dict:
  """Logs and keeps what the vmapped DEC phase computed for this seed."""
  ctx.log({"stage": "kmeans_init", **stacked["init_metrics"]})
  for record in stacked["records"]:  # scored already
    ctx.log_assignment(dict(record))
  ctx.times.update(stacked["times_s"])
  ctx.extra["dec_phase"] = stacked["dec_phase"]
  return _finish(ctx, model, stacked["result"], stacked["init_metrics"])


def _finish(ctx: RunContext, model: models.Autoencoder,
            result: cluster.DECResult, init_scores: dict) -> dict:
  """Saves the clustering model; the method's output."""
  ctx.workdir.save_params("dec", result.params, {
      "method": ctx.config.method, **models.describe(model),
      "n_clusters": ctx.n_clusters, "alpha": ctx.config.dec.alpha,
      "dtype": ctx.config.model.dtype, "scale": ctx.dataset.scale,
      "label_column": ctx.config.label_column,
      DATA_FINGERPRINT: ctx.dataset.fingerprint})
  ctx.workdir.remove_checkpoint(DEC_PARTIAL)
  return {"labels": result.labels, "soft_assignment": result.q,
          "iterations": result.iterations,
          "stop_reason": result.stop_reason, "init_metrics": init_scores}


def _dec_loop_shapes(ctx: RunContext, params, tx, extra_params,
                     n_clusters: int) -> dict:
  """The shapes of what `_fine_tune` checkpoints, for restoring it."""
  trained = {**(extra_params or {}), "encoder": params["encoder"],
             "centres": jnp.zeros((n_clusters, ctx.dims[-1]), jnp.float32)}
  return {"state": {"params": trained, "opt": tx.init(trained)},
          "prev_labels": jnp.zeros(ctx.dataset.num_samples, jnp.int32)}


@register("dec")
def dec(ctx: RunContext) -> dict:
  """Deep Embedded Clustering: AE + k-means init, then KL(P || Q) fine-tuning
  of the encoder and the centres (Xie et al., 2016)."""
  model, params = ctx.autoencoder()
  return _fine_tune(ctx, model, params)


@register("idec")
def idec(ctx: RunContext) -> dict:
  """Improved DEC (Guo et al., 2017): the decoder is kept and trained too,
  on L_rec + gamma * KL(P || Q), which preserves the embedding's structure."""
  model, params = ctx.autoencoder()
  return _fine_tune(ctx, model, params)


@register("n2d")
def n2d(ctx: RunContext) -> dict:
  """N2D (McConville et al., 2019): UMAP of the autoencoder's embedding to
  k dimensions, then a seeded full-covariance Gaussian mixture; the soft
  assignment is the mixture's posterior (see dec_jax/n2d.py)."""
  from dec_jax import n2d as n2d_lib  # pylint: disable=g-import-not-at-top
  model, params = ctx.autoencoder()
  z = ctx.embed(model, params["encoder"])
  cfg = ctx.config.n2d
  with ctx.stage("n2d"):
    result = n2d_lib.cluster(
        jax.device_get(z), ctx.n_clusters, n_neighbors=cfg.n_neighbors,
        min_dist=cfg.min_dist, metric=cfg.metric,
        covariance_type=cfg.covariance_type, gmm_n_init=cfg.gmm_n_init,
        seed=ctx.config.seed)
  ctx.times["umap"] = result.info["umap_s"]
  ctx.times["gmm"] = result.info["gmm_s"]
  ctx.log({"stage": "n2d", **result.info, **ctx.score(result.labels)})
  return {"labels": result.labels, "soft_assignment": result.posteriors,
          "n2d": {k: v for k, v in result.info.items()
                  if not k.endswith("_s")}}
