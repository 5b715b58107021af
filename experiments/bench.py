r"""Benchmarks dec_jax's compiled pieces on whatever backend JAX runs.

  python -m experiments.bench --out=bench.json
  python -m experiments.bench --dataset=mnist --data_dir=../shared/data/mnist \
      --dtype=bfloat16
  python -m experiments.bench --n_samples=3000 --dims=64,64,10 --repeats=2 \
      --matmul_size=1024   # a quick smoke run

In one process, in pipeline order, it measures:
  1. matmul peak: a jitted [n, n] @ [n, n] dot in --dtype, GFLOP/s;
  2. autoencoder pretraining (`pretrain.make_epoch_fn`, Adam): whole epochs,
     samples/s, GFLOP/s (FLOPs counted analytically) and % of the matmul peak;
  3. with --conv_samples, pretraining epochs of DCEC's conv AE on that many
     samples, its convs as matmuls (the default) and XLA's, samples/s, ratio;
  4. the embedding of the full set (jitted `dec_loop.embed`);
  5. k-means on those embeddings, JAX vs scikit-learn (`kmeans.fit_kmeans`);
  6. the DEC loop pieces (`dec_loop.make_dec_fns`, SGD + momentum): minibatch
     steps/s of `train_interval`, one full-set `target_update`, and the
     effective iterations/s of the loop;
and the compile time of each jitted piece and the peak memory. Every piece is
called once first (compile + run, reported separately), then timed `--repeats`
times; medians are reported. The table goes to stdout, everything to --out.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable, Optional, Sequence

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dec_jax.train import dec_loop
from dec_jax.core import clustering
from dec_jax.runner import data
from dec_jax.core import kmeans
from dec_jax.nn import models
from dec_jax.train import member_axis
from dec_jax.train import optim
from dec_jax.train import pretrain
from dec_jax.errors import DecJaxError
from dec_jax.runner.run import environment
from dec_jax.runner.workdir import write_json_atomic

DTYPES = models.DTYPES
DATASETS = ("synthetic",) + data.BUILTIN_DATASETS
MIB = 2.0 ** 20

_DATASET = flags.DEFINE_enum(
    "dataset", "synthetic", DATASETS,
    "Inputs: uniform [0, 1) synthetic data, or a built-in set (data.load).")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Folder with the IDX gz files (mnist & co.), if needed.")
_N_SAMPLES = flags.DEFINE_integer("n_samples", 70_000,
                                  "Synthetic data: number of samples.")
_DIM = flags.DEFINE_integer("dim", 784, "Synthetic data: input width.")
_DIMS = flags.DEFINE_list("dims", ["500", "500", "2000", "10"],
                          "Autoencoder hidden widths, embedding width last.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256,
                                   "Minibatch size (pretraining and DEC).")
_UPDATE_INTERVAL = flags.DEFINE_integer(
    "update_interval", 140, "DEC minibatch steps between target updates.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", sorted(DTYPES),
                           "Compute dtype of the autoencoder and the matmul.")
_REPEATS = flags.DEFINE_integer("repeats", 3,
                                "Timed calls per piece after the first one.")
_EPOCHS_TIMED = flags.DEFINE_integer(
    "epochs_timed", None,
    "Timed pretraining epochs after the compile epoch (default: --repeats).")
_N_CLUSTERS = flags.DEFINE_integer("n_clusters", 10, "k of k-means and DEC.")
_N_INIT = flags.DEFINE_integer("n_init", 20, "k-means restarts.")
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 4096,
                                    "n of the [n, n] @ [n, n] peak matmul.")
_CHUNK_SIZE = flags.DEFINE_integer(
    "chunk_size", 8192, "Rows embedded at once on the full set.")
_SKLEARN = flags.DEFINE_bool("sklearn", True,
                             "Also time scikit-learn's k-means.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of data, init and k-means.")
_STACK_SIZES = flags.DEFINE_list(
    "stack_sizes", ["1", "5", "20"], "Members trained at once (stacked, "
    "as every run trains its seeds and grid points) in the stack "
    "benchmarks, each against as many separate single-model steps "
    "(pretraining and DEC); 0 skips them.")
_MEMBER_AXIS = flags.DEFINE_enum(
    "member_axis", "auto", ["auto", "vmap", "map"], "How the stack rows run "
    "their members: as the runner does on this backend (auto: "
    "member_axis.over_members), batched (vmap) or one by one (lax.map).")
_SEEDS_SAMPLES = flags.DEFINE_integer(
    "seeds_samples", 10240, "Samples per epoch in the stack benchmark.")
_CONV_SAMPLES = flags.DEFINE_integer(
    "conv_samples", 1024, "Conv AE pretraining epochs (DCEC's network, "
    "convs as matmuls vs XLA's) on this many samples; 0: skip. Small: XLA's "
    "convs run about 15x slower than the matmuls on a CPU.")
_OUT = flags.DEFINE_string("out", "bench.json", "Where to write the JSON.")

# jax.monitoring events whose durations add up to the compile cost of a call.
_COMPILE_EVENTS = ("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration",
                   "backend_compile_duration")


# ------------------------------------------------------------------ timing


class CompileClock:
  """Sums JAX's tracing, lowering and XLA compile durations as they happen."""

  def __init__(self):
    self.total_s = 0.0
    self.seen_events = False
    jax.monitoring.register_event_duration_secs_listener(self._listen)

  def _listen(self, event: str, duration: float, **kwargs) -> None:
    del kwargs
    if event.startswith("/jax/core/compile/") and event.endswith(
        _COMPILE_EVENTS):
      self.total_s += duration
      self.seen_events = True


@dataclasses.dataclass
class Timing:
  """Wall times of one piece: the first call, and the timed ones after it."""

  first_call_s: float
  compile_s: float
  times_s: list[float]

  @property
  def median_s(self) -> float:
    return statistics.median(self.times_s)

  def to_dict(self) -> dict[str, Any]:
    return {"first_call_s": self.first_call_s, "compile_s": self.compile_s,
            "median_s": self.median_s, "times_s": self.times_s}


def wall_time(fn: Callable[[], Any]) -> float:
  """Seconds for fn(), waiting for the device work it dispatched."""
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def measure(call: Callable[[int], Any], repeats: int,
            clock: CompileClock) -> Timing:
  """Times call(0) (compile + run), then call(1), ..., call(repeats).

  The compile time is what JAX reports for tracing, lowering and compiling
  during the first call; without those events (an older JAX), it is
  estimated as the first call minus the median of the others.
  """
  return measure_side_by_side([call], repeats, clock)[0]


def measure_side_by_side(calls: Sequence[Callable[[int], Any]], repeats: int,
                         clock: CompileClock) -> list[Timing]:
  """measure() of each call, their timed repeats alternating (a(1), b(1),
  a(2), b(2), ...) so that a machine whose speed drifts slows all alike (a
  single model's call beside a stack's)."""
  firsts, times = [], [[] for _ in calls]
  for call in calls:
    before = clock.total_s
    firsts.append((wall_time(lambda: call(0)), clock.total_s - before))
  for i in range(1, max(repeats, 1) + 1):
    for j, call in enumerate(calls):
      times[j].append(wall_time(functools.partial(call, i)))
  return [Timing(first, compile_s if clock.seen_events else max(
      first - statistics.median(t), 0.0), t)
          for (first, compile_s), t in zip(firsts, times)]


def peak_memory() -> dict[str, float]:
  """Process max RSS, and the device's peak bytes in use where it says."""
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  rss_bytes = rss if sys.platform == "darwin" else rss * 1024  # Linux: KiB
  out = {"max_rss_mib": rss_bytes / MIB}
  try:
    stats = jax.devices()[0].memory_stats() or {}
  except Exception:  # pylint: disable=broad-except
    stats = {}
  if "peak_bytes_in_use" in stats:
    out["device_peak_mib"] = stats["peak_bytes_in_use"] / MIB
  return out


# -------------------------------------------------------------- benchmarks


def matmul_params(params: Any) -> int:
  """Number of weights in the Dense kernels of a parameter pytree."""
  leaves = jax.tree_util.tree_leaves_with_path(params)
  return sum(int(leaf.size) for path, leaf in leaves
             if getattr(path[-1], "key", None) == "kernel")


def bench_matmul(n: int, dtype: Any, repeats: int, clock: CompileClock,
                 key: jax.Array) -> dict[str, Any]:
  """GFLOP/s of a jitted [n, n] @ [n, n] dot: the reference peak."""
  key_a, key_b = jax.random.split(key)
  a = jax.random.uniform(key_a, (n, n), jnp.float32).astype(dtype)
  b = jax.random.uniform(key_b, (n, n), jnp.float32).astype(dtype)
  dot = jax.jit(jnp.dot)
  timing = measure(lambda i: dot(a, b), repeats, clock)
  return {"size": n, "dtype": jnp.dtype(dtype).name,
          "gflops": 2.0 * n ** 3 / timing.median_s / 1e9, **timing.to_dict()}


def time_epochs(model: models.AnyAutoencoder, params: Any, x: jax.Array,
                batch_size: int, epochs: int, clock: CompileClock,
                key: jax.Array) -> tuple[Timing, Any, float]:
  """Times whole pretraining epochs with Adam, the state carried from epoch
  to epoch (each call donates it); returns the timing, the trained params
  and the last epoch's loss."""
  tx = optax.adam(1e-3)
  epoch_fn = pretrain.make_epoch_fn(model, tx, x.shape[0], batch_size)
  state = {"params": params, "opt": tx.init(params)}
  losses = []

  def one_epoch(i: int):
    nonlocal state
    state, loss = epoch_fn(state, x, jax.random.fold_in(key, i))
    losses.append(loss)
    return state, loss

  timing = measure(one_epoch, epochs, clock)
  return timing, state["params"], float(losses[-1])


def bench_pretrain(model: models.Autoencoder, params: Any, x: jax.Array,
                   batch_size: int, epochs: int, peak_gflops: float,
                   clock: CompileClock,
                   key: jax.Array) -> tuple[dict[str, Any], Any]:
  """Whole pretraining epochs with Adam; returns the metrics and the params.

  FLOPs per sample: 2 * (weights in matmuls) forward, x3 for forward and
  backward. An epoch runs ceil(N / batch) full batches.
  """
  timing, params, last_loss = time_epochs(model, params, x, batch_size,
                                          epochs, clock, key)
  samples = -(-x.shape[0] // batch_size) * batch_size
  flops = 3 * 2 * matmul_params(params) * samples
  gflops = flops / timing.median_s / 1e9
  return {"epoch_samples": samples, "matmul_params": matmul_params(params),
          "samples_per_s": samples / timing.median_s, "gflops": gflops,
          "pct_peak": 100.0 * gflops / peak_gflops,
          "last_loss": last_loss, **timing.to_dict()}, params


def bench_seeds(model: models.Autoencoder, x: jax.Array, batch_size: int,
                num_seeds: int, repeats: int, clock: CompileClock,
                key: jax.Array, batched: bool) -> dict[str, Any]:
  """Pretraining epochs of `num_seeds` models at once (parameters stacked,
  the epoch mapped over them by member_axis.over_members(batched=...) as
  `pretrain.pretrain` runs every stack) on x, against one model's plain
  epoch on the same x, timed alternately.

  Where the accelerator is not saturated by one model, the stacked program
  runs the seeds for less than their separate cost.
  """
  tx = optax.adam(1e-3)
  steps = -(-x.shape[0] // batch_size)
  epoch_fn = pretrain.make_epoch_fn(model, tx, x.shape[0], batch_size)
  one = jax.jit(epoch_fn, donate_argnums=0)
  many = jax.jit(member_axis.over_members(epoch_fn, (0, None, 0),
                                         batched=batched), donate_argnums=0)
  params = models.init_autoencoders(model, jax.random.split(key, num_seeds))
  first = jax.tree.map(lambda a: a[0], params)
  states = [{"params": first, "opt": tx.init(first)},
            optim.init_states(tx, params, {})]

  def one_epoch(i: int):
    states[0], loss = one(states[0], x, jax.random.fold_in(key, i))
    return loss

  def many_epochs(i: int):
    states[1], loss = many(states[1], x, jax.random.split(
        jax.random.fold_in(key, i), num_seeds))
    return loss

  single, timing = measure_side_by_side([one_epoch, many_epochs], repeats,
                                        clock)
  return _stack_row(num_seeds, timing, single, steps, batched,
                    n_samples=int(x.shape[0]))


def stack_batched() -> bool:
  """--member_axis as over_members' `batched` (auto: the runner's choice on
  this backend)."""
  if _MEMBER_AXIS.value == "auto":
    return member_axis.batched_by_default()
  return _MEMBER_AXIS.value == "vmap"


def _stack_row(num_seeds: int, timing: Timing, single: Timing, steps: int,
               batched: bool, **extra) -> dict[str, Any]:
  """A stack row: per-step times of the stack and of one model, their ratio
  to num_seeds separate steps, how the members ran, and both timings."""
  step_s, single_step_s = timing.median_s / steps, single.median_s / steps
  return {"num_seeds": num_seeds, **extra, "step_ms": 1e3 * step_s,
          "member_axis": "vmap" if batched else "lax.map",
          "single_step_ms": 1e3 * single_step_s,
          "ratio_to_separate": step_s / (num_seeds * single_step_s),
          "single": single.to_dict(), **timing.to_dict()}


def bench_conv_pretrain(x: jax.Array, image_shape: tuple[int, ...],
                        batch_size: int, repeats: int, clock: CompileClock,
                        key: jax.Array) -> dict[str, Any]:
  """Pretraining epochs of DCEC's conv AE, its convs computed both ways.

  `matmul` (the default, im2col patches @ kernel) and `xla` (XLA's
  convolutions) compute the same function from the same parameters
  (models.Conv2x); the ratio is the speed of the default inside the
  compiled epoch's scan.
  """
  out: dict[str, Any] = {"samples": int(x.shape[0]),
                         "image_shape": list(image_shape)}
  samples = -(-x.shape[0] // batch_size) * batch_size
  for name, as_matmul in (("matmul", True), ("xla", False)):
    model = models.ConvAutoencoder(image_shape, conv_as_matmul=as_matmul)
    timing, _, _ = time_epochs(model, models.init_autoencoder(model, key), x,
                               batch_size, repeats, clock, key)
    out[name] = {"samples_per_s": samples / timing.median_s,
                 **timing.to_dict()}
  out["speedup"] = (out["matmul"]["samples_per_s"]
                    / out["xla"]["samples_per_s"])
  return out


def image_shape_of(dataset: str, dim: int,
                   data_dir: Optional[str]) -> tuple[int, ...]:
  """The images' shape: the data set's, or square for synthetic rows."""
  if dataset != "synthetic":
    shape = data.load(dataset, data_dir=data_dir).image_shape
    if shape:
      return tuple(shape)
  side = math.isqrt(dim)
  if side * side != dim or side < 4:
    raise DecJaxError(f"The conv benchmark needs square images; inputs of "
                      f"width {dim} are not (use --conv_samples=0).")
  return (side, side)


def bench_embed(encoder: models.MLP, encoder_params: Any, x: jax.Array,
                chunk_size: int, repeats: int,
                clock: CompileClock) -> tuple[dict[str, Any], jax.Array]:
  """The full-set embedding [N, d], jitted; returns the metrics and z."""
  embed = jax.jit(functools.partial(dec_loop.embed, encoder,
                                    chunk_size=chunk_size))
  timing = measure(lambda i: embed(encoder_params, x), repeats, clock)
  z = embed(encoder_params, x)
  return {"samples_per_s": x.shape[0] / timing.median_s,
          **timing.to_dict()}, z


def bench_kmeans(
    z: jax.Array, k: int, n_init: int, seed: int, repeats: int,
    with_sklearn: bool,
    clock: CompileClock) -> tuple[dict[str, Any], kmeans.KMeansResult]:
  """`fit_kmeans` with the JAX backend, and with scikit-learn's, on z.

  Returns the metrics and the JAX backend's result (DEC's initialisation).
  """
  out, fits = {"n_init": n_init}, {}
  backends = kmeans.BACKENDS if with_sklearn else ("jax",)
  for backend in backends:
    inputs = z if backend == "jax" else np.asarray(z)
    results = []

    def fit(i: int, inputs=inputs, backend=backend, results=results):
      del i
      results.append(kmeans.fit_kmeans(inputs, k, seed=seed, n_init=n_init,
                                       backend=backend))
      return results[-1]

    timing = measure(fit, repeats, clock)
    fits[backend] = results[-1]
    if backend == "sklearn":  # nothing of it is compiled by JAX
      timing.compile_s = 0.0
    out[backend] = {"inertia": float(results[-1].inertia),
                    "n_iter": int(results[-1].n_iter), **timing.to_dict()}
  if with_sklearn:
    out["inertia_ratio_jax_over_sklearn"] = (
        out["jax"]["inertia"] / out["sklearn"]["inertia"])
  return out, fits["jax"]


def bench_dec(encoder: models.MLP, encoder_params: Any, centres: jax.Array,
              labels: jax.Array, x: jax.Array, batch_size: int,
              update_interval: int, chunk_size: int, repeats: int,
              peak_gflops: float, clock: CompileClock,
              key: jax.Array) -> dict[str, Any]:
  """DEC's target update and train interval (SGD 0.01, momentum 0.9).

  Donates `encoder_params`: call this last.
  """
  n = x.shape[0]
  flops = 3 * 2 * matmul_params(encoder_params) * batch_size * update_interval
  cfg = dec_loop.DECConfig(batch_size=batch_size,
                          update_interval=update_interval,
                          chunk_size=chunk_size)
  tx = optax.sgd(0.01, momentum=0.9)
  target_update, train_interval = dec_loop.make_dec_fns(encoder, tx, n, cfg)
  params = {"encoder": encoder_params, "centres": jnp.asarray(centres)}
  state = {"params": params, "opt": tx.init(params)}
  outputs = []

  def update(i: int):
    del i
    outputs.append(target_update(state["params"], x, labels))
    return outputs[-1]

  update_timing = measure(update, repeats, clock)
  p = outputs[-1]["p"]

  def interval(i: int):
    nonlocal state
    state, loss = train_interval(state, x, p, jax.random.fold_in(key, i),
                                 update_interval)
    return state, loss

  interval_timing = measure(interval, repeats, clock)
  interval_s, update_s = interval_timing.median_s, update_timing.median_s
  gflops = flops / interval_s / 1e9
  return {
      "update_interval": update_interval,
      "train_interval": {"steps_per_s": update_interval / interval_s,
                         "gflops": gflops,
                         "pct_peak": 100.0 * gflops / peak_gflops,
                         **interval_timing.to_dict()},
      "target_update": update_timing.to_dict(),
      "effective_it_per_s": update_interval / (interval_s + update_s),
  }


def bench_dec_seeds(encoder: models.MLP, encoder_params: Any,
                    centres: jax.Array, z: jax.Array, x: jax.Array,
                    batch_size: int, update_interval: int, num_seeds: int,
                    repeats: int, clock: CompileClock, key: jax.Array,
                    batched: bool) -> dict[str, Any]:
  """DEC train intervals of `num_seeds` states at once (stacked, mapped as
  `dec_loop.run_dec` maps every stack), against one state's plain interval,
  timed alternately."""
  cfg = dec_loop.DECConfig(batch_size=batch_size,
                          update_interval=update_interval)
  tx = optax.sgd(0.01, momentum=0.9)
  _, train_interval = dec_loop.make_dec_fns(encoder, tx, x.shape[0], cfg)
  many = jax.jit(member_axis.over_members(
      train_interval, (0, None, 0, 0, None), batched=batched),
                 donate_argnums=0)
  params = {"encoder": encoder_params, "centres": jnp.asarray(centres)}
  stack = lambda a: jnp.stack([a] * num_seeds)
  states = [{"params": p, "opt": tx.init(p)} for p in (
      jax.tree.map(jnp.copy, params), jax.tree.map(stack, params))]
  p = clustering.target_distribution(clustering.soft_assign(z, centres))
  stacked_p = stack(p)  # built once, outside the timed calls

  def one(i: int):
    states[0], loss = train_interval(states[0], x, p,
                                     jax.random.fold_in(key, i),
                                     update_interval)
    return loss

  def intervals(i: int):
    keys = jax.random.split(jax.random.fold_in(key, i), num_seeds)
    states[1], loss = many(states[1], x, stacked_p, keys, update_interval)
    return loss

  single, timing = measure_side_by_side([one, intervals], repeats, clock)
  return _stack_row(num_seeds, timing, single, update_interval, batched)


# ------------------------------------------------------------------ report


def table_rows(r: dict[str, Any]) -> list[tuple[str, str, float, str]]:
  """(phase, metric, value, unit) rows of the printed summary."""
  mm, pt, em, km, dec = (r["matmul"], r["pretrain"], r["embed"], r["kmeans"],
                         r["dec"])
  ti, tu = dec["train_interval"], dec["target_update"]
  rows = [
      ("matmul", f"{mm['size']}^2 {mm['dtype']} dot", mm["gflops"], "GFLOP/s"),
      ("matmul", "compile", mm["compile_s"], "s"),
      ("pretrain", "epoch (median)", pt["median_s"], "s"),
      ("pretrain", "throughput", pt["samples_per_s"], "samples/s"),
      ("pretrain", "compute", pt["gflops"], "GFLOP/s"),
      ("pretrain", "of matmul peak", pt["pct_peak"], "%"),
      ("pretrain", "compile", pt["compile_s"], "s"),
      ("embed", "full set (median)", em["median_s"], "s"),
      ("embed", "compile", em["compile_s"], "s"),
      ("kmeans", "jax steady (median)", km["jax"]["median_s"], "s"),
      ("kmeans", "jax compile", km["jax"]["compile_s"], "s"),
      ("kmeans", "jax inertia", km["jax"]["inertia"], ""),
  ]
  if "sklearn" in km:
    rows += [
        ("kmeans", "sklearn (median)", km["sklearn"]["median_s"], "s"),
        ("kmeans", "sklearn inertia", km["sklearn"]["inertia"], ""),
        ("kmeans", "inertia jax/sklearn",
         km["inertia_ratio_jax_over_sklearn"], ""),
    ]
  if "conv_pretrain" in r:
    cv = r["conv_pretrain"]
    rows += [
        ("conv", "pretrain, convs as matmul", cv["matmul"]["samples_per_s"],
         "samples/s"),
        ("conv", "pretrain, XLA convs", cv["xla"]["samples_per_s"],
         "samples/s"),
        ("conv", "matmul / XLA", cv["speedup"], "x"),
    ]
  for stage, by_size in r.get("stack", {}).items():
    for size, sd in by_size.items():
      rows += [
          ("stack", f"{stage} S={size}: 1 model step", sd["single_step_ms"],
           "ms"),
          ("stack", f"{stage} S={size}: step", sd["step_ms"], "ms"),
          ("stack", f"{stage} S={size} vs {size} separate",
           sd["ratio_to_separate"], "x"),
      ]
  rows += [
      ("dec", "train_interval steps", ti["steps_per_s"], "steps/s"),
      ("dec", "train_interval compute", ti["gflops"], "GFLOP/s"),
      ("dec", "train_interval of peak", ti["pct_peak"], "%"),
      ("dec", "train_interval compile", ti["compile_s"], "s"),
      ("dec", "target_update (median)", tu["median_s"], "s"),
      ("dec", "target_update compile", tu["compile_s"], "s"),
      ("dec", "effective iterations", dec["effective_it_per_s"], "it/s"),
  ]
  for name, value in r["memory"]["final"].items():
    rows.append(("memory", name.removesuffix("_mib"), value, "MiB"))
  return rows


def format_table(rows: Sequence[tuple[str, str, float, str]]) -> str:
  """Aligned text table, values with 4 significant digits."""
  lines = [f"{'phase':<10}{'metric':<28}{'value':>14}  unit", "-" * 62]
  lines += [f"{phase:<10}{metric:<28}{value:>14.4g}  {unit}"
            for phase, metric, value, unit in rows]
  return "\n".join(lines)


# -------------------------------------------------------------------- main


def load_inputs(dataset: str, n_samples: int, dim: int,
                data_dir: Optional[str], key: jax.Array) -> jax.Array:
  """x [N, D] float32 on the device: synthetic uniform, or a built-in set."""
  if dataset == "synthetic":
    if n_samples < 2 or dim < 1:
      raise DecJaxError(f"Need n_samples >= 2 and dim >= 1, got {n_samples} "
                        f"and {dim}.")
    return jax.random.uniform(key, (n_samples, dim), jnp.float32)
  return jnp.asarray(data.load(dataset, data_dir=data_dir).x)


def parse_dims(values: Sequence[str]) -> tuple[int, ...]:
  """--dims as positive ints."""
  try:
    dims = tuple(int(v) for v in values)
  except ValueError:
    raise DecJaxError(f"--dims must be integers, got {values}.") from None
  if not dims or min(dims) <= 0:
    raise DecJaxError(f"--dims must be positive widths, got {dims}.")
  return dims


def stack_sizes() -> list[int]:
  """--stack_sizes as integers >= 0, or a DecJaxError naming the value."""
  try:
    sizes = [int(s) for s in _STACK_SIZES.value]
  except ValueError:
    raise DecJaxError(f"--stack_sizes must be integers, got "
                      f"{','.join(_STACK_SIZES.value)}.") from None
  if any(s < 0 for s in sizes):
    raise DecJaxError(f"--stack_sizes must be >= 0, got {sizes}.")
  return sizes


def check_sizes(n: int, batch_size: int, k: int, repeats: int,
                update_interval: int) -> None:
  """Rejects sizes the pieces cannot run with."""
  if not 0 < batch_size <= n:
    raise DecJaxError(f"batch_size must be in [1, {n}], got {batch_size}.")
  if not 2 <= k <= n:
    raise DecJaxError(f"n_clusters must be in [2, {n}], got {k}.")
  if repeats < 1 or update_interval < 1:
    raise DecJaxError("repeats and update_interval must be positive.")


def setup(key: jax.Array, repeats: int
          ) -> tuple[jax.Array, tuple, Optional[tuple], dict]:
  """The benchmark's inputs x on the device, the autoencoder dims, the conv
  rows' image shape (checked before anything is timed) and the results'
  environment and setup records."""
  x = jax.block_until_ready(load_inputs(
      _DATASET.value, _N_SAMPLES.value, _DIM.value, _DATA_DIR.value,
      jax.random.fold_in(key, 0)))
  n, dim = x.shape
  check_sizes(n, _BATCH_SIZE.value, _N_CLUSTERS.value, repeats,
              _UPDATE_INTERVAL.value)
  stack_sizes()  # said now, not after the first benchmarks
  dims = (dim,) + parse_dims(_DIMS.value)
  image_shape = (image_shape_of(_DATASET.value, dim, _DATA_DIR.value)
                 if _CONV_SAMPLES.value else None)
  record = {"environment": environment(),
            "setup": {"dataset": _DATASET.value, "n_samples": n,
                      "dims": list(dims), "dtype": _DTYPE.value,
                      "batch_size": _BATCH_SIZE.value, "repeats": repeats,
                      "n_clusters": _N_CLUSTERS.value}}
  return x, dims, image_shape, record


def run_benchmarks() -> dict[str, Any]:
  """Runs every piece in pipeline order; returns the results."""
  clock = CompileClock()
  key = jax.random.key(_SEED.value)
  dtype = DTYPES[_DTYPE.value]
  repeats = _REPEATS.value
  x, dims, image_shape, r = setup(key, repeats)
  model = models.Autoencoder(dims, dtype=dtype)
  encoder = models.encoder_module(model)
  memory = {"data": peak_memory()}
  r["matmul"] = bench_matmul(_MATMUL_SIZE.value, dtype, repeats, clock,
                             jax.random.fold_in(key, 1))
  memory["matmul"] = peak_memory()
  peak = r["matmul"]["gflops"]

  params = models.init_autoencoder(model, jax.random.fold_in(key, 2))
  r["pretrain"], params = bench_pretrain(
      model, params, x, _BATCH_SIZE.value, _EPOCHS_TIMED.value or repeats,
      peak, clock, jax.random.fold_in(key, 3))
  memory["pretrain"] = peak_memory()
  sizes = [s for s in stack_sizes() if s >= 1]
  stack = {"pretrain": {}, "dec": {}}
  for size in sizes:
    stack["pretrain"][size] = bench_seeds(
        model, x[:_SEEDS_SAMPLES.value], _BATCH_SIZE.value, size, repeats,
        clock, jax.random.fold_in(key, 5), stack_batched())
  memory["stack_pretrain"] = peak_memory()

  if _CONV_SAMPLES.value:
    r["conv_pretrain"] = bench_conv_pretrain(
        x[:_CONV_SAMPLES.value], image_shape,
        min(_BATCH_SIZE.value, x.shape[0]), repeats, clock,
        jax.random.fold_in(key, 7))
    memory["conv_pretrain"] = peak_memory()

  r["embed"], z = bench_embed(encoder, params["encoder"], x,
                              _CHUNK_SIZE.value, repeats, clock)
  r["kmeans"], init = bench_kmeans(z, _N_CLUSTERS.value, _N_INIT.value,
                                   _SEED.value, repeats, _SKLEARN.value, clock)
  memory["kmeans"] = peak_memory()

  # copies: bench_dec donates its params and centres
  encoder_params, centres = jax.tree.map(jnp.copy, (params["encoder"],
                                                    init.centres))
  r["dec"] = bench_dec(encoder, params["encoder"], init.centres, init.labels,
                       x, _BATCH_SIZE.value, _UPDATE_INTERVAL.value,
                       _CHUNK_SIZE.value, repeats, peak, clock,
                       jax.random.fold_in(key, 4))
  memory["dec"] = peak_memory()
  for size in sizes:
    stack["dec"][size] = bench_dec_seeds(
        encoder, encoder_params, centres, z, x, _BATCH_SIZE.value,
        _UPDATE_INTERVAL.value, size, repeats, clock,
        jax.random.fold_in(key, 6), stack_batched())
  memory["stack_dec"] = peak_memory()
  if sizes:
    r["stack"] = stack
  r["memory"] = {**memory, "final": peak_memory()}
  return r


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    folder = os.path.dirname(os.path.abspath(_OUT.value))
    if not os.path.isdir(folder):  # said now, not after the benchmarks
      raise DecJaxError(f"the folder of --out {_OUT.value!r} does not exist.")
    results = run_benchmarks()
  except DecJaxError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  env, setup = results["environment"], results["setup"]
  print(f"{env['backend']} ({env['device_kind']}), {setup['dataset']} "
        f"n={setup['n_samples']} dims={setup['dims']} {setup['dtype']} "
        f"batch={setup['batch_size']}")
  print(format_table(table_rows(results)))
  write_json_atomic(_OUT.value, results)
  print(f"-> {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
