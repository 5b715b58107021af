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

from dec_jax import cluster
from dec_jax import models

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
  result = ctx.kmeans(ctx.x, stage="kmeans")
  return {"labels": result.labels, "inertia": float(result.inertia)}


@register("ae_kmeans")
def ae_kmeans(ctx: RunContext) -> dict:
  """k-means on the embedding of a pretrained autoencoder."""
  model, params = ctx.autoencoder()
  z = ctx.embed(model, params["encoder"])
  result = ctx.kmeans(z, stage="kmeans")
  return {"labels": result.labels, "inertia": float(result.inertia)}


def _fine_tune(ctx: RunContext, model: models.Autoencoder, params, *,
               loss_fn=None, extra_params=None) -> dict:
  """AE + k-means init, then the DEC loop with the given minibatch loss."""
  z = ctx.embed(model, params["encoder"])
  init = ctx.kmeans(z, stage="kmeans")
  init_scores = ctx.score(init.labels)
  ctx.log({"stage": "kmeans_init", **init_scores})
  cfg = ctx.config.dec
  dec_cfg = cluster.DECConfig(
      batch_size=cfg.batch_size, update_interval=cfg.update_interval,
      tol=cfg.tol, maxiter=cfg.maxiter, alpha=cfg.alpha,
      chunk_size=ctx.config.chunk_size, reseed_fraction=cfg.reseed_fraction)
  tx = ctx.optimizer(cfg, total_steps=cfg.maxiter)
  with ctx.stage(ctx.config.method):
    result = cluster.run_dec(
        models.encoder_module(model), params["encoder"], init.centres,
        init.labels, ctx.x, jax.random.fold_in(ctx.key, 2), tx, dec_cfg,
        log_fn=ctx.log_assignment, loss_fn=loss_fn, extra_params=extra_params)
  ctx.workdir.save_params("dec", result.params, {
      "method": ctx.config.method, "dims": list(model.dims),
      "n_clusters": ctx.n_clusters, "alpha": cfg.alpha,
      "dtype": ctx.config.model.dtype, "scale": ctx.dataset.scale,
      "label_column": ctx.config.label_column})
  return {"labels": result.labels, "soft_assignment": result.q,
          "iterations": result.iterations,
          "stop_reason": result.stop_reason, "init_metrics": init_scores}


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
