"""The member axis of a stack: one member's function run over S members.

Every stacked program of the training loops maps a one-member function over
the leading member axis with `over_members`. On accelerators that is
`jax.vmap`: the members become one batched computation, wider kernels that
fill the device. On CPUs the batched kernels of the clustering networks are
slower than the members' own (vmapped stacks of 5 and 20 took 1.07-1.14x
their members apart: `python -m experiments.bench --member_axis=vmap`), so
there `jax.lax.map` runs each member's unbatched computation in turn, still
inside the one compiled program (0.97-1.04x). Both give every member its
own result; the choice is by backend, as for core.kmeans' restarts.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import jax

Axes = Union[int, None, Sequence[Optional[int]]]


def batched_by_default() -> bool:
  """Whether stacks batch their members (vmap): on every backend but CPU."""
  return jax.default_backend() != "cpu"


def over_members(fn: Callable[..., Any], in_axes: Axes = 0, *,
                 batched: Optional[bool] = None) -> Callable[..., Any]:
  """fn mapped over the leading member axis of its arguments.

  in_axes is vmap's, limited to 0 (mapped) or None (shared by every member)
  per positional argument. batched=True: jax.vmap; False: jax.lax.map, one
  member after the other; None: `batched_by_default()`. Outputs carry the
  member axis first either way.
  """
  batched = batched_by_default() if batched is None else batched
  if batched:
    return jax.vmap(fn, in_axes=in_axes)

  def mapped(*args):
    axes = (tuple(in_axes) if isinstance(in_axes, (tuple, list))
            else (in_axes,) * len(args))
    if len(axes) != len(args) or any(a not in (0, None) for a in axes):
      raise ValueError(f"in_axes {in_axes!r}: one 0 or None per argument "
                       f"({len(args)} given)")
    members = tuple(a if ax == 0 else None for a, ax in zip(args, axes))

    def one(member_args):
      return fn(*(m if ax == 0 else a
                  for m, a, ax in zip(member_args, args, axes)))

    return jax.lax.map(one, members)

  return mapped
