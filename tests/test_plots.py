"""Tests for netclf.plots."""

import json

import numpy as np
import pytest
from matplotlib import image

from netclf import evaluation
from netclf import plots

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
THRESHOLD = 0.33
TEST_SETS = ('KDDTest+', 'KDDTest-21')
SPLITS = ('random', 'attack')
WARMUP_EPOCHS = 2
TRAIN_EPOCHS = 4


def _scores(rng, n=300):
  """Labels with overlapping but mostly separable attack probabilities."""
  labels = rng.integers(0, 2, n).astype(np.int8)
  probs = np.clip(0.35 * labels + rng.uniform(0.0, 0.6, n), 0, 1)
  return labels, probs.astype(np.float32)


def _metric_records():
  """Two splits of two folds: warm-up, then training, one fold stopping."""
  records = []
  for split in SPLITS:
    for fold in (0, 1):
      for epoch in range(1, WARMUP_EPOCHS + 1):
        records.append(
          {
            'phase': 'warmup',
            'epoch': epoch,
            'fold': fold,
            'train_loss': 1.0 / epoch,
            'active': True,
            'split': split,
          }
        )
      for epoch in range(1, TRAIN_EPOCHS + 1):
        records.append(
          {
            'phase': 'train',
            'epoch': epoch,
            'fold': fold,
            'train_loss': 0.5 / epoch,
            'val_loss': 0.6 / epoch,
            # Fold 1 stops after two epochs; its later records are inactive.
            'active': fold == 0 or epoch <= 2,
            'split': split,
          }
        )
  # An old record without a split counts as the random split.
  records.append(
    {'phase': 'train', 'epoch': 1, 'fold': 2, 'train_loss': 0.4,
     'val_loss': 0.5, 'active': True}
  )  # fmt: skip
  return records


def _make_workdir(path, with_predictions=True):
  """Writes report.json, metrics.jsonl and maybe predictions.npz."""
  rng = np.random.default_rng(0)
  arrays = {}
  test = {}
  for name in TEST_SETS:
    labels, probs = _scores(rng)
    arrays[f'test.{name}.labels'] = labels
    arrays[f'test.{name}.probs'] = probs
    test[name] = evaluation.evaluate_test_set(
      labels, probs, threshold=THRESHOLD
    )
  for split in SPLITS:
    labels, probs = _scores(rng)
    arrays[f'oof.{split}.labels'] = labels
    arrays[f'oof.{split}.probs'] = probs
  report = {'threshold': THRESHOLD, 'test': test}
  (path / 'report.json').write_text(json.dumps(report))
  lines = ''.join(json.dumps(r) + '\n' for r in _metric_records())
  (path / 'metrics.jsonl').write_text(lines)
  if with_predictions:
    np.savez(path / 'predictions.npz', **arrays)
  return report


def _check_png(path, width, height):
  """Asserts `path` is a PNG of `width` x `height` pixels."""
  assert path.read_bytes()[:8] == PNG_MAGIC
  assert image.imread(path).shape[:2] == (height, width)


def test_safe_name():
  assert plots._safe_name('KDDTest+') == 'KDDTestplus'
  assert plots._safe_name('KDDTest-21') == 'KDDTest-21'
  assert plots._safe_name('a b/c.d') == 'a_b_c_d'


def test_write_run_plots(tmp_path):
  _make_workdir(tmp_path)
  written = plots.write_run_plots(tmp_path)
  expected = {
    'roc_pr_KDDTestplus.png': (1100, 440),
    'roc_pr_KDDTest-21.png': (1100, 440),
    # Two split panels side by side, 5 x 3.6 inches each at 110 dpi.
    'learning_curves.png': (1100, 396),
    'confusion_KDDTestplus.png': (550, 440),
    'confusion_KDDTest-21.png': (550, 440),
  }
  assert sorted(p.name for p in written) == sorted(expected)
  for name, (width, height) in expected.items():
    path = tmp_path / name
    assert path in written
    _check_png(path, width, height)
    assert path.stat().st_size < 300_000


def test_write_run_plots_without_predictions(tmp_path):
  _make_workdir(tmp_path, with_predictions=False)
  names = sorted(p.name for p in plots.write_run_plots(tmp_path))
  assert names == [
    'confusion_KDDTest-21.png',
    'confusion_KDDTestplus.png',
    'learning_curves.png',
  ]
  assert not list(tmp_path.glob('roc_pr_*'))


def test_learning_curves_skip_inactive_and_offset_warmup():
  records = [r for r in _metric_records() if r.get('split') == 'attack']
  fig = plots.learning_curves_figure(records)
  (ax,) = fig.axes
  assert ax.get_title() == 'cross-validation, attack split'
  lines = {line.get_label(): line for line in ax.get_lines()}
  # Fold 1 trains two main epochs, drawn after the two warm-up epochs.
  assert list(lines['fold 1'].get_xdata()) == [3, 4]
  np.testing.assert_allclose(lines['fold 1'].get_ydata(), [0.6, 0.3])
  assert list(lines['fold 0'].get_xdata()) == [3, 4, 5, 6]


def test_learning_curves_refit_panel():
  records = _metric_records()
  for epoch in (1, 2):
    records.append(
      {'phase': 'refit_warmup', 'epoch': epoch, 'fold': 0,
       'train_loss': 0.9, 'active': True}
    )  # fmt: skip
  fig = plots.learning_curves_figure(records)
  titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
  assert titles == [
    'cross-validation, random split',
    'cross-validation, attack split',
    'refit',
  ]


def test_confusion_figure_cells():
  metrics = evaluation.binary_metrics(
    [0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.6, 0.3, 0.7, 0.2], threshold=0.5
  )
  fig = plots.confusion_figure('test', metrics)
  texts = [t.get_text() for t in fig.axes[0].texts]
  # Rows are the true class: normal 3 kept, 1 flagged; attack 1 missed.
  assert texts == ['3\n75.0%', '1\n25.0%', '1\n50.0%', '1\n50.0%']


def test_sweep_chart_with_missing_value(tmp_path):
  names = ['default', 'alpha:0.5', 'gamma:0 with a long name']
  metrics = {
    'KDDTest+ accuracy': ([0.8, float('nan'), 0.78], [0.01, None, 0.02]),
    'KDDTest-21 accuracy': ([0.6, 0.62, None], None),
  }
  path = plots.sweep_chart(names, metrics, tmp_path / 'sweep.png', title='t')
  assert path == tmp_path / 'sweep.png'
  # 2.5 + 3.5 * 2 = 9.5 inches wide, 0.8 + 0.3 * 3 + 0.4 = 2.1 high.
  _check_png(path, 1045, 231)


def test_sweep_chart_draws_no_point_for_missing(tmp_path, monkeypatch):
  saved = []
  monkeypatch.setattr(plots, '_save', lambda fig, path: saved.append(fig))
  means = [0.95, None, 0.955]
  plots.sweep_chart(['a', 'b', 'c'], {'m': (means, [0.001, 0, 0])}, 'x')
  (ax,) = [ax for ax in saved[0].axes if ax.get_visible()]
  (points,) = [line for line in ax.lines if line.get_marker() == 'o']
  assert list(points.get_xdata()) == pytest.approx([0.95, 0.955])
  assert list(points.get_ydata()) == [0, 2]
  # Zoomed to the values, so that a difference of 0.005 is visible.
  low, high = ax.get_xlim()
  assert 0.94 < low < 0.949 and 0.955 < high < 0.96


def test_sweep_chart_rejects_misaligned(tmp_path):
  with pytest.raises(ValueError, match='2 values for 3 names'):
    plots.sweep_chart(['a', 'b', 'c'], {'m': ([1, 2], None)}, tmp_path / 'x')
