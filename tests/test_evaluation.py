"""Tests for netclf.evaluation."""

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from netclf import evaluation

# Eight rows worked out by hand below; at 0.5 the predictions are
# [0, 0, 1, 0, 0, 1, 0, 1].
LABELS = np.array([0, 0, 0, 0, 0, 1, 1, 1])
PROBS = np.array([0.1, 0.2, 0.6, 0.3, 0.05, 0.7, 0.4, 0.9])


def _f1_at(labels, probs, threshold):
  return skm.f1_score(labels, probs >= threshold, zero_division=0)


def _separable(rng, n=200):
  """Normals in [0, 0.15], attacks squeezed into [0.2, 0.45]."""
  labels = rng.integers(0, 2, n)
  probs = np.where(
    labels == 1, rng.uniform(0.2, 0.45, n), rng.uniform(0.0, 0.15, n)
  )
  return labels, probs


def test_binary_metrics_by_hand():
  m = evaluation.binary_metrics(LABELS, PROBS, threshold=0.5)
  # tn: 0.1, 0.2, 0.3, 0.05; fp: 0.6; fn: 0.4; tp: 0.7, 0.9.
  assert m['confusion_matrix'] == [[4, 1], [1, 2]]
  assert m['num_rows'] == 8
  assert m['num_attacks'] == 3
  assert m['threshold'] == 0.5
  assert m['accuracy'] == pytest.approx(6 / 8)
  assert m['false_alarm_rate'] == pytest.approx(1 / 5)
  assert m['detection_rate'] == pytest.approx(2 / 3)
  assert m['recall'] == pytest.approx(2 / 3)
  assert m['precision'] == pytest.approx(2 / 3)
  assert m['f1'] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
  assert m['balanced_accuracy'] == pytest.approx((2 / 3 + 4 / 5) / 2)
  # Attack-normal pairs ranked correctly: 0.7 and 0.9 beat all five
  # normals, 0.4 beats four of them.
  assert m['roc_auc'] == pytest.approx(14 / 15)


def test_binary_metrics_agrees_with_sklearn():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 500)
  probs = np.clip(0.3 * labels + rng.uniform(0, 0.7, 500), 0, 1)
  m = evaluation.binary_metrics(labels, probs, threshold=0.4)
  preds = (probs >= 0.4).astype(int)
  assert m['roc_auc'] == pytest.approx(skm.roc_auc_score(labels, probs))
  assert m['pr_auc'] == pytest.approx(
    skm.average_precision_score(labels, probs)
  )
  assert m['balanced_accuracy'] == pytest.approx(
    skm.balanced_accuracy_score(labels, preds)
  )
  assert m['f1'] == pytest.approx(skm.f1_score(labels, preds))
  assert m['log_loss'] == pytest.approx(skm.log_loss(labels, probs))
  expected = skm.classification_report(
    labels,
    preds,
    labels=[0, 1],
    target_names=['normal', 'attack'],
    output_dict=True,
    zero_division=0,
  )
  assert m['classification_report'] == expected


def test_log_loss_is_finite_for_confident_mistakes():
  m = evaluation.binary_metrics([0, 1], [1.0, 0.0], threshold=0.5)
  assert np.isfinite(m['log_loss'])
  assert m['log_loss'] > 10


def test_single_class_gives_none_aucs_without_warnings():
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    m = evaluation.binary_metrics([0, 0, 0], [0.1, 0.7, 0.2], threshold=0.5)
  assert m['roc_auc'] is None
  assert m['pr_auc'] is None
  assert m['confusion_matrix'] == [[2, 1], [0, 0]]
  assert m['accuracy'] == pytest.approx(2 / 3)
  assert m['precision'] == 0.0
  assert m['detection_rate'] == 0.0
  assert m['balanced_accuracy'] == pytest.approx(2 / 3)


def test_metrics_are_json_serialisable():
  probs = PROBS.astype(np.float32)
  m = evaluation.evaluate_test_set(LABELS, probs, threshold=np.float32(0.35))
  decoded = json.loads(json.dumps(m))
  assert decoded['at_threshold']['confusion_matrix'] == [[4, 1], [0, 3]]
  assert type(m['threshold']) is float
  assert type(m['num_rows']) is int


@pytest.mark.parametrize(
  'labels, probs, match',
  [
    ([0, 1, 1], [0.1, 0.9], 'length'),
    ([], [], 'empty'),
    ([0, 1], [0.1, np.nan], 'non-finite'),
    ([0, 1], [0.1, np.inf], 'non-finite'),
    ([0, 2], [0.1, 0.9], '0 \\(normal\\) and 1'),
    ([0, 1], [-0.5, 1.5], r'\[0, 1\]'),
  ],
)
def test_bad_inputs_raise(labels, probs, match):
  with pytest.raises(ValueError, match=match):
    evaluation.binary_metrics(labels, probs, threshold=0.5)
  with pytest.raises(ValueError, match=match):
    evaluation.choose_threshold(labels, probs)


def test_max_f1_separates_shifted_scores():
  labels, probs = _separable(np.random.default_rng(0))
  t = evaluation.choose_threshold(labels, probs)
  # Only cuts between the top normal and the lowest attack score reach
  # F1 = 1; the midpoint of that gap is returned.
  gap_lo, gap_hi = probs[labels == 0].max(), probs[labels == 1].min()
  assert t == pytest.approx((gap_lo + gap_hi) / 2)
  assert type(t) is float
  assert _f1_at(labels, probs, t) == 1.0
  assert _f1_at(labels, probs, 0.5) == 0.0


def test_max_f1_prefers_the_higher_cut_on_ties():
  # Cut at 0.8: tp=2, fp=0, fn=2; cut at 0.35: tp=4, fp=4, fn=0. Both give
  # F1 = 2/3 and every other cut gives less.
  probs = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35])
  labels = np.array([1, 1, 0, 0, 0, 0, 1, 1])
  t = evaluation.choose_threshold(labels, probs)
  assert t == pytest.approx(0.75)
  assert _f1_at(labels, probs, t) == pytest.approx(2 / 3)


def test_max_f1_when_flagging_everything_is_best():
  t = evaluation.choose_threshold([1, 1, 0, 1], [0.4, 0.8, 0.9, 0.6])
  assert t == pytest.approx(0.2)


def test_max_f1_holds_on_adjacent_float32_scores():
  lo = np.float32(0.3)
  hi = np.nextafter(lo, np.float32(1))
  probs = np.array([lo, hi, lo, hi], dtype=np.float32)
  labels = np.array([0, 1, 0, 1])
  t = evaluation.choose_threshold(labels, probs)
  # Comparing in float32, as numpy does for a float32 array, must still
  # split the two scores.
  np.testing.assert_array_equal(probs >= t, labels == 1)
  assert 0 < t <= 1


def test_max_f1_beats_every_grid_threshold():
  rng = np.random.default_rng(0)
  for _ in range(5):
    n = int(rng.integers(50, 400))
    labels = rng.integers(0, 2, n)
    probs = np.clip(0.25 * labels + rng.beta(2, 5, n), 0, 1)
    t = evaluation.choose_threshold(labels, probs)
    assert 0 < t <= 1
    best = _f1_at(labels, probs, t)
    for grid_t in np.linspace(0.01, 1.0, 100):
      assert best >= _f1_at(labels, probs, grid_t) - 1e-12


def test_fixed_and_unknown_methods():
  assert evaluation.choose_threshold([0, 1], [0.2, 0.3], method='fixed') == 0.5
  t = evaluation.choose_threshold(
    [0, 1], [0.2, 0.3], method='fixed', fixed_value=0.3
  )
  assert t == 0.3
  with pytest.raises(ValueError, match='max_f1'):
    evaluation.choose_threshold([0, 1], [0.2, 0.3], method='youden')
  with pytest.raises(ValueError, match='fixed_value'):
    evaluation.choose_threshold(
      [0, 1], [0.2, 0.3], method='fixed', fixed_value=0
    )


def test_max_f1_needs_an_attack():
  with pytest.raises(ValueError, match='attack'):
    evaluation.choose_threshold([0, 0], [0.2, 0.3])
  with pytest.raises(ValueError, match='all probs are 0'):
    evaluation.choose_threshold([0, 1], [0.0, 0.0])


def test_evaluate_test_set_layout():
  out = evaluation.evaluate_test_set(LABELS, PROBS, threshold=0.35)
  assert out['at_threshold']['threshold'] == 0.35
  assert out['at_0.5']['threshold'] == 0.5
  for key in evaluation.HEADLINE_KEYS:
    assert out[key] == out['at_threshold'][key]
  # The two thresholds disagree on this data, so the copy is not from 0.5.
  assert out['confusion_matrix'] == [[4, 1], [0, 3]]
  assert out['at_0.5']['confusion_matrix'] == [[4, 1], [1, 2]]


def _sample_report():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 300)
  probs = np.clip(0.3 * labels + rng.uniform(0, 0.7, 300), 0, 1)
  threshold = evaluation.choose_threshold(labels, probs)
  return {
    'config_name': 'tiny',
    'data': {'train_rows': 300, 'features': 41, 'nested': {'a': 1}},
    'threshold': threshold,
    'threshold_method': 'max_f1',
    'cv': {
      'mode': 'vmap',
      'splits': {
        'random': {
          'splitter': 'KFold',
          'threshold': threshold,
          'folds': [
            {
              'fold': i,
              'roc_auc': 0.9123 + i / 100,
              'f1': 0.8 + i / 100,
              'accuracy': 0.85,
              'best_epoch': 7 + i,
              'best_val_loss': 0.2345,
              'epochs_run': 12,
            }
            for i in range(3)
          ],
          'oof': evaluation.binary_metrics(labels, probs, threshold=threshold),
        },
        'attack': {'splitter': 'GroupKFold by attack name', 'folds': []},
      },
    },
    'test': {
      'KDDTest+': evaluation.evaluate_test_set(
        labels, probs, threshold=threshold
      ),
      'KDDTest-21': evaluation.evaluate_test_set(
        labels[:100], probs[:100], threshold=threshold
      ),
    },
    'novelty': {'weight': 1.0, 'centroids': 256},
    'timing': {'compile_s': 3.21, 'train_s': 45.6, 'total_s': 50.0},
    'checkpoint': {'path': '/tmp/run/' + 'x' * 120, 'max_abs_diff': 0.0},
    'versions': {'jax': '0.5.0', 'flax': '0.10.2'},
  }


def test_format_report_content_and_width():
  report = _sample_report()
  text = evaluation.format_report(report)
  lines = text.splitlines()
  assert all(len(line) <= 80 for line in lines), max(lines, key=len)
  assert 'KDDTest+' in text and 'KDDTest-21' in text
  assert f'{report["threshold"]:.4f} (max_f1)' in text
  fold_rows = [line for line in lines if line.split()[:2] == ['1', '8']]
  assert len(fold_rows) == 1
  assert '0.9223' in fold_rows[0] and '0.2345' in fold_rows[0]
  test = report['test']['KDDTest+']
  acc_line = next(line for line in lines if line.strip().startswith('acc'))
  assert f'{test["accuracy"]:.4f}' in acc_line
  assert f'{test["at_0.5"]["accuracy"]:.4f}' in acc_line
  (tn, fp), (fn, tp) = test['confusion_matrix']
  normal_row = next(line for line in lines if 'true normal' in line)
  assert normal_row.split()[2:] == [str(tn), str(fp)]
  assert 'compile 3.2 s' in text and 'total 50.0 s' in text
  assert (
    "Novelty: weight 1, 256 centroids of each model's normal training rows"
    in lines
  )
  assert 'max abs diff 0.00e+00' in text
  assert sum('GroupKFold by attack name' in line for line in lines) == 1


def test_format_report_tolerates_missing_sections():
  text = evaluation.format_report({'config_name': 'bare'})
  assert 'bare' in text
  entry = evaluation.evaluate_test_set([0, 0], [0.1, 0.2], threshold=0.5)
  del entry['at_0.5']
  text = evaluation.format_report({'test': {'only-normal': entry}})
  assert 'only-normal' in text
  assert 'n/a' in text  # The single-class AUCs.


def test_type_balanced_weights_give_each_attack_type_an_equal_share():
  labels = np.array([0, 0, 1, 1, 1, 1, 1, 1])
  names = np.array(['n', 'n', 'flood', 'flood', 'flood', 'flood', 'x', 'y'])
  w = evaluation.type_balanced_weights(labels, names)
  np.testing.assert_allclose(w[:2], 1.0)
  # Six attack rows over three types: each type's rows weigh 2 in all.
  np.testing.assert_allclose(w[2:6], 0.5)
  np.testing.assert_allclose(w[6:], 2.0)
  assert w[labels == 1].sum() == pytest.approx(6.0)


def test_type_balance_power_goes_from_no_change_to_equal_types():
  labels = np.array([0] + [1] * 16 + [1] * 4)
  names = np.array(['n'] + ['flood'] * 16 + ['rare'] * 4)
  np.testing.assert_allclose(
    evaluation.type_balanced_weights(labels, names, 0.0), 1.0
  )
  half = evaluation.type_balanced_weights(labels, names, 0.5)
  assert half[0] == 1.0
  # A row of a type 4 times rarer weighs sqrt(4) times more ...
  assert half[-1] / half[1] == pytest.approx(2.0)
  # ... and the attack rows keep their total weight.
  assert half[1:].sum() == pytest.approx(20.0)
  full = evaluation.type_balanced_weights(labels, names, 1.0)
  assert full[1:17].sum() == pytest.approx(full[17:].sum())


def test_weights_move_the_max_f1_threshold():
  # A common attack type scores high, a rare one low; normal rows between.
  labels = np.array([1] * 8 + [0] * 4 + [1] * 2)
  probs = np.array([0.9] * 8 + [0.4] * 4 + [0.2] * 2)
  names = np.array(['flood'] * 8 + ['normal'] * 4 + ['rare'] * 2)
  plain = evaluation.choose_threshold(labels, probs)
  weights = evaluation.type_balanced_weights(labels, names)
  balanced = evaluation.choose_threshold(labels, probs, weights=weights)
  # Unweighted, catching the rare type is not worth four false alarms
  # (F1 0.89 against 0.83); with the types weighted equally it is
  # (F1 0.67 against 0.83).
  assert 0.4 < plain <= 0.9
  assert 0 < balanced <= 0.2
  with pytest.raises(ValueError, match='weights'):
    evaluation.choose_threshold(labels, probs, weights=-weights)


def _typed_scores(rng):
  """Normal rows and three attack types, scores on a coarse grid (ties)."""
  names = np.array(
    ['normal'] * 60 + ['flood'] * 30 + ['probe'] * 20 + ['r2l'] * 10
  )
  labels = (names != 'normal').astype(int)
  centre = {'normal': 0.2, 'flood': 0.8, 'probe': 0.5, 'r2l': 0.25}
  probs = np.array([centre[n] for n in names]) + rng.normal(0, 0.15, names.size)
  return labels, np.round(np.clip(probs, 0, 1), 1), names


def test_by_attack_type_splits_the_missing_auc_exactly():
  labels, probs, names = _typed_scores(np.random.default_rng(0))
  rows = evaluation.by_attack_type(
    labels, probs, names, threshold=0.5, seen=['flood', 'probe']
  )
  assert [r['attack'] for r in rows][0] == 'r2l'
  lost = [r['roc_auc_lost'] for r in rows]
  assert lost == sorted(lost, reverse=True)
  assert sum(lost) == pytest.approx(1 - skm.roc_auc_score(labels, probs))
  for r in rows:
    keep = (names == 'normal') | (names == r['attack'])
    assert r['roc_auc_vs_normal'] == pytest.approx(
      skm.roc_auc_score(labels[keep], probs[keep])
    )
    mine = probs[names == r['attack']]
    assert r['rows'] == mine.size
    assert r['detection_rate'] == pytest.approx(np.mean(mine >= 0.5))
    assert r['seen_in_training'] == (r['attack'] != 'r2l')
  json.dumps(rows)


def test_by_attack_type_needs_both_classes():
  labels, probs, names = _typed_scores(np.random.default_rng(1))
  attacks = labels == 1
  assert (
    evaluation.by_attack_type(
      labels[attacks], probs[attacks], names[attacks], threshold=0.5
    )
    == []
  )
  with pytest.raises(ValueError, match='differ in length'):
    evaluation.by_attack_type(labels, probs, names[:-1], threshold=0.5)


def test_types_even_roc_auc_is_the_mean_of_each_types_auc():
  labels, probs, names = _typed_scores(np.random.default_rng(3))
  rows = evaluation.by_attack_type(labels, probs, names, threshold=0.5)
  even = evaluation.types_even_roc_auc(labels, probs, names)
  assert even == pytest.approx(np.mean([r['roc_auc_vs_normal'] for r in rows]))
  # The row-weighted AUC leans towards the most common type; this does not.
  assert abs(even - skm.roc_auc_score(labels, probs)) > 0.01
  attacks = labels == 1
  assert (
    evaluation.types_even_roc_auc(
      labels[attacks], probs[attacks], names[attacks]
    )
    is None
  )
  with pytest.raises(ValueError, match='differ in length'):
    evaluation.types_even_roc_auc(labels, probs, names[:-1])


def test_format_report_lists_attack_types_by_auc_lost():
  labels, probs, names = _typed_scores(np.random.default_rng(2))
  entry = evaluation.evaluate_test_set(labels, probs, threshold=0.5)
  entry['by_attack_type'] = evaluation.by_attack_type(
    labels, probs, names, threshold=0.5, seen=['flood']
  )
  text = evaluation.format_report({'test': {'held out': entry}})
  lines = text.splitlines()
  head = lines.index(
    '  By attack type, largest share of the missing ROC AUC first:'
  )
  first = entry['by_attack_type'][0]
  assert lines[head + 2].split()[0] == first['attack']
  assert 'AUC lost to types unseen in training' in lines[head + 5]
  assert max(map(len, lines)) <= evaluation.WIDTH
