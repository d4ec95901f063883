"""Benchmark: how fast a checkpoint scores raw rows, CSV parsing included.

  python experiments/bench_predict.py --checkpoint runs/nsl_kdd/checkpoint

Writes a file of raw NSL-KDD rows (KDDTest+ repeated up to `--rows`), then
times `netclf.predict.score_file` on it (read, preprocess, score, write),
its stages one after another, and the latency of scoring one row through
`Classifier.predict_proba`. Prints one JSON object. With no `--checkpoint`,
a small model is trained first on KDDTrain+_20Percent (about a minute).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from netclf import xla_flags  # noqa: E402

# Before JAX creates its backend, as `python -m netclf.predict` does
# (NETCLF_XLA_DEFAULTS=0 measures XLA's own defaults).
xla_flags.configure()

from netclf import checkpoints  # noqa: E402
from netclf import predict  # noqa: E402
from netclf import readers  # noqa: E402

DEFAULT_DATA = os.environ.get(
  'NETCLF_NSL_KDD_DIR', str(REPO_ROOT.parent / 'shared' / 'data' / 'nsl-kdd')
)


def _train_small(workdir, data_dir):
  subprocess.run(
    [
      sys.executable,
      '-m',
      'netclf.main',
      '--config=configs/nsl_kdd.py',
      f'--workdir={workdir}',
      f'--config.data.dir={data_dir}',
      '--config.data.train=KDDTrain+_20Percent.txt',
      '--config.train.epochs=2',
      '--config.train.warmup_epochs=1',
      '--config.checkpoint_every=0',
    ],
    cwd=REPO_ROOT,
    check=True,
    capture_output=True,
  )
  return pathlib.Path(workdir) / 'checkpoint'


def _raw_rows(data_dir, rows, path):
  lines = (pathlib.Path(data_dir) / 'KDDTest+.txt').read_text().splitlines()
  with open(path, 'w') as f:
    for i in range(rows):
      f.write(lines[i % len(lines)] + '\n')


def _stage_seconds(clf, raw, out, chunk_rows):
  """Wall and CPU seconds of each stage of `score_file`, run in turn.

  `score_file` parses and encodes the next chunk on a second thread while
  it scores this one; here nothing overlaps, so each stage is timed alone.
  CPU seconds count every thread of the process (XLA runs the forward pass
  on several).
  """
  stages = ('parse', 'encode', 'forward', 'write')
  wall, cpu = dict.fromkeys(stages, 0.0), dict.fromkeys(stages, 0.0)
  clocks = lambda: (time.perf_counter(), time.process_time())
  last = clocks()

  def lap(stage):
    nonlocal last
    now = clocks()
    wall[stage] += now[0] - last[0]
    cpu[stage] += now[1] - last[1]
    last = now

  chunks, _, _ = predict.read_chunks(clf, raw, chunk_rows=chunk_rows)
  rows = 0
  with open(out, 'w') as f:
    for ds in chunks:
      lap('parse')
      numeric, codes = clf.encode(ds.features, source=ds.name)
      lap('encode')
      probs = clf.predict_encoded(numeric, codes)
      lap('forward')
      flagged = (probs >= clf.threshold).astype(np.int32)
      f.write(predict._score_lines(rows, probs, flagged))
      rows += len(probs)
      lap('write')
  return wall, cpu


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--checkpoint', default='')
  parser.add_argument('--data_dir', default=DEFAULT_DATA)
  parser.add_argument('--rows', type=int, default=500_000)
  parser.add_argument('--chunk_rows', type=int, default=predict.CHUNK_ROWS)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    ckpt = args.checkpoint or _train_small(f'{tmp}/run', args.data_dir)
    clf, _ = checkpoints.load(ckpt)
    raw = pathlib.Path(tmp) / 'flows.txt'
    _raw_rows(args.data_dir, args.rows, raw)
    out = pathlib.Path(tmp) / 'scores.csv'

    # The first pass compiles; the timed passes reuse the program.
    predict.score_file(clf, raw, out, chunk_rows=args.chunk_rows)
    load_start = os.getloadavg()[0]
    batch_s, batch_cpu_s = [], []
    for _ in range(args.repeats):
      t0, c0 = time.perf_counter(), time.process_time()
      predict.score_file(clf, raw, out, chunk_rows=args.chunk_rows)
      batch_s.append(time.perf_counter() - t0)
      batch_cpu_s.append(time.process_time() - c0)

    stage_s, stage_cpu_s = _stage_seconds(clf, raw, out, args.chunk_rows)

    one = readers.read_nsl_kdd(
      pathlib.Path(args.data_dir) / 'KDDTest+.txt'
    ).features.iloc[:1]
    clf.predict_proba(one)
    latency = []
    for _ in range(50):
      t0 = time.perf_counter()
      clf.predict_proba(one)
      latency.append(time.perf_counter() - t0)

  best = min(batch_s)
  latency.sort()
  print(
    json.dumps(
      {
        'rows': args.rows,
        'chunk_rows': args.chunk_rows,
        'models': clf.num_models,
        'batch_s': batch_s,
        'batch_cpu_s': batch_cpu_s,
        'rows_per_s': args.rows / best,
        'rows_per_cpu_s': args.rows / min(batch_cpu_s),
        'stage_s': stage_s,
        'stage_cpu_s': stage_cpu_s,
        'goal_rows_per_s': 250_000,
        'one_row_latency_ms_median': 1e3 * latency[len(latency) // 2],
        'one_row_latency_ms_p90': 1e3 * latency[int(len(latency) * 0.9)],
        'load_avg_start_end': [load_start, os.getloadavg()[0]],
        'xla_flags': os.environ.get('XLA_FLAGS', ''),
      },
      indent=2,
    )
  )


if __name__ == '__main__':
  main()
