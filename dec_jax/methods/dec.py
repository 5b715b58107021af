"""DEC (Xie et al., 2016) and IDEC (Guo et al., 2017): AE + k-means init,
then the target-update / train-interval loop (`dec_loop.run_dec`) of the
whole stack at once.

DEC fine-tunes the encoder and the centres on KL(P || Q); IDEC keeps the
decoder and trains it too, on L_rec + gamma * KL(P || Q), which preserves
the embedding's structure. The loop's state is checkpointed every
`dec.checkpoint_every` iterations (in the stack's home workdir), so a killed
run resumes mid-loop; each member's final encoder + centres are saved as
its checkpoints/dec, which `dec_jax.predict` loads.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dec_jax.core import consensus
from dec_jax.train import dec_loop
from dec_jax.nn import models
from dec_jax.train import optim
from dec_jax.methods.base import Method, register

DEC_PARTIAL = "dec_partial"  # the loop's state, saved as it goes
DEC_HP = ("learning_rate", "momentum", "alpha", "reseed_fraction")
REFINE = "consensus_refine"  # the `ensemble` choice that adds _refine
# The log's stages from the k-means start on: a clustering stage that starts
# afresh in a continued log replaces them.
CLUSTERING_STAGES = ("choose_k", "kmeans_init", "dec")


def settings(configs: Sequence[ml_collections.ConfigDict],
             input_divisor: float) -> dec_loop.DECConfig:
  """The loop's static settings from the members' configs (the first
  member's, but reseeding is compiled in when any member reseeds: its
  fraction is stackable, each member's own is read from its hp)."""
  cfg = configs[0].dec
  return dec_loop.DECConfig(
      batch_size=cfg.batch_size, update_interval=cfg.update_interval,
      tol=cfg.tol, maxiter=cfg.maxiter, patience=cfg.patience,
      alpha=cfg.alpha, chunk_size=configs[0].chunk_size,
      reseed_fraction=max(c.dec.reseed_fraction for c in configs),
      input_divisor=input_divisor)


@dataclasses.dataclass(frozen=True)
class _IDECLoss:
  """IDEC's minibatch loss (params, xb, pb, hp), gamma from the member's hp.
  A value, so equal models share their compiled programs."""
  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, params, xb, pb, hp):
    return dec_loop.idec_loss(self.encoder, self.decoder, params, xb, pb,
                              gamma=hp["gamma"], alpha=hp["alpha"])


def _fine_tune(stack, idec: bool) -> list[dict]:
  """AE + k-means init, then the stacked DEC loop with the method's loss."""
  model, params, pretrain_infos = stack.autoencoders()
  extra = {"decoder": params["decoder"]} if idec else {}
  hp = {**stack.hyper("dec", DEC_HP),
        **(stack.hyper("idec", ("gamma",)) if idec else {})}
  member_settings = [stack.result_settings(i) for i in range(stack.size)]
  tx = optim.from_hyper(stack.config.dec, stack.config.dec.maxiter)
  resume, meta = stack.resume_point(
      DEC_PARTIAL, member_settings,
      lambda meta: _loop_shapes(stack, params, extra, tx, hp, meta),
      stack.config.method)
  if meta is None:
    for run in stack.runs:  # an interrupted run's, of other settings
      run.forget(CLUSTERING_STAGES)
    z = stack.embed(model, params["encoder"])
    inits, k_infos = stack.kmeans(list(z))
    init_scores = [run.score(init.labels)
                   for run, init in zip(stack.runs, inits)]
    for run, scores in zip(stack.runs, init_scores):
      run.log({"stage": "kmeans_init", **scores})
    ks = sorted({int(init.centres.shape[0]) for init in inits})
    if len(ks) > 1:
      return _by_k(stack, model, params, extra, tx, hp, inits, init_scores,
                   k_infos, pretrain_infos, idec)
    k = ks[0]
    start = _start(params, extra, inits, range(stack.size))
  else:
    start, init_scores, k_infos = None, meta["init_metrics"], meta["k_infos"]
    k = meta["n_clusters"]
    resume = _restored(resume, meta)
    for run in stack.runs:  # the update at the checkpoint's iteration is redone
      run.rewind("dec", "iteration", meta["iteration"] - 1)
      run.log({"stage": "dec", "resumed_from_iteration": meta["iteration"]})

  def save(loop: dict) -> None:
    finished = {str(i): {"iterations": r.iterations,
                         "stop_reason": r.stop_reason}
                for i, r in loop["finished"].items()}
    stack.save_partial(DEC_PARTIAL, _saved_arrays(loop), stack.config.method,
                       {"settings": member_settings,
                        "iteration": loop["iteration"], "loss": loop["loss"],
                        "alive": loop["alive"], "finished": finished,
                        "plateau": loop["plateau"], "n_clusters": k,
                        "init_metrics": init_scores, "k_infos": k_infos})

  results = _loop(stack, model, start, tx, hp, idec, resume=resume,
                  checkpoint_fn=save)
  stack.home.remove_checkpoint(DEC_PARTIAL)
  if meta is not None:
    pretrain_infos = [{**p, "dec_resumed_from_iteration": meta["iteration"]}
                      for p in pretrain_infos]
  if stack.config.get("ensemble") == REFINE:
    results, refine_infos = _refine(stack, model, results, tx, hp, idec)
    pretrain_infos = [{**p, **r} for p, r in zip(pretrain_infos, refine_infos)]
  return _outputs(stack, model, results, init_scores, k_infos,
                  pretrain_infos)


def _refine(stack, model, results, tx, hp, idec: bool):
  """ensemble=consensus_refine: every member's DEC stage once more, from the
  label-free consensus of all members' results (core.consensus): each
  member's centres become the means of its own embeddings over the
  consensus clusters. Not checkpointed: a rerun repeats the (deterministic)
  DEC stage. Returns the new results and what each member's results.json
  adds: the scores of the consensus start and of the first stage."""
  k = int(results[0].params["centres"].shape[0])
  agreed = consensus.consensus(
      np.stack([r.labels for r in results]), k, [r.q for r in results],
      combine=stack.config.get("consensus_combine",
                               consensus.DEFAULT_COMBINE))
  params = dec_loop.stack([r.params for r in results])
  z = np.asarray(stack.embed(model, params["encoder"]))
  centres = [consensus.cluster_means(z[s], agreed.labels, consensus.aligned(
      np.asarray(r.params["centres"]), agreed.alignments[s]))
             for s, r in enumerate(results)]
  labels = jnp.asarray(agreed.labels, jnp.int32)
  start = dec_loop.DECStart({**params, "centres": jnp.asarray(np.stack(
      centres))}, jnp.tile(labels, (stack.size, 1)))
  refined = _loop(stack, model, start, tx, hp, idec, stage="dec_refine")
  infos = [{"refine": {"start": run.score(agreed.labels), "first_stage": {
      **run.score(r.labels), "iterations": r.iterations,
      "stop_reason": r.stop_reason}}} for run, r in zip(stack.runs, results)]
  return refined, infos


def _loop(stack, model, start, tx, hp, idec: bool, *, index=None,
          resume: Optional[dict] = None, checkpoint_fn=None,
          stage: str = "dec"):
  """dec_loop.run_dec for the members `index` (default: all); `stage` names
  its keys and log records (dec, or dec_refine)."""
  index = list(range(stack.size)) if index is None else index
  sub = jnp.asarray(index)
  log = lambda j, record: stack.runs[index[j]].log_assignment(
      {**record, "stage": stage})
  loss_fn = _IDECLoss(models.encoder_module(model),
                      models.decoder_module(model)) if idec else None
  with stack.stage(stack.config.method if stage == "dec" else stage):
    return dec_loop.run_dec(
        models.encoder_module(model), start,
        stack.x, stack.keys(stage)[sub], tx,
        settings([stack.configs[i] for i in index], stack.dataset.divisor),
        jax.tree.map(lambda a: a[np.asarray(index)], hp),
        [stack.configs[i].dec.tol for i in index], log,
        patiences=[stack.configs[i].dec.patience for i in index],
        loss_fn=loss_fn, resume=resume,
        checkpoint_every=stack.config.dec.checkpoint_every,
        checkpoint_fn=checkpoint_fn, augment_fn=stack.augment_fn(),
        names=[stack.names[i] for i in index])


def _by_k(stack, model, params, extra, tx, hp, inits, init_scores, k_infos,
          pretrain_infos, idec) -> list[dict]:
  """n_clusters=auto chose different k for the members: one loop per k
  (their centres differ in shape), not checkpointed."""
  results: list[Any] = [None] * stack.size
  for k in sorted({int(init.centres.shape[0]) for init in inits}):
    index = [i for i, init in enumerate(inits) if init.centres.shape[0] == k]
    start = _start(params, extra, inits, index)
    for i, result in zip(index, _loop(stack, model, start, tx, hp, idec,
                                      index=index)):
      results[i] = result
  return _outputs(stack, model, results, init_scores, k_infos,
                  pretrain_infos)


def _start(params, extra: dict, inits, index) -> dec_loop.DECStart:
  """The loop's start for members `index`: their encoders (and what else
  the loss trains), k-means centres and labels, stacked."""
  rows = np.asarray(list(index))
  take = lambda tree: jax.tree.map(lambda a: a[rows], tree)
  return dec_loop.DECStart(
      {**take(extra), "encoder": take(params["encoder"]),
       "centres": jnp.stack([inits[i].centres for i in rows])},
      jnp.stack([inits[i].labels for i in rows]))


def _saved_arrays(loop: dict) -> dict:
  """The arrays of a loop checkpoint (its numbers go to the description)."""
  return {"state": loop["state"], "prev_labels": loop["prev_labels"],
          "finished": {str(i): {"params": r.params, "labels": r.labels,
                                "q": r.q}
                       for i, r in loop["finished"].items()}}


def _loop_shapes(stack, params, extra, tx, hp, meta: dict) -> dict:
  """The shapes of a saved loop checkpoint, for restoring it."""
  k = int(meta["n_clusters"])
  n, d = stack.dataset.num_samples, stack.dims[-1]
  member = {**jax.tree.map(lambda a: a[0], extra),
            "encoder": jax.tree.map(lambda a: a[0], params["encoder"]),
            "centres": jnp.zeros((k, d), jnp.float32)}
  alive = len(meta["alive"])
  stacked = dec_loop.stack([member] * alive)
  hp_alive = {name: v[:alive] for name, v in hp.items()}
  return {"state": optim.init_states(tx, stacked, hp_alive),
          "prev_labels": jnp.zeros((alive, n), jnp.int32),
          "finished": {i: {"params": member,
                           "labels": jnp.zeros(n, jnp.int32),
                           "q": jnp.zeros((n, k), jnp.float32)}
                       for i in meta["finished"]}}


def _restored(arrays: dict, meta: dict) -> dict:
  """A restored checkpoint as dec_loop.run_dec's `resume`."""
  finished = {int(i): dec_loop.DECResult(
      params=arrays["finished"][i]["params"],
      labels=np.asarray(arrays["finished"][i]["labels"]),
      q=np.asarray(arrays["finished"][i]["q"]),
      iterations=info["iterations"], stop_reason=info["stop_reason"])
              for i, info in meta["finished"].items()}
  return {"state": arrays["state"], "prev_labels": arrays["prev_labels"],
          "iteration": meta["iteration"], "loss": meta["loss"],
          "alive": meta["alive"], "finished": finished,
          "plateau": meta.get("plateau", {}),
          "elapsed_s": meta.get("elapsed_s", 0.0)}


def _outputs(stack, model, results, init_scores, k_infos,
             pretrain_infos) -> list[dict]:
  """Saves each member's clustering model; the method's outputs."""
  outputs = []
  for i, result in enumerate(results):
    k = int(result.params["centres"].shape[0])
    cfg = stack.configs[i]
    stack.save_model(i, "dec", result.params, {
        "method": cfg.method, **models.describe(model), "n_clusters": k,
        "alpha": cfg.dec.alpha, "dtype": cfg.model.dtype,
        "scale": stack.dataset.scale, "label_column": cfg.label_column})
    outputs.append({
        "labels": result.labels, "soft_assignment": result.q,
        "n_clusters": k, "iterations": result.iterations,
        "stop_reason": result.stop_reason, "init_metrics": init_scores[i],
        **pretrain_infos[i], **k_infos[i]})
  return outputs


def dec_section() -> ml_collections.ConfigDict:
  """config.dec: the clustering stage of dec and idec (DEC-keras's)."""
  dec = ml_collections.ConfigDict()
  dec.optimizer = "sgd"
  dec.learning_rate = 0.01
  dec.momentum = 0.9
  dec.schedule = "constant"
  dec.batch_size = 256
  # DEC-keras: 140 for MNIST, 30 for small sets; 140 measured as well as or
  # better than 30 on the digits, MNIST-test and Fashion-MNIST-test.
  dec.update_interval = 140
  dec.tol = 0.001
  dec.maxiter = 20_000
  dec.patience = 0  # >0: also stop once the label change has not reached a
                    # new low for this many target updates (off in DEC)
  dec.alpha = 1.0
  dec.checkpoint_every = 1000  # iterations; a rerun resumes from it
  dec.reseed_fraction = 0.0  # >0: move centres of clusters under
                             # this x N / k points (off in DEC)
  return dec


def idec_section() -> ml_collections.ConfigDict:
  """config.idec: what idec adds to config.dec."""
  idec = ml_collections.ConfigDict()
  idec.gamma = 0.1  # L_rec + gamma * KL (Guo et al., 2017)
  return idec


register(Method("dec", functools.partial(_fine_tune, idec=False),
                "Deep Embedded Clustering: KL(P || Q) fine-tuning of the "
                "encoder and the centres", stages=("pretrain", "dec"),
                predicts=True, refines_from_consensus=True,
                config_sections={"dec": dec_section}))
register(Method("idec", functools.partial(_fine_tune, idec=True),
                "Improved DEC: the decoder kept, L_rec + gamma * KL",
                stages=("pretrain", "dec"), predicts=True,
                refines_from_consensus=True,
                config_sections={"dec": dec_section, "idec": idec_section}))
