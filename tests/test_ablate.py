"""The ablation table, built from fake finished runs (nothing is trained)."""

import importlib.util
import json

import numpy as np
import pytest

from tests import conftest

SPEC = importlib.util.spec_from_file_location(
  'ablate', conftest.REPO_ROOT / 'experiments' / 'ablate.py'
)
ablate = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ablate)

CONFIGS = ('configs/nsl_kdd.py', 'configs/ablations/loss.py:bce')


def _metrics(accuracy, auc, threshold):
  keys = [key for _, key in ablate.TEST_KEYS]
  out = dict.fromkeys(keys, 0.5)
  out.update(accuracy=accuracy, roc_auc=auc, threshold=threshold)
  return out


def _types(auc):
  """Two attack types, one unseen, that lose 1 - auc between them."""
  return [
    {
      'attack': 'new',
      'roc_auc_lost': 0.75 * (1 - auc),
      'seen_in_training': False,
    },
    {
      'attack': 'old',
      'roc_auc_lost': 0.25 * (1 - auc),
      'seen_in_training': True,
    },
  ]


def _fake_run(workdir, accuracy, auc):
  workdir.mkdir(parents=True)
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 200)
  probs = np.clip(labels * 0.6 + rng.uniform(0, 0.4, 200), 0, 1)
  np.savez(
    workdir / 'predictions.npz',
    **{
      f'oof.{s}.{k}': v
      for s in ('random', 'attack')
      for k, v in (('labels', labels), ('probs', probs))
    },
  )
  thresholds = {'random': 0.5, 'attack': 0.4, 'attack_balanced': 0.2}
  test = {}
  for name, shift in (('KDDTest+', 0.0), ('KDDTest-21', -0.2)):
    entry = _metrics(accuracy + shift, auc, 0.2)
    entry['at_thresholds'] = {
      source: _metrics(accuracy + shift - 0.1, auc, t)
      for source, t in thresholds.items()
    }
    entry['at_thresholds']['attack_balanced'] = _metrics(
      accuracy + shift, auc, 0.2
    )
    entry['by_attack_type'] = _types(auc)
    test[name] = entry
  report = {
    'threshold': 0.2,
    'threshold_from': 'attack_balanced',
    'thresholds': thresholds,
    'test': test,
    'cv': {
      'splits': {
        s: {
          'threshold': thresholds[s],
          'oof': {'roc_auc': auc - 0.01, 'roc_auc_types_even': auc - even},
        }
        for s, even in (('random', 0.03), ('attack', 0.02))
      }
    },
    'timing': {'total_s': 60.0},
  }
  (workdir / 'report.json').write_text(json.dumps(report))


@pytest.fixture
def sweep(tmp_path):
  figures = {CONFIGS[0]: [(0.88, 0.95), (0.86, 0.94)], CONFIGS[1]: [(0.8, 0.9)]}
  for spec, runs in figures.items():
    for seed, (accuracy, auc) in enumerate(runs):
      _fake_run(
        ablate.workdir_of(tmp_path / 'runs' / 'x', spec, [], seed),
        accuracy,
        auc,
      )
  return tmp_path


def _report_only(sweep):
  """Arguments that tabulate the `sweep` fixture's runs."""
  return [
    '--name=x',
    f'--configs={",".join(CONFIGS)}',
    '--seeds=0,1',
    f'--runs_dir={sweep / "runs"}',
    f'--results_dir={sweep / "results"}',
    '--report_only',
  ]


def test_report_only_tabulates_mean_and_std_over_seeds(sweep):
  status = ablate.main(_report_only(sweep))
  assert status == 0
  record = json.loads((sweep / 'results' / 'x.json').read_text())
  base = record['configs']['nsl_kdd']
  assert len(base['runs']) == 2
  assert base['mean']['KDDTest+ accuracy'] == pytest.approx(0.87)
  assert base['std']['KDDTest+ accuracy'] == pytest.approx(
    np.std([0.88, 0.86], ddof=1)
  )
  # Seed 1 of the ablation never ran: one run, no spread.
  bce = record['configs']['loss:bce']
  assert len(bce['runs']) == 1 and bce['std']['KDDTest+ accuracy'] is None
  # The base config's runs again at the other sources' thresholds.
  other = record['configs']['nsl_kdd [threshold from random]']
  assert other['mean']['KDDTest+ accuracy'] == pytest.approx(0.77)
  assert other['mean']['threshold'] == 0.5
  assert base['mean']['KDDTest+ AUC lost, unseen types'] == pytest.approx(
    0.75 * (1 - 0.945)
  )
  assert base['mean']['KDDTest+ AUC lost, seen types'] == pytest.approx(
    0.25 * (1 - 0.945)
  )
  page = (sweep / 'results' / 'x.md').read_text()
  assert '| nsl_kdd | 2 | 87.00 ± 1.41 |' in page
  # ROC AUC, detection and false-alarm rates, then the two AUC-lost shares.
  assert (
    '| 0.9450 ± 0.0071 | 50.00 ± 0.00 | 50.00 ± 0.00 | 0.0413 ± 0.0053 |'
    ' 0.0138 ± 0.0018 |'
  ) in page
  assert 'tabulated from finished runs' in page
  assert 'this invocation' not in page
  assert 'NBTree (Tavallaee et al. 2009) (quoted) | - | 82.02 |' in page
  assert 'NBTree (Tavallaee et al. 2009) (quoted) | - | 66.16 |' in page
  assert (sweep / 'results' / 'x.png').read_bytes()[:4] == b'\x89PNG'


def _entry(values):
  mean, std = ablate.summarise(values)
  return {
    'runs': [{}] * len(values),
    'mean': {'CV attack F1': mean},
    'std': {'CV attack F1': std},
  }


def test_the_rule_needs_a_margin_above_both_spreads_and_two_seeds():
  table = {
    'base': _entry([0.960, 0.964, 0.956]),  # std 0.004
    'clear': _entry([0.969, 0.973, 0.965]),  # +0.009, std 0.004
    'clearer': _entry([0.972, 0.976, 0.968]),  # +0.012
    'noisy': _entry([0.950, 0.980, 0.965]),  # +0.005, std 0.015
    'one seed': _entry([0.99]),
    'base [threshold from random]': _entry([0.99, 0.99]),
  }
  selection = ablate.select(table, 'base', 'CV attack F1')
  rows = {r['config']: r for r in selection['rows']}
  assert set(rows) == {'clear', 'clearer', 'noisy', 'one seed'}
  assert rows['clear']['margin'] == pytest.approx(0.009)
  assert rows['clear']['needed'] == pytest.approx(0.004)
  assert rows['clear']['passes'] and rows['clearer']['passes']
  assert rows['noisy']['needed'] == pytest.approx(0.015)
  assert not rows['noisy']['passes']
  assert not rows['one seed']['passes'] and rows['one seed']['needed'] is None
  assert selection['pick'] == 'clearer'
  # An ineligible config is measured as before but never picked.
  fenced = ablate.select(table, 'base', 'CV attack F1', ['clearer'])
  rows = {r['config']: r for r in fenced['rows']}
  assert rows['clearer']['passes'] and not rows['clearer']['eligible']
  assert rows['clear']['eligible']
  assert fenced['pick'] == 'clear'
  del table['clear'], table['clearer']
  assert ablate.select(table, 'base', 'CV attack F1')['pick'] is None


def test_the_rule_is_on_the_page_and_refuses_a_test_figure(sweep, capsys):
  args = _report_only(sweep)
  assert ablate.main(args) == 0
  page = (sweep / 'results' / 'x.md').read_text()
  assert '## The selection rule on `CV attack F1`' in page
  assert 'No eligible config passes; `nsl_kdd` stays.' in page
  record = json.loads((sweep / 'results' / 'x.json').read_text())
  [selection] = record['selections']
  assert selection['metric'] == 'CV attack F1'
  assert selection['pick'] is None
  with pytest.raises(SystemExit) as error:
    ablate.main([*args, '--select=KDDTest+ ROC AUC'])
  assert error.value.code == 2
  assert "invalid choice: 'KDDTest+ ROC AUC'" in capsys.readouterr().err


def test_two_rules_and_an_ineligible_config_on_the_page(sweep, capsys):
  rules = ['--select=CV attack F1', '--select=CV attack ROC AUC, types even']
  args = [*_report_only(sweep), *rules, '--ineligible=loss:bce']
  assert ablate.main(args) == 0
  page = (sweep / 'results' / 'x.md').read_text()
  assert '## The selection rule on `CV attack F1`' in page
  assert '## The selection rule on `CV attack ROC AUC, types even`' in page
  assert 'Shown but never picked (`--ineligible`): `loss:bce`.' in page
  assert '| no (not eligible) |' in page
  record = json.loads((sweep / 'results' / 'x.json').read_text())
  metrics = [s['metric'] for s in record['selections']]
  assert metrics == ['CV attack F1', 'CV attack ROC AUC, types even']
  base = record['configs']['nsl_kdd']['runs'][0]['metrics']
  assert base['CV attack ROC AUC, types even'] == pytest.approx(0.93)
  assert base['CV random ROC AUC, types even'] == pytest.approx(0.92)
  assert ablate.main([*_report_only(sweep), '--ineligible=nope']) == 2
  assert "--ineligible names no config of the table: 'nope'" in (
    capsys.readouterr().err
  )


def test_no_finished_base_run_is_an_error(tmp_path, capsys):
  _fake_run(
    ablate.workdir_of(tmp_path / 'runs' / 'x', CONFIGS[1], [], 0), 0.8, 0.9
  )
  args = _report_only(tmp_path)
  assert ablate.main(args) == 1
  assert "no finished runs of the base config 'nsl_kdd'" in (
    capsys.readouterr().err
  )
  assert not (tmp_path / 'results').exists()


def test_no_finished_runs_is_an_error(tmp_path):
  status = ablate.main(
    [
      f'--runs_dir={tmp_path}',
      f'--results_dir={tmp_path / "results"}',
      '--report_only',
    ]
  )
  assert status == 1
  assert not (tmp_path / 'results').exists()
