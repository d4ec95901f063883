"""Times K-fold training of the residual MLP, all folds vmapped and one by one.

  python experiments/bench_cv.py                    # NSL-KDD KDDTrain+
  python experiments/bench_cv.py --rows 100000      # generated rows
  python experiments/bench_cv.py --sizes 25000,50000,100000,200000,400000
  python experiments/bench_cv.py --breakdown        # where the epoch goes

Every fold trains for the same fixed number of epochs (no warm-up, no early
stopping) through netclf's own path: `preprocessing.fit_schema` and
`encode`, `cross_validation.split_folds`, `make_plan` and `train_folds`.
The result is one JSON object on stdout; progress goes to stderr. The
fields are described in experiments/README.md.
"""

import argparse
import contextlib
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import time
from importlib import metadata

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netclf import xla_flags  # noqa: E402

# Before JAX creates its backend, so that the run measures netclf's CPU
# defaults (NETCLF_XLA_DEFAULTS=0 measures XLA's own).
xla_flags.configure()

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from netclf import cross_validation as cv  # noqa: E402
from netclf import losses  # noqa: E402
from netclf import models  # noqa: E402
from netclf import preprocessing  # noqa: E402
from netclf import readers  # noqa: E402
from netclf import synthetic  # noqa: E402
from netclf import train as train_lib  # noqa: E402

DEFAULT_DATA_DIR = os.environ.get(
  'NETCLF_NSL_KDD_DIR', str(REPO.parent / 'shared' / 'data' / 'nsl-kdd')
)
# Targets for this network on a 2-core CPU, NSL-KDD and 5 folds.
GOALS = {
  'efficiency': 0.5,  # at least
  'epoch_s_per_fold': 0.7,  # below
  'speedup': 1.0,  # at least
  'rss_ratio': 1.5,  # at most
}


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--folds', type=int, default=5)
  p.add_argument('--epochs', type=int, default=3)
  p.add_argument('--batch_size', type=int, default=256)
  p.add_argument('--widths', default='256,256,128')
  p.add_argument('--dropouts', default='0.4,0.3,0.2')
  p.add_argument('--input_dropout', type=float, default=0.7)
  p.add_argument(
    '--rows', type=int, default=0, help='generated training rows; 0: NSL-KDD'
  )
  p.add_argument('--data_dir', default=DEFAULT_DATA_DIR)
  p.add_argument(
    '--sizes', default='', help='comma list of generated row counts'
  )
  p.add_argument('--repeats', type=int, default=1, help='timed runs per mode')
  p.add_argument(
    '--breakdown',
    action='store_true',
    help='time the vmapped epoch without dropout and without batch norm',
  )
  p.add_argument('--skip_sequential', action='store_true')
  p.add_argument('--skip_memory', action='store_true')
  p.add_argument(
    '--memory_epochs',
    type=int,
    default=1,
    help='epochs in the peak-memory children',
  )
  # Internal: run as a peak-memory child that trains the first K folds.
  p.add_argument('--memory_child', type=int, default=0, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  args.widths = tuple(int(w) for w in args.widths.split(','))
  args.dropouts = tuple(float(r) for r in args.dropouts.split(','))
  if len(args.widths) != len(args.dropouts):
    p.error('--widths and --dropouts need the same number of entries')
  return args


def log(message):
  print(f'[bench_cv] {message}', file=sys.stderr, flush=True)


def load_rows(args, rows=None):
  """Returns `(name, numeric, codes, labels, schema)` of the training rows."""
  rows = args.rows if rows is None else rows
  if rows:
    dataset = synthetic.make_dataset(rows, 10, seed=0)[0]
  else:
    dataset = readers.read_nsl_kdd(pathlib.Path(args.data_dir, 'KDDTrain+.txt'))
  schema = preprocessing.fit_schema(dataset.features, dataset.categorical)
  numeric, codes = preprocessing.encode(schema, dataset.features)
  labels = np.asarray(dataset.labels, np.int32)
  return dataset.name, numeric, codes, labels, schema


def flops_per_row(num_features, widths):
  """Floating-point operations of the dense layers per training row.

  A dense layer from `a` to `b` units costs 2ab forward. Backward, the
  weight gradient costs as much again and so does the gradient of its
  input, except in the layers that read the model input (the first block
  and its skip projection), whose input gradient is never formed.
  Elementwise work (batch norm, ReLU, dropout, loss, Adam) is left out.
  """
  forward, first, width_in = 0, 0, num_features
  for i, width in enumerate(widths):
    layer = 2 * width_in * width
    if width_in != width:
      layer *= 2  # the skip path's projection has the same shape
    forward += layer
    if i == 0:
      first = layer
    width_in = width
  forward += 2 * width_in  # the one-logit head
  return 3 * forward - first


def peak_gflops(n=2048, tries=5):
  """Best rate of an `n`-square float32 matmul, after warming up."""
  a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  for _ in range(2):
    matmul(a, b).block_until_ready()
  best = float('inf')
  for _ in range(tries):
    t0 = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best / 1e9


class Bench:
  """One data set's folds and plan, trained in either fold mode."""

  def __init__(self, args, numeric, codes, labels, schema, num_folds=None):
    self.args = args
    self.settings = cv.TrainSettings(
      epochs=args.epochs,
      batch_size=args.batch_size,
      warmup_epochs=0,
      early_stopping=False,
    )
    splits = cv.split_folds(labels, args.folds)
    splits = splits[: num_folds or args.folds]
    self.plan = cv.make_plan(
      (schema, numeric, codes), labels, splits, self.settings
    )
    self.data = train_lib.DeviceData(
      numeric=jnp.asarray(numeric),
      codes=jnp.asarray(codes),
      labels=jnp.asarray(labels, jnp.float32),
    )
    self.model = self.make_model()
    self.num_features = schema.num_features

  def make_model(self, **changes):
    """The benchmarked network, with `changes` to its attributes."""
    settings = dict(
      widths=self.args.widths,
      dropouts=self.args.dropouts,
      input_dropout=self.args.input_dropout,
    )
    return models.ResidualMLP(**{**settings, **changes})

  @property
  def train_rows(self):
    """Rows one fold trains on per epoch, padding included."""
    return int(self.plan.train_index.shape[1])

  def run(self, mode):
    result = cv.train_folds(
      self.model,
      optax.adam(1e-3),
      losses.Loss('focal', alpha=0.25, gamma=2.0),
      self.data,
      self.plan,
      jax.random.key(0),
      self.settings,
      mode=mode,
    )
    if not np.all(np.isfinite(result.best_val_loss)):
      raise cv.TrainingError(f'{mode}: validation loss is not finite')
    return result.compile_s, result.train_s


def memory_child(args):
  """Trains the first `--memory_child` folds vmapped; prints peak RSS."""
  _, numeric, codes, labels, schema = load_rows(args)
  args.epochs = args.memory_epochs
  bench = Bench(args, numeric, codes, labels, schema, args.memory_child)
  before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  bench.run('vmap')
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(
    json.dumps(
      {
        'peak_rss_mb': peak,
        'rss_mb_before_training': before,
        'vm_hwm_mb': vm_hwm_mb(),
      }
    )
  )


def vm_hwm_mb():
  """This process's own peak RSS from /proc (Linux), or None."""
  try:
    for line in pathlib.Path('/proc/self/status').read_text().splitlines():
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  except OSError:
    pass
  return None


def measure_memory(args, folds):
  """Peak RSS (MiB) of a fresh process that trains `folds` folds.

  Linux carries the spawning process's high-water mark over `exec` into
  the child's `ru_maxrss`, so children are started while this process is
  still small; `vm_hwm_mb` (the child's own mark) is reported beside it.
  """
  command = [sys.executable, __file__, *sys.argv[1:]]
  command += ['--memory_child', str(folds)]
  log(f'peak-memory child with {folds} fold(s)')
  done = subprocess.run(
    command, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO
  )
  return json.loads(done.stdout.strip().splitlines()[-1])


def environment():
  versions = {'python': platform.python_version()}
  for name in ('jax', 'jaxlib', 'flax', 'optax', 'numpy'):
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return {
    'devices': [f'{d.platform}:{d.id}' for d in jax.devices()],
    'cpu_count': os.cpu_count(),
    'xla_flags': os.environ.get('XLA_FLAGS', ''),
    'versions': versions,
  }


def median(values):
  return statistics.median(values) if values else None


def benchmark(args):
  """Times vmapped and sequential training on one data set."""
  load_avg = os.getloadavg()
  memory = {}
  if not args.skip_memory:
    # First, before this process holds data or compiled programs.
    memory = {k: measure_memory(args, k) for k in (1, args.folds)}
  name, numeric, codes, labels, schema = load_rows(args)
  bench = Bench(args, numeric, codes, labels, schema)
  log(
    f'{name}: {len(labels)} rows, {bench.num_features} features, '
    f'{args.folds} folds of {bench.train_rows} training rows'
  )
  modes = ['vmap'] + ([] if args.skip_sequential else ['sequential'])
  times = {mode: {'compile': [], 'train': []} for mode in modes}
  # On a shared machine the modes alternate, so that a busy spell does not
  # land on one mode only, and the matmul peak is sampled between runs:
  # its best is what the machine can do, its spread how busy it was.
  peaks = [peak_gflops()]
  for repeat in range(args.repeats):
    for mode in modes:
      compile_s, train_s = bench.run(mode)
      peaks.append(peak_gflops())
      times[mode]['compile'].append(compile_s)
      times[mode]['train'].append(train_s)
      log(
        f'{mode} run {repeat + 1}: compile {compile_s:.1f} s, '
        f'train {train_s:.1f} s'
      )
  vmapped_s = median(times['vmap']['train'])
  sequential_s = median(times.get('sequential', {}).get('train'))
  rows = args.folds * args.epochs * bench.train_rows
  per_row = flops_per_row(bench.num_features, args.widths)
  gflops = per_row * rows / vmapped_s / 1e9
  peak = max(peaks)
  out = {
    'data': name,
    'rows': int(len(labels)),
    'features': bench.num_features,
    'folds': args.folds,
    'train_rows_per_fold': bench.train_rows,
    'epochs': args.epochs,
    'batch_size': args.batch_size,
    'widths': list(args.widths),
    'repeats': args.repeats,
    'compile_s': median(times['vmap']['compile']),
    'vmapped_s': vmapped_s,
    'sequential_s': sequential_s,
    'speedup': sequential_s / vmapped_s if sequential_s else None,
    'epoch_s_per_fold': vmapped_s / (args.epochs * args.folds),
    'rows_per_s': rows / vmapped_s,
    'flops_per_row': per_row,
    'gflops': gflops,
    'peak_gflops': peak,
    'efficiency': gflops / peak,
    # An epoch of one fold if nothing but its matmuls ran, at the best rate.
    'matmul_floor_s_per_fold': per_row * bench.train_rows / peak / 1e9,
    'peak_gflops_samples': peaks,
    'all_runs': times,
  }
  if memory:
    k1, k5 = memory[1], memory[args.folds]
    out.update(
      peak_rss_mb_k1=k1['peak_rss_mb'],
      peak_rss_mb_k5=k5['peak_rss_mb'],
      rss_ratio=k5['peak_rss_mb'] / k1['peak_rss_mb'],
      rss_mb_before_training_k1=k1['rss_mb_before_training'],
      rss_mb_before_training_k5=k5['rss_mb_before_training'],
      vm_hwm_mb_k1=k1['vm_hwm_mb'],
      vm_hwm_mb_k5=k5['vm_hwm_mb'],
    )
  out['goals'] = check_goals(out)
  out['load_avg_start_end'] = [load_avg[0], os.getloadavg()[0]]
  out.update(environment())
  return out


def check_goals(out):
  """Each target with the measured value and whether it is met."""
  checks = {
    'efficiency': lambda v, g: v >= g,
    'epoch_s_per_fold': lambda v, g: v < g,
    'speedup': lambda v, g: v >= g,
    'rss_ratio': lambda v, g: v <= g,
  }
  goals = {}
  for key, goal in GOALS.items():
    value = out.get(key)
    if value is not None:
      goals[key] = {
        'value': value,
        'goal': goal,
        'met': checks[key](value, goal),
      }
  if 'epoch_s_per_fold' in goals:
    # The counted flops at the best matmul rate seen: no float32 epoch of
    # this network that does them all can be faster.
    floor = out['matmul_floor_s_per_fold']
    goals['epoch_s_per_fold'].update(
      floor=floor, reachable=floor < GOALS['epoch_s_per_fold']
    )
  return goals


def sweep_sizes(args, sizes):
  """Seconds per vmapped epoch on generated data of each size."""
  load_avg = os.getloadavg()[0]
  table = []
  for size in sizes:
    _, numeric, codes, labels, schema = load_rows(args, size)
    bench = Bench(args, numeric, codes, labels, schema)
    compile_s, train_s = bench.run('vmap')
    epoch_s = train_s / args.epochs
    table.append(
      {
        'rows': size,
        'train_rows_per_fold': bench.train_rows,
        'compile_s': compile_s,
        'epoch_s': epoch_s,
        'epoch_s_per_fold': epoch_s / args.folds,
        'us_per_row': 1e6 * epoch_s / (args.folds * bench.train_rows),
      }
    )
    log(f'{size} rows: {epoch_s:.2f} s per epoch (compile {compile_s:.1f} s)')
  for r in table:
    r['us_per_row_vs_smallest'] = r['us_per_row'] / table[0]['us_per_row']
  # Linear in rows means a flat cost per row; the fit shows the fixed part.
  x = np.array([r['train_rows_per_fold'] for r in table], np.float64)
  y = np.array([r['epoch_s'] for r in table])
  slope, intercept = np.polyfit(x, y, 1) if len(x) > 1 else (y[0] / x[0], 0)
  residual = np.abs(y - (slope * x + intercept)) / y
  return {
    'folds': args.folds,
    'epochs': args.epochs,
    'batch_size': args.batch_size,
    'widths': list(args.widths),
    'sizes': table,
    'linear_fit': {
      'epoch_s_per_100k_rows_per_fold': float(slope * 1e5),
      'intercept_s': float(intercept),
      'max_rel_residual': float(np.max(residual)),
    },
    'load_avg_start_end': [load_avg, os.getloadavg()[0]],
    **environment(),
  }


class WordDropout(nn.Module):
  """`flax.linen.Dropout`, one 32-bit random word per unit, in place of
  netclf's byte-per-unit `models.Dropout`, to time what that saves."""

  rate: float

  @nn.compact
  def __call__(self, x, *, deterministic):
    return nn.Dropout(self.rate, deterministic=deterministic)(x)


@contextlib.contextmanager
def dropout_module(module):
  """Builds the network's dropout layers from `module` while open."""
  saved = models.Dropout
  models.Dropout = module
  try:
    yield
  finally:
    models.Dropout = saved


def breakdown(args):
  """Times the vmapped epoch with parts of the network's work removed.

  The network's matmuls stay; dropout (its random bits and masks) and batch
  norm are taken out in turn, so that the time they cost shows as the
  difference, and dropout is also run as `flax.linen.Dropout`, which draws
  four times the random bits. `matmul_floor_s` is the time the dense layers
  would take at the machine's best matmul rate. Variants alternate across
  repeats.
  """
  load_avg = os.getloadavg()[0]
  name, numeric, codes, labels, schema = load_rows(args)
  bench = Bench(args, numeric, codes, labels, schema)
  no_dropout = dict(input_dropout=0.0, dropouts=(0.0,) * len(args.widths))
  variants = {
    'as configured': ({}, models.Dropout),
    'flax dropout, a word per unit': ({}, WordDropout),
    'no dropout': (no_dropout, models.Dropout),
    'no batch norm': (dict(batch_norm=False), models.Dropout),
    'no dropout, no batch norm': (
      dict(no_dropout, batch_norm=False),
      models.Dropout,
    ),
  }
  times = {label: [] for label in variants}
  peaks = [peak_gflops()]
  for repeat in range(args.repeats):
    for label, (changes, dropout) in variants.items():
      bench.model = bench.make_model(**changes)
      with dropout_module(dropout):
        _, train_s = bench.run('vmap')
      times[label].append(train_s)
      peaks.append(peak_gflops())
      log(f'{label}, run {repeat + 1}: train {train_s:.1f} s')
  rows = args.folds * args.epochs * bench.train_rows
  flops = flops_per_row(bench.num_features, args.widths) * rows
  base = median(times['as configured'])
  return {
    'data': name,
    'folds': args.folds,
    'epochs': args.epochs,
    'batch_size': args.batch_size,
    'train_s': {label: median(t) for label, t in times.items()},
    'share_of_configured': {
      label: median(t) / base for label, t in times.items()
    },
    'matmul_floor_s': flops / max(peaks) / 1e9,
    'peak_gflops': max(peaks),
    'all_runs': times,
    'load_avg_start_end': [load_avg, os.getloadavg()[0]],
    **environment(),
  }


def main(argv=None):
  args = parse_args(argv)
  if args.memory_child:
    memory_child(args)
    return
  if args.breakdown:
    out = breakdown(args)
  elif args.sizes:
    out = sweep_sizes(args, [int(s) for s in args.sizes.split(',')])
  else:
    out = benchmark(args)
  print(json.dumps(out, indent=2))


if __name__ == '__main__':
  main()
