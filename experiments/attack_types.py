"""Where finished runs lose ROC AUC on their test sets, by attack type.

  python experiments/attack_types.py \
    runs/ablate/nsl_kdd_ablations/nsl_kdd/seed_0 \
    runs/ablate/nsl_kdd_ablations/nsl_kdd/seed_1

A test set's missing ROC AUC (1 - AUC) splits exactly into one share per
attack type (`evaluation.by_attack_type`). Runs made since the report holds
this breakdown print it too; this script works it out for any finished
workdir from its saved test predictions and the data its config names, and
averages each type's figures over the workdirs given (seeds of one config,
say). It reads the test files' attack names; it chooses nothing.
"""

import argparse
import pathlib
import sys

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from netclf import evaluation  # noqa: E402
from netclf import pipeline  # noqa: E402

NUMERIC = ('detection_rate', 'median_prob', 'roc_auc_vs_normal', 'roc_auc_lost')


def mean_rows(per_run):
  """Averages each attack type's figures over runs; largest loss first."""
  by_type = {}
  for rows in per_run:
    for r in rows:
      by_type.setdefault(r['attack'], []).append(r)
  out = []
  for rows in by_type.values():
    row = {k: v for k, v in rows[0].items() if k not in NUMERIC}
    row.update({k: float(np.mean([r[k] for r in rows])) for k in NUMERIC})
    out.append(row)
  out.sort(key=lambda r: (-r['roc_auc_lost'], r['attack']))
  return out


def _fail(workdir, reason):
  print(f'attack_types: {workdir}: {reason}', file=sys.stderr)
  return 2


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('workdirs', nargs='+', help='finished run directories')
  p.add_argument('--shown', type=int, default=10, help='types listed by name')
  args = p.parse_args(argv)
  loaded = {}
  runs = []
  for workdir in args.workdirs:
    try:
      runs.append(pipeline.attack_type_breakdown(workdir, loaded))
    except KeyError as e:
      return _fail(workdir, f'not a finished run: its saved outputs lack {e}')
    except (OSError, ValueError) as e:
      return _fail(workdir, e)
  for name in runs[0]:
    per_run = [r[name] for r in runs]
    totals = [sum(r['roc_auc_lost'] for r in rows) for rows in per_run]
    print(
      f'{name}: ROC AUC {1 - np.mean(totals):.4f} (mean of {len(per_run)} runs)'
    )
    print(
      '\n'.join(evaluation.attack_type_lines(mean_rows(per_run), args.shown))
    )
    print()
  return 0


if __name__ == '__main__':
  sys.exit(main())
