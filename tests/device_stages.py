"""Every stage that splits rows over devices, run on 1, 2, 3 and 4 devices.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \
      python -m tests.device_stages OUT.npz

Runs each stage without a mesh and inside `jax.set_mesh(data_mesh(n))` for
n = 2, 3, 4, on 1,797 and 1,001 rows in batches of 101 and chunks of 499
(sizes that 2, 3 and 4 do not divide, but for 1,797 = 3 x 599), and saves
every result as OUT.npz entries `{n}/{stage}/{leaf}`; tests/test_devices.py
compares them with n = 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import traceback
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

from dec_jax.train import dec_loop
from dec_jax.nn import models
from dec_jax.train import optim
from dec_jax import parallel
from dec_jax.train import pretrain
from dec_jax.apps.predict import TrainedModel
from tests.conftest import run_dec_one

DEVICE_COUNTS = (1, 2, 3, 4)
BATCH = 101      # minibatch rows: 2, 3, 4 divide neither these
FEW_ROWS = 1001  # rows of the pretraining stages
CHUNK = 499      # embedding chunk: 1,797 rows = 3 x 499 + 300
DIMS = (64, 32, 8)


def _digits() -> np.ndarray:
  """The 1,797 8x8 digits, uint8 pixels 0..16 (features: x / 16)."""
  return load_digits().data.astype(np.uint8)


def _setup():
  """(model, initial params, optimizer), the same for every device count."""
  model = models.Autoencoder(DIMS)
  params = models.init_autoencoder(model, jax.random.key(0))
  return model, params, optim.make_optimizer("adam", 1e-3)


Stages = dict[str, Callable[[], Any]]  # name -> thunk computing its result


def pretraining_stages(x: np.ndarray) -> Stages:
  """End-to-end pretraining (resident and streamed) and greedy pretraining."""
  model, params, tx = _setup()
  x = x[:FEW_ROWS]
  # A stack of one member (pretrain.pretrain trains stacks).
  train = lambda x: jax.tree.map(lambda a: a[0], pretrain.pretrain(
      model, dec_loop.stack([params]), x, jax.random.key(1)[None], tx,
      epochs=2, batch_size=BATCH, input_divisor=16.0))
  return {
      "pretrain": lambda: train(jnp.asarray(x)),
      "pretrain_streamed": lambda: train(x),
      "greedy": lambda: jax.tree.map(lambda a: a[0], pretrain.greedy_pretrain(
          model, dec_loop.stack([params]), jnp.asarray(x / 16.0, jnp.float32),
          jax.random.key(2)[None], tx, epochs=1, batch_size=BATCH)),
  }


def embedding_stages(x: np.ndarray) -> Stages:
  """The full-set embedding, eager as run.py calls it: in one chunk and in
  several; streamed from the host; and predict's (jitted)."""
  model, params, _ = _setup()
  encoder, enc_params = models.encoder_module(model), params["encoder"]
  embed = functools.partial(dec_loop.embed, encoder, enc_params,
                            input_divisor=16.0)
  trained = TrainedModel(encoder_params=enc_params,
                         centres=jnp.asarray(np.eye(4, DIMS[-1]), jnp.float32),
                         dims=DIMS, alpha=1.0, config={})
  return {
      "embed_one_chunk": lambda: embed(jnp.asarray(x), 8192),
      "embed_chunks": lambda: embed(jnp.asarray(x), CHUNK),
      "embed_streamed": lambda: dec_loop.embed_streamed(
          encoder, enc_params, x, CHUNK, 16.0),
      "predict_q": lambda: trained.soft_assign(x[:FEW_ROWS] / 16.0),
  }


def dec_stages(x: np.ndarray) -> Stages:
  """The target update (reseeding starved clusters) and DEC fine-tuning,
  resident and streamed: labels, q and params after two intervals."""
  model, params, tx = _setup()
  encoder = models.encoder_module(model)
  start = {"encoder": params["encoder"],  # centres: 10 points' embeddings
           "centres": encoder.apply({"params": params["encoder"]},
                                    x[:10] / 16.0)}
  labels = jnp.zeros(x.shape[0], jnp.int32)
  cfg = dec_loop.DECConfig(batch_size=BATCH, update_interval=10, maxiter=20,
                          tol=0.0, chunk_size=CHUNK, input_divisor=16.0)
  reseeding = dec_loop.make_dec_fns(
      encoder, tx, x.shape[0],
      dataclasses.replace(cfg, reseed_fraction=0.9))[0]
  dec = functools.partial(run_dec_one, encoder, start["encoder"],
                          start["centres"], labels, key=jax.random.key(3),
                          tx=tx, cfg=cfg)
  pick = lambda r: {"params": r.params, "labels": r.labels, "q": r.q}
  return {
      "target_update_reseed": lambda: reseeding(start, jnp.asarray(x),
                                                labels),
      "dec": lambda: pick(dec(x=jnp.asarray(x))),
      "dec_streamed": lambda: pick(dec(x=x)),
  }


def split_rows(n: int) -> bool:
  """Whether the compiled gradient of a BATCH-row minibatch's loss on `n`
  devices holds ceil(BATCH / n) rows per device: uneven rows are split."""
  model, params, _ = _setup()
  grad = jax.jit(jax.grad(lambda p, xb: pretrain.reconstruction_loss(
      model, p, parallel.shard_rows(xb))))
  hlo = grad.lower(params, jnp.zeros((BATCH, DIMS[0]))).compile().as_text()
  return f"f32[{-(-BATCH // n)},{DIMS[0]}]" in hlo


def run_all(x: np.ndarray) -> dict[str, np.ndarray]:
  """{'{n}/{stage}/{leaf path}': array} for every device count and stage;
  a stage that raises gives '{n}/{stage}/error': its traceback instead."""
  out = {}
  for n in DEVICE_COUNTS:
    mesh = parallel.data_mesh(n)
    with contextlib.nullcontext() if mesh is None else jax.set_mesh(mesh):
      stages = {"split_rows": functools.partial(split_rows, n),
                **pretraining_stages(x), **embedding_stages(x),
                **dec_stages(x)}
      for name, stage in stages.items():
        try:
          tree = stage()
        except Exception:  # pylint: disable=broad-except
          out[f"{n}/{name}/error"] = np.array(traceback.format_exc())
          continue
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
          out[f"{n}/{name}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
  return out


if __name__ == "__main__":
  assert jax.device_count() >= max(DEVICE_COUNTS), jax.devices()
  np.savez(sys.argv[1], **run_all(_digits()))
