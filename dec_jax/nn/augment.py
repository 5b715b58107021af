"""Image augmentation on the device: random shifts and small rotations.

DEC-DA (Guo et al., 2018) trains the autoencoder and the clustering stage on
randomly shifted and rotated images (Keras's ImageDataGenerator: shifts of
10 % of the width, rotations of 10 degrees). Here every sample of a
minibatch gets its own affine transform, drawn from an explicit key, and is
resampled with bilinear interpolation (`map_coordinates`, order 1) and zero
fill outside the image. Two differences from DEC-DA's generator, kept so
that the results in docs/results.md stay this code's: shifts up to 3 pixels
at 28x28 (Keras: 0.1 x 28 = 2.8) and zero fill (Keras: `nearest`, which
repeats the edge pixels; the same on MNIST's black borders, not on
Fashion-MNIST items that touch the edge).

Inputs are flat rows [B, D] of `image_shape` images, as everywhere in
dec_jax; outputs have the same shape and dtype, and with pixels in
[lo, hi] (lo <= 0 <= hi, e.g. [0, 1]) stay in that range (linear
interpolation between pixels and the zero fill).

All functions are pure and jit-able.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

MAX_SHIFT_28 = 3.0      # pixels at 28x28 (DEC-DA: 2.8); scaled by size
MAX_ROTATION_DEG = 10.0

AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]  # (key, x) -> x


def affine_image(image: jax.Array, shift: jax.Array,
                 angle: jax.Array) -> jax.Array:
  """`image` [H, W] or [H, W, C] rotated by `angle` (radians, about its
  centre) and then moved by `shift` = (rows, columns) pixels.

  Output pixel p samples the input at R(-angle) (p - c - shift) + c, so the
  content at q lands at R(angle) (q - c) + c + shift. Bilinear, zero fill.
  """
  h, w = image.shape[:2]
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                            jnp.arange(w, dtype=jnp.float32), indexing="ij")
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  dy, dx = rows - cy - shift[0], cols - cx - shift[1]
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  src_rows = cos * dy + sin * dx + cy
  src_cols = -sin * dy + cos * dx + cx
  sample = lambda channel: jax.scipy.ndimage.map_coordinates(
      channel, [src_rows, src_cols], order=1, mode="constant", cval=0.0)
  image = image.astype(jnp.float32)
  if image.ndim == 2:
    return sample(image)
  return jnp.stack([sample(image[..., c]) for c in range(image.shape[-1])],
                   axis=-1)


def max_shift(image_shape: Sequence[int]) -> float:
  """The largest shift, in pixels: 3 at 28x28, proportionally smaller or
  larger for other sizes (0.86 at 8x8, 1.7 at 16x16)."""
  return MAX_SHIFT_28 * min(image_shape[:2]) / 28.0


def random_affine(key: jax.Array, x: jax.Array, image_shape: Sequence[int], *,
                  shift: float, rotation_deg: float) -> jax.Array:
  """Each row of x [B, D] reshaped to `image_shape`, shifted by U(-shift,
  shift) pixels along each axis and rotated by U(-rotation_deg,
  rotation_deg) degrees, each sample with its own draw; flat [B, D] back."""
  b = x.shape[0]
  shift_key, angle_key = jax.random.split(key)
  shifts = jax.random.uniform(shift_key, (b, 2), jnp.float32, -shift, shift)
  angles = jax.random.uniform(angle_key, (b,), jnp.float32,
                              -math.radians(rotation_deg),
                              math.radians(rotation_deg))
  images = x.reshape((b,) + tuple(image_shape))
  out = jax.vmap(affine_image)(images, shifts, angles)
  return out.reshape(x.shape).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class Augment:
  """augment(key, x [B, D]) -> x' [B, D]: DEC-DA's random shifts and
  rotations of `image_shape` images, per sample. A value (hashable, equal
  for equal settings), so programs built around it are reused."""
  image_shape: tuple[int, ...]
  shift: float
  rotation_deg: float

  def __call__(self, key: jax.Array, x: jax.Array) -> jax.Array:
    return random_affine(key, x, self.image_shape, shift=self.shift,
                         rotation_deg=self.rotation_deg)


def make_augment_fn(image_shape: Sequence[int], *,
                    shift: float | None = None,
                    rotation_deg: float = MAX_ROTATION_DEG) -> Augment:
  """DEC-DA's augmentation of `image_shape` images: shifts up to `shift`
  pixels (default `max_shift(image_shape)`), rotations up to
  `rotation_deg` degrees."""
  image_shape = tuple(int(s) for s in image_shape)
  shift = max_shift(image_shape) if shift is None else float(shift)
  return Augment(image_shape, shift, float(rotation_deg))
