r"""One DEC interval of S members three ways: vmapped, lax.map, and apart.

  python -m experiments.stack_impl_check --dims=784,500,500,2000,10 --stack=5

Times (median of --repeats, after one compiling call) the stacked DEC
interval as the runner builds it (`jax.vmap` of `dec_loop.dec_pieces`'s
train_interval), the same members one after the other inside one program
(`jax.lax.map`), and one member alone (x S gives the separate runs). A
one-off check for docs/performance.md, not the benchmark: it asks whether
a stack's cost on a CPU comes from vmap's batched matmuls.
"""

from __future__ import annotations

import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from dec_jax.nn import models
from dec_jax.train import dec_loop
from dec_jax.train import optim

_DIMS = flags.DEFINE_list("dims", ["784", "500", "500", "2000", "10"],
                          "Input width, hidden widths, embedding width.")
_STACK = flags.DEFINE_integer("stack", 5, "Members S.")
_STEPS = flags.DEFINE_integer("steps", 20, "Minibatch steps per interval.")
_SAMPLES = flags.DEFINE_integer("samples", 5120, "Rows of random data.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls per variant.")


def median_s(fn, args, repeats: int) -> float:
  """Median wall seconds of fn(*args) after one compiling call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv) -> None:
  del argv
  dims, s, n, steps = (tuple(int(d) for d in _DIMS.value), _STACK.value,
                       _SAMPLES.value, _STEPS.value)
  model = models.Autoencoder(dims)
  tx = optim.make_optimizer("sgd", 0.01, momentum=0.9)
  cfg = dec_loop.DECConfig(batch_size=256, update_interval=steps)
  pieces = dec_loop.dec_pieces(models.encoder_module(model), tx, n, cfg)
  params = models.init_autoencoders(model, jax.random.split(
      jax.random.key(0), s))
  hp = {k: jnp.full((s,), v, jnp.float32) for k, v in cfg.hyper().items()}
  state = optim.init_states(tx, {"encoder": params["encoder"],
                                 "centres": jnp.zeros((s, 10, dims[-1]))}, hp)
  x = jax.random.uniform(jax.random.key(1), (n, dims[0]))
  p = jnp.full((s, n, 10), 0.1)
  keys = jax.random.split(jax.random.key(2), s)
  interval = lambda st, pb, k, h: pieces.train_interval(st, x, pb, k, steps,
                                                        h)
  first = lambda tree: jax.tree.map(lambda a: a[0], tree)
  variants = {
      "vmap": (jax.jit(jax.vmap(interval)), (state, p, keys, hp)),
      "lax.map": (jax.jit(lambda *a: jax.lax.map(lambda m: interval(*m), a)),
                  (state, p, keys, hp)),
      "one member": (jax.jit(interval), first((state, p, keys, hp))),
  }
  apart = None
  for name, (fn, args) in variants.items():
    step_ms = 1e3 * median_s(fn, args, _REPEATS.value) / steps
    if name == "one member":
      apart = s * step_ms
      print(f"{name:>10}: {step_ms:.1f} ms per step; x {s}: {apart:.1f} ms")
    else:
      print(f"{name:>10}: {step_ms:.1f} ms per step")
      variants[name] = step_ms
  for name in ("vmap", "lax.map"):
    print(f"{name} / {s} apart: {variants[name] / apart:.3f}")


if __name__ == "__main__":
  app.run(main)
