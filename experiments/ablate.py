"""Runs a set of configs over several seeds and tabulates what each buys.

Every run is an ordinary `python -m netclf.main` run in its own workdir,
`<runs_dir>/<label>/seed_<seed>`. A finished run is read, not redone, and
an interrupted one resumes from its saved training state, so the sweep can
be stopped and started again. Seeds go round the outside: all configs for
the first seed, then all for the next, so a cut-short sweep still has a
whole table for its first seeds.

  # The NSL-KDD ablation set (the first config is the base), three seeds:
  python experiments/ablate.py --name nsl_kdd_ablations

  # Two configs, one seed, on the 20% training file:
  python experiments/ablate.py --name quick --seeds 0 \\
    --configs configs/nsl_kdd.py,configs/ablations/loss.py:bce \\
    --set data.train=KDDTrain+_20Percent.txt

Writes `<results_dir>/<name>.md`, `.json` and `.png`: per config the mean
and standard deviation over seeds of the test metrics, of both split modes'
out-of-fold metrics, and of the wall time; beside them published results,
marked as quoted.
"""

import argparse
import hashlib
import json
import math
import os
import pathlib
import shlex
import subprocess
import sys
import time

import numpy as np
import pandas as pd

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from netclf import evaluation  # noqa: E402
from netclf import pipeline  # noqa: E402
from netclf import plots  # noqa: E402

# The ablation set: the NSL-KDD config, then one change at a time.
NSL_KDD_SET = (
  'configs/nsl_kdd.py',
  'configs/ablations/loss.py:bce',
  'configs/ablations/alpha.py:0.5',
  'configs/ablations/alpha.py:0.75',
  'configs/ablations/alpha.py:none',
  'configs/ablations/gamma.py:0',
  'configs/ablations/gamma.py:1',
  'configs/ablations/gamma.py:5',
  'configs/ablations/warmup.py:off',
  'configs/ablations/residual.py:on',
  'configs/ablations/batch_norm.py:off',
  'configs/ablations/dropout.py:flat',
  'configs/ablations/dropout.py:none',
  'configs/ablations/final_model.py:refit',
  'configs/ablations/final_model.py:all',
  'configs/ablations/log1p.py:off',
  'configs/ablations/folds.py:stratified',
  'configs/ablations/type_balance.py:0',
  'configs/ablations/type_balance.py:1',
  'configs/ablations/input_noise.py:0.1',
  'configs/ablations/input_noise.py:0.3',
  'configs/ablations/novelty.py:0',
)
TEST_KEYS = (
  ('accuracy', 'accuracy'),
  ('balanced accuracy', 'balanced_accuracy'),
  ('F1', 'f1'),
  ('ROC AUC', 'roc_auc'),
  ('detection rate', 'detection_rate'),
  ('false-alarm rate', 'false_alarm_rate'),
)
# A test set's missing ROC AUC, split between the attack types that training
# never showed and those it did (`evaluation.by_attack_type`).
LOST_KEYS = ('AUC lost, unseen types', 'AUC lost, seen types')
# The figures the selection rule may use: out-of-fold ones, never a test
# set's.
SELECTABLE = tuple(
  f'CV {split} {figure}'
  for split in ('attack', 'random')
  for figure in ('F1', 'ROC AUC', 'accuracy', 'ROC AUC, types even')
)
# Binary accuracy (%) on KDDTest+ / KDDTest-21, from the data set's README.
PUBLISHED = {
  'J48 (Tavallaee et al. 2009)': (81.05, 63.97),
  'Naive Bayes (Tavallaee et al. 2009)': (76.56, 55.77),
  'NBTree (Tavallaee et al. 2009)': (82.02, 66.16),
  'Random Forest (Tavallaee et al. 2009)': (80.67, 63.26),
  'Random Tree (Tavallaee et al. 2009)': (81.59, 58.51),
  'MLP (Tavallaee et al. 2009)': (77.41, 57.34),
  'SVM (Tavallaee et al. 2009)': (69.52, 42.29),
  'RNN-IDS (Yin et al. 2017; tuned on test accuracy)': (83.28, 68.55),
}


def label_of(spec):
  """'configs/ablations/alpha.py:0.5' -> 'alpha:0.5'."""
  path, _, arg = spec.partition(':')
  stem = pathlib.Path(path).stem
  return f'{stem}:{arg}' if arg else stem


def workdir_of(runs_dir, spec, overrides, seed):
  tag = label_of(spec).replace(':', '_')
  if overrides:
    digest = hashlib.sha256('\n'.join(overrides).encode()).hexdigest()[:8]
    tag += f'_{digest}'
  return pathlib.Path(runs_dir) / tag / f'seed_{seed}'


def run_one(spec, seed, workdir, overrides):
  """Runs (or resumes) one training run; returns its error text or None."""
  if (workdir / 'report.json').exists():
    return None
  workdir.mkdir(parents=True, exist_ok=True)
  command = [
    sys.executable,
    '-m',
    'netclf.main',
    f'--config={spec}',
    f'--workdir={workdir}',
    f'--config.seed={seed}',
    *(f'--config.{o}' for o in overrides),
  ]
  env = dict(os.environ)
  # Seeds of one config compile the same programs: share them.
  env.setdefault(
    'JAX_COMPILATION_CACHE_DIR', str(workdir.parents[1] / '.jax_cache')
  )
  with open(workdir / 'run.log', 'a') as log:
    proc = subprocess.run(
      command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
    )
  if proc.returncode:
    lines = (workdir / 'run.log').read_text().strip().splitlines()
    return lines[-1] if lines else f'exit status {proc.returncode}'
  return None


def own_threshold_metrics(workdir, report, split):
  """Out-of-fold metrics of one split mode at that split's own threshold."""
  path = workdir / 'predictions.npz'
  if not path.exists():
    return {}
  with np.load(path) as arrays:
    labels = arrays[f'oof.{split}.labels']
    probs = arrays[f'oof.{split}.probs']
  threshold = report['cv']['splits'][split]['threshold']
  return evaluation.binary_metrics(labels, probs, threshold=threshold)


def run_attack_types(workdir, report, datasets):
  """`{test set: by_attack_type rows}`, from the report or worked out."""
  test = report['test']
  if all('by_attack_type' in entry for entry in test.values()):
    return {name: entry['by_attack_type'] for name, entry in test.items()}
  try:
    return pipeline.attack_type_breakdown(workdir, datasets)
  except (OSError, KeyError, ValueError):
    return {}  # A run without its data or predictions: the cells say n/a.


def types_even_aucs(workdir, report, datasets):
  """`{split: out-of-fold ROC AUC, types even}`, reported or worked out."""
  splits = report['cv']['splits']
  if all('roc_auc_types_even' in part['oof'] for part in splits.values()):
    return {s: part['oof']['roc_auc_types_even'] for s, part in splits.items()}
  try:
    return pipeline.oof_types_even_roc_auc(workdir, datasets)
  except (OSError, KeyError, ValueError):
    return {}  # A run without its data or predictions: the cells say n/a.


def run_metrics(workdir, report, threshold_from=None, types=None, even=None):
  """The figures of one finished run, flat, keyed like 'KDDTest+ F1'.

  `types` holds the test sets' `by_attack_type` rows and `even` the
  out-of-fold ROC AUC with attack types counting alike, per split.
  """
  out = {}
  for name, entry in report['test'].items():
    chosen = entry
    if threshold_from is not None:
      chosen = entry['at_thresholds'][threshold_from]
    for label, key in TEST_KEYS:
      out[f'{_short(name)} {label}'] = chosen[key]
    lost = evaluation.auc_lost_unseen_seen((types or {}).get(name))
    for label, value in zip(LOST_KEYS, lost, strict=True):
      out[f'{_short(name)} {label}'] = value
  for split, part in report['cv']['splits'].items():
    own = own_threshold_metrics(workdir, report, split)
    out[f'CV {split} ROC AUC'] = part['oof']['roc_auc']
    out[f'CV {split} accuracy'] = own.get('accuracy')
    out[f'CV {split} F1'] = own.get('f1')
    out[f'CV {split} ROC AUC, types even'] = (even or {}).get(split)
  out['threshold'] = (
    report['thresholds'][threshold_from]
    if threshold_from
    else report['threshold']
  )
  out['wall s'] = report['timing']['total_s']
  return out


def _short(test_name):
  return test_name.removesuffix('.txt')


def summarise(values):
  values = [v for v in values if v is not None and math.isfinite(v)]
  if not values:
    return None, None
  std = float(np.std(values, ddof=1)) if len(values) > 1 else None
  return float(np.mean(values)), std


def collect(runs, base):
  """Reads the finished runs: `{label: {'spec', 'runs', 'mean', 'std'}}`."""
  table, test_names, datasets = {}, {}, {}
  for label, spec, seed, workdir in runs:
    path = workdir / 'report.json'
    if not path.exists():
      continue
    report = json.loads(path.read_text())
    types = run_attack_types(workdir, report, datasets)
    even = types_even_aucs(workdir, report, datasets)
    test_names.update(dict.fromkeys(map(_short, report['test'])))
    variants = [(label, None)]
    if label == base:
      # The same runs at the thresholds the other sources would give.
      variants += [
        (f'{label} [threshold from {source}]', source)
        for source in report.get('thresholds', {})
        if source != report.get('threshold_from')
      ]
    for name, source in variants:
      entry = table.setdefault(name, {'spec': spec, 'runs': []})
      entry['runs'].append(
        {
          'seed': seed,
          'workdir': str(workdir),
          'metrics': run_metrics(workdir, report, source, types, even),
        }
      )
  for entry in table.values():
    keys = list(entry['runs'][0]['metrics'])
    stats = {
      k: summarise([r['metrics'].get(k) for r in entry['runs']]) for k in keys
    }
    entry['mean'] = {k: v[0] for k, v in stats.items()}
    entry['std'] = {k: v[1] for k, v in stats.items()}
  return table, list(test_names)


def ranking(table, test_names):
  """Spearman correlations, over configs, of CV figures with test figures."""
  rows = {
    name: entry['mean']
    for name, entry in table.items()
    if '[threshold from' not in name
  }
  frame = pd.DataFrame(rows).T
  if len(frame) < 3:
    return {}
  cv_keys = [c for c in frame.columns if c.startswith('CV ')]
  test_keys = [
    f'{t} {m}' for t in test_names for m in ('accuracy', 'ROC AUC', 'F1')
  ]
  out = {}
  for c in cv_keys:
    out[c] = {}
    for t in test_keys:
      pair = frame[[c, t]].astype(float).dropna()
      rho = pair[c].corr(pair[t], method='spearman') if len(pair) > 2 else None
      out[c][t] = None if rho is None or not math.isfinite(rho) else rho
  return out


def select(table, base, metric, ineligible=()):
  """The selection rule, applied to every config against `base`.

  A config would replace the base only if its mean `metric` over seeds
  beats the base's by more than the larger of the two standard deviations;
  with fewer than two seeds on either side it cannot. Of several that
  pass, the one with the highest mean is picked. Configs in `ineligible`
  (ones picked for a run on a test figure, say) are measured and shown
  but never picked.

  Returns:
    `{'metric', 'base', 'rows', 'pick', 'ineligible'}`: a row per config
    other than the base (`config`, `seeds`, `mean`, `std`, `margin`,
    `needed`, `passes`, `eligible`) and the picked config's name, None
    when none passes.
  """
  ref = table[base]
  rows = []
  for name, entry in table.items():
    if name == base or '[threshold from' in name:
      continue
    mean, std = entry['mean'].get(metric), entry['std'].get(metric)
    spreads = (std, ref['std'].get(metric))
    comparable = mean is not None and ref['mean'].get(metric) is not None
    margin = mean - ref['mean'][metric] if comparable else None
    needed = None if None in spreads else max(spreads)
    rows.append(
      {
        'config': name,
        'seeds': len(entry['runs']),
        'mean': mean,
        'std': std,
        'margin': margin,
        'needed': needed,
        'passes': bool(
          margin is not None and needed is not None and margin > needed
        ),
        'eligible': name not in ineligible,
      }
    )
  passing = [r for r in rows if r['passes'] and r['eligible']]
  pick = max(passing, key=lambda r: r['mean'])['config'] if passing else None
  return {
    'metric': metric,
    'base': base,
    'rows': rows,
    'pick': pick,
    'ineligible': list(ineligible),
  }


def _total_run_s(table):
  return sum(
    run['metrics']['wall s']
    for name, entry in table.items()
    if '[threshold from' not in name
    for run in entry['runs']
  )


def _row(cells):
  return '| ' + ' | '.join(cells) + ' |'


def _head(columns):
  return [_row(columns), '|' + '---|' * len(columns)]


def _cell(mean, std, percent):
  if mean is None:
    return 'n/a'
  scale, spec = (100, '.2f') if percent else (1, '.4f')
  text = format(mean * scale, spec)
  if std is not None:
    text += ' ± ' + format(std * scale, spec)
  return text


def markdown(table, rank, selections, test_names, args, command, elapsed_s):
  """The results page; `elapsed_s` is None when nothing was run."""
  if elapsed_s is None:
    invocation = 'this page was tabulated from finished runs'
  else:
    invocation = (
      f'this invocation {elapsed_s / 60:.1f} min (finished runs are read,'
      ' not redone)'
    )
  lines = [f'# {args.name}', '']
  if args.notes:
    lines += [pathlib.Path(args.notes).read_text().strip(), '']
  lines += [
    'Reproduce with:',
    '',
    '```bash',
    command,
    '```',
    '',
    f'Seeds: {", ".join(map(str, args.seeds))}. Overrides on every run:'
    f' {", ".join(args.set) if args.set else "none"}. Cells are the mean'
    ' ± standard deviation over seeds; rates in percent. The runs took'
    f' {_total_run_s(table) / 3600:.2f} h of wall time in all; {invocation}.',
    '',
    "The two `AUC lost` columns split a test set's missing ROC AUC (1 -"
    ' AUC, which they sum to) between the attack types that training never'
    ' showed and those it did: each type loses its own 1 - AUC against the'
    ' normal rows, weighted by its share of the attacks.',
    '',
  ]
  for test in test_names:
    lines += [f'## {test}', '']
    labels = [label for label, _ in TEST_KEYS] + list(LOST_KEYS)
    lines += _head(['config', 'seeds', *labels])
    for name, entry in table.items():
      cells = [name, str(len(entry['runs']))]
      for label in labels:
        key = f'{test} {label}'
        percent = label != 'ROC AUC' and label not in LOST_KEYS
        cells.append(
          _cell(entry['mean'].get(key), entry['std'].get(key), percent)
        )
      lines.append(_row(cells))
    if test in ('KDDTest+', 'KDDTest-21'):
      column = 0 if test == 'KDDTest+' else 1
      for name, accs in PUBLISHED.items():
        cells = [f'{name} (quoted)', '-', f'{accs[column]:.2f}']
        lines.append(_row(cells + ['-'] * (len(labels) - 1)))
    lines.append('')
  cv_keys = [
    k
    for k in next(iter(table.values()))['mean']
    if k.startswith('CV ') or k in ('threshold', 'wall s')
  ]
  lines += [
    '## Cross-validation (out of fold, on the training file)',
    '',
    "ROC AUC, and accuracy and F1 at each split's own max-F1 threshold;"
    " `threshold` is the one the run used; `wall s` the run's wall time.",
    '',
    *_head(['config', *cv_keys]),
  ]
  for name, entry in table.items():
    cells = [name]
    for k in cv_keys:
      mean, std = entry['mean'].get(k), entry['std'].get(k)
      if k == 'wall s':
        cells.append('n/a' if mean is None else f'{mean:.0f}')
      else:
        cells.append(_cell(mean, std, k.endswith(('accuracy', 'F1'))))
    lines.append(_row(cells))
  lines.append('')
  if rank:
    test_keys = list(next(iter(rank.values())))
    lines += [
      '## Does cross-validation rank the settings as the test sets do?',
      '',
      'Spearman rank correlation over the configs above (means over seeds)'
      ' between each out-of-fold figure and each test figure. 1 means the'
      ' same order, 0 none, negative the reverse.',
      '',
      *_head(['out-of-fold', *test_keys]),
    ]
    for c, row in rank.items():
      cells = ['n/a' if row[t] is None else f'{row[t]:+.2f}' for t in test_keys]
      lines.append(_row([c, *cells]))
    lines.append('')
  for selection in selections:
    lines += _selection_lines(selection)
  lines += [f'![{args.name}]({args.name}.png)', '']
  return '\n'.join(lines)


def _selection_lines(selection):
  metric, base = selection['metric'], selection['base']
  percent = metric.endswith(('accuracy', 'F1'))
  scale, unit = (100, ' points') if percent else (1, '')
  pick, ineligible = selection['pick'], selection.get('ineligible')
  excluded = (
    ' Shown but never picked (`--ineligible`): '
    + ', '.join(f'`{name}`' for name in ineligible)
    + '.'
    if ineligible
    else ''
  )
  lines = [
    f'## The selection rule on `{metric}`',
    '',
    f'A config would replace `{base}` only if its mean `{metric}` over seeds'
    f" beats `{base}`'s by more than the larger of the two standard"
    ' deviations; with one seed it cannot. Margins and what they need are'
    f' in{unit or " its units"}.{excluded}'
    + (
      f' **Picked: `{pick}`.**'
      if pick
      else f' **No eligible config passes; `{base}` stays.**'
    ),
    '',
    *_head(['config', 'seeds', metric, 'margin', 'needed', 'passes']),
  ]

  def number(value, spec):
    return 'n/a' if value is None else format(value * scale, spec)

  for r in selection['rows']:
    cells = [
      r['config'],
      str(r['seeds']),
      _cell(r['mean'], r['std'], percent),
      number(r['margin'], '+.2f'),
      number(r['needed'], '.2f'),
      ('yes' if r['passes'] else 'no')
      + ('' if r.get('eligible', True) else ' (not eligible)'),
    ]
    lines.append(_row(cells))
  return [*lines, '']


def chart(table, test_names, path):
  names = list(table)
  metrics = {}
  keys = [f'{t} accuracy' for t in test_names] + [
    f'{test_names[0]} ROC AUC',
    'CV attack ROC AUC',
    'CV attack ROC AUC, types even',
    'CV random ROC AUC',
  ]
  for key in keys:
    metrics[key] = (
      [table[n]['mean'].get(key) for n in names],
      [table[n]['std'].get(key) for n in names],
    )
  return plots.sweep_chart(names, metrics, path, title=path.stem)


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--name', default='nsl_kdd_ablations')
  p.add_argument(
    '--configs',
    default=','.join(NSL_KDD_SET),
    help='comma-separated config files, each optionally with :arg',
  )
  p.add_argument(
    '--seeds', default='0,1,2', type=lambda s: [int(x) for x in s.split(',')]
  )
  p.add_argument('--runs_dir', default='runs/ablate')
  p.add_argument('--results_dir', default='experiments/results')
  p.add_argument(
    '--set',
    action='append',
    default=[],
    metavar='FIELD=VALUE',
    help='a config override for every run, e.g. train.epochs=10',
  )
  p.add_argument(
    '--select',
    action='append',
    choices=SELECTABLE,
    help='the out-of-fold figure of a selection rule; give it again for'
    f' another rule on the page (default: {SELECTABLE[0]!r})',
  )
  p.add_argument(
    '--ineligible',
    default='',
    type=lambda s: [x for x in s.split(',') if x],
    metavar='LABEL,...',
    help='configs the rules show but never pick, as `config` on the page',
  )
  p.add_argument('--notes', help='a markdown file to put at the top')
  p.add_argument(
    '--report_only',
    action='store_true',
    help='tabulate the finished runs without starting any',
  )
  args = p.parse_args(argv)
  args.select = args.select or [SELECTABLE[0]]
  return args


def main(argv=None):
  args = parse_args(argv)
  specs = [s for s in args.configs.split(',') if s]
  runs_dir = pathlib.Path(args.runs_dir) / args.name
  runs = [
    (label_of(spec), spec, seed, workdir_of(runs_dir, spec, args.set, seed))
    for seed in args.seeds
    for spec in specs
  ]
  start = time.perf_counter()
  failures = []
  if not args.report_only:
    for i, (label, spec, seed, workdir) in enumerate(runs):
      t0 = time.perf_counter()
      print(f'[{i + 1}/{len(runs)}] {label} seed {seed} ...', flush=True)
      error = run_one(spec, seed, workdir, args.set)
      took = time.perf_counter() - t0
      if error:
        failures.append((label, seed, error))
        print(f'  failed after {took:.0f} s: {error}', flush=True)
      else:
        print(f'  done in {took:.0f} s ({workdir})', flush=True)
  elapsed = None if args.report_only else time.perf_counter() - start
  base = label_of(specs[0])
  table, test_names = collect(runs, base)
  if not table:
    print('ablate: no finished runs to tabulate', file=sys.stderr)
    return 1
  if base not in table:
    print(
      f'ablate: no finished runs of the base config {base!r}', file=sys.stderr
    )
    return 1
  for metric in args.select:
    if table[base]['mean'].get(metric) is None:
      print(
        f'ablate: --select {metric!r} is not a figure of the finished runs'
        f' of {base!r}',
        file=sys.stderr,
      )
      return 2
  unknown = [name for name in args.ineligible if name not in table]
  if unknown:
    print(
      f'ablate: --ineligible names no config of the table: {unknown[0]!r}',
      file=sys.stderr,
    )
    return 2
  rank = ranking(table, test_names)
  selections = [
    select(table, base, metric, args.ineligible) for metric in args.select
  ]
  # The command that makes the table: tabulating alone is not part of it.
  given = argv if argv is not None else sys.argv[1:]
  command = 'python experiments/ablate.py ' + shlex.join(
    [a for a in given if a != '--report_only']
  )
  out = pathlib.Path(args.results_dir)
  out.mkdir(parents=True, exist_ok=True)
  (out / f'{args.name}.md').write_text(
    markdown(table, rank, selections, test_names, args, command, elapsed)
  )
  record = {
    'command': command,
    'seeds': args.seeds,
    'overrides': args.set,
    'configs': table,
    'published_accuracy_quoted': PUBLISHED,
    'ranking_spearman': rank,
    'selections': selections,
    'failures': failures,
  }
  (out / f'{args.name}.json').write_text(json.dumps(record, indent=2) + '\n')
  chart(table, test_names, out / f'{args.name}.png')
  print(f'Wrote {out / args.name}.md, .json and .png')
  for label, seed, error in failures:
    print(f'ablate: {label} seed {seed} failed: {error}', file=sys.stderr)
  return 1 if failures else 0


if __name__ == '__main__':
  sys.exit(main())
