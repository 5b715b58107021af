"""over_members: one member's function over a stack's leading member axis,
batched (vmap, accelerators) or one member after the other (lax.map, CPUs);
both give every member what it gives alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dec_jax.nn import models
from dec_jax.train import optim
from dec_jax.train import pretrain
from dec_jax.train.member_axis import over_members


def _member(w, shared, b):
  return jnp.tanh(shared @ w) + b, jnp.sum(w)


@pytest.mark.parametrize("batched", [True, False])
def test_each_member_gets_its_own_result_and_shared_arguments(batched):
  w = jax.random.normal(jax.random.key(0), (3, 5, 4))
  shared = jax.random.normal(jax.random.key(1), (7, 5))
  b = jnp.arange(3.0)
  out, sums = jax.jit(over_members(_member, in_axes=(0, None, 0),
                                   batched=batched))(w, shared, b)
  assert out.shape == (3, 7, 4) and sums.shape == (3,)
  for i in range(3):
    alone, total = _member(w[i], shared, b[i])
    np.testing.assert_allclose(out[i], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums[i], total, rtol=1e-5)


@pytest.mark.parametrize("in_axes", [(0, 1, 0), (0, None)])
def test_unsupported_in_axes_refused(in_axes):
  with pytest.raises(ValueError, match="one 0 or None per argument"):
    over_members(_member, in_axes=in_axes, batched=False)(
        jnp.ones((2, 5, 4)), jnp.ones((7, 5)), jnp.ones(2))


def test_unbatched_stack_members_equal_their_runs_alone_exactly():
  """lax.map runs each member's own computation: 5 pretraining epochs of a
  stack of 3 give each member bit for bit what a stack of one gives (vmap
  only agrees to summation order)."""
  if jax.default_backend() != "cpu":
    pytest.skip("stacks are batched (vmap) on accelerators")
  model = models.Autoencoder((16, 12, 4))
  keys = jax.random.split(jax.random.key(0), 3)
  params = models.init_autoencoders(model, keys)
  x = jax.random.uniform(jax.random.key(1), (100, 16))
  tx = optim.make_optimizer("adam", 1e-3)
  train = lambda p, k: pretrain.pretrain(model, p, x, k, tx, epochs=5,
                                         batch_size=16)
  stacked = train(params, keys)
  for i in range(3):
    alone = train(jax.tree.map(lambda a: a[i:i + 1], params), keys[i:i + 1])
    for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(alone)):
      np.testing.assert_array_equal(a[i], b[0])
