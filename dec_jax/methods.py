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

from dec_jax import cluster
from dec_jax import models
from dec_jax.workdir import PARTIAL_SUFFIX

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


def _fine_tune(ctx: RunContext, model: models.Autoencoder, params, *,
               loss_fn=None, extra_params=None) -> dict:
  """AE + k-means init, then the DEC loop with the given minibatch loss.

  Resumes from this workdir's `dec_partial` checkpoint when an interrupted
  run with the same config left one (k-means is then not rerun).
  """
  cfg = ctx.config.dec
  tx = ctx.optimizer(cfg, total_steps=cfg.maxiter)
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

  dec_cfg = cluster.DECConfig(
      batch_size=cfg.batch_size, update_interval=cfg.update_interval,
      tol=cfg.tol, maxiter=cfg.maxiter, alpha=cfg.alpha,
      chunk_size=ctx.config.chunk_size, reseed_fraction=cfg.reseed_fraction,
      input_divisor=ctx.input_divisor)
  with ctx.stage(ctx.config.method):
    result = cluster.run_dec(
        models.encoder_module(model), params["encoder"], centres,
        init_labels, ctx.x, jax.random.fold_in(ctx.key, 2), tx, dec_cfg,
        log_fn=ctx.log_assignment, loss_fn=loss_fn, extra_params=extra_params,
        resume=resume, checkpoint_every=cfg.checkpoint_every,
        checkpoint_fn=save_partial, augment_fn=ctx.augment_fn())
  ctx.workdir.save_params("dec", result.params, {
      "method": ctx.config.method, **models.describe(model),
      "n_clusters": ctx.n_clusters, "alpha": cfg.alpha,
      "dtype": ctx.config.model.dtype, "scale": ctx.dataset.scale,
      "label_column": ctx.config.label_column})
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
  loss_fn = functools.partial(
      cluster.idec_loss, models.encoder_module(model),
      models.decoder_module(model), gamma=ctx.config.idec.gamma,
      alpha=ctx.config.dec.alpha)
  return _fine_tune(ctx, model, params, loss_fn=loss_fn,
                    extra_params={"decoder": params["decoder"]})


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
