r"""Writes a synthetic image data set (.npz: uint8 `x` [N, 28, 28], `y` [N])
for scale tests: k random 'prototype' images plus per-image noise.

  python -m experiments.synthetic --out=/tmp/synth1m.npz --n=1000000
  python -m experiments.main --config=experiments/configs/mnist.py \
      --config.dataset=/tmp/synth1m.npz --workdir=/tmp/synth1m_dec ...

Generated in blocks, so writing 1M images needs about one copy of them.
"""

import os

from absl import app
from absl import flags
import numpy as np

from dec_jax.runner.workdir import write_bytes_atomic

_OUT = flags.DEFINE_string("out", None, "Output .npz path.")
_N = flags.DEFINE_integer("n", 1_000_000, "Number of images.", lower_bound=1)
_K = flags.DEFINE_integer("k", 10, "Number of classes.", lower_bound=1)
_NOISE = flags.DEFINE_float("noise", 60.0, "Pixel noise (std, 0-255 scale).",
                            lower_bound=0.0)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
flags.mark_flags_as_required(["out"])

_BLOCK = 100_000


def make(n: int, k: int, noise: float, seed: int):
  """(x uint8 [n, 28, 28], y int32 [n]): blurred random prototypes + noise."""
  rng = np.random.default_rng(seed)
  prototypes = rng.uniform(0, 255, size=(k, 28, 28))
  for _ in range(3):  # smooth them into blob-like strokes
    prototypes = (prototypes + np.roll(prototypes, 1, 1)
                  + np.roll(prototypes, 1, 2)) / 3
  prototypes = (prototypes - prototypes.min()) / np.ptp(prototypes) * 255
  y = rng.integers(0, k, size=n).astype(np.int32)
  x = np.empty((n, 28, 28), np.uint8)
  for start in range(0, n, _BLOCK):
    block = y[start:start + _BLOCK]
    images = prototypes[block] + rng.normal(0, noise, (len(block), 28, 28))
    x[start:start + _BLOCK] = np.clip(images, 0, 255).astype(np.uint8)
  return x, y


def main(argv):
  del argv
  out = _OUT.value if _OUT.value.endswith(".npz") else _OUT.value + ".npz"
  folder = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
    raise app.UsageError(f"--out: {folder} is not a writable folder.")
  x, y = make(_N.value, _K.value, _NOISE.value, _SEED.value)
  write_bytes_atomic(out, lambda f: np.savez(f, x=x, y=y))
  print(f"wrote {out}: x {x.shape} uint8, y {y.shape}, {_K.value} classes")


if __name__ == "__main__":
  app.run(main)
