"""Metrics, threshold choice and a text report for binary classifiers.

Labels are 0 for normal traffic and 1 for attacks; scores are attack
probabilities. Everything returned is plain Python, ready for `json.dumps`;
writing files is left to the caller.
"""

import math
import textwrap

import numpy as np
from sklearn import metrics as skm

CLASS_NAMES = ('normal', 'attack')
THRESHOLD_METHODS = ('max_f1', 'fixed')
# Keeps log loss finite when a model is certain and wrong.
LOG_LOSS_EPS = 1e-7
WIDTH = 80

# Values copied from the chosen-threshold metrics to the top of a test entry.
HEADLINE_KEYS = (
  'accuracy',
  'balanced_accuracy',
  'roc_auc',
  'pr_auc',
  'f1',
  'precision',
  'detection_rate',
  'false_alarm_rate',
  'confusion_matrix',
  'threshold',
  'num_rows',
)


def _check_inputs(labels, probs):
  """Returns labels and probs as 1-D arrays after checking them."""
  labels = np.asarray(labels).reshape(-1)
  probs = np.asarray(probs).reshape(-1)
  if labels.shape != probs.shape:
    raise ValueError(
      f'labels and probs differ in length: {labels.size} vs {probs.size}.'
    )
  if labels.size == 0:
    raise ValueError('labels and probs are empty.')
  if not np.all(np.isin(labels, (0, 1))):
    raise ValueError('labels must contain only 0 (normal) and 1 (attack).')
  if not np.issubdtype(probs.dtype, np.floating):
    probs = probs.astype(np.float64)
  if not np.all(np.isfinite(probs)):
    bad = int(np.sum(~np.isfinite(probs)))
    raise ValueError(f'probs holds {bad} non-finite value(s).')
  if probs.min() < 0 or probs.max() > 1:
    raise ValueError('probs must lie in [0, 1]; were logits passed?')
  return labels.astype(np.int64), probs


def _check_names(attack_names, labels):
  """Returns the attack names as a 1-D string array as long as `labels`."""
  names = np.asarray(attack_names).astype(str).reshape(-1)
  if names.shape != labels.shape:
    raise ValueError(
      f'attack_names and labels differ in length: {names.size} vs'
      f' {labels.size}.'
    )
  return names


def _to_builtin(value):
  """Converts numpy scalars and arrays inside containers to Python types."""
  if isinstance(value, dict):
    return {str(k): _to_builtin(v) for k, v in value.items()}
  if isinstance(value, (list, tuple, np.ndarray)):
    return [_to_builtin(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


def _ratio(num, den):
  """Returns num / den, or 0.0 when den is zero (sklearn's zero_division=0)."""
  return float(num) / float(den) if den else 0.0


def binary_metrics(labels, probs, *, threshold: float) -> dict:
  """Computes classification metrics with attacks predicted at `threshold`.

  Args:
    labels: 0/1 array, 1 for attacks.
    probs: attack probabilities in [0, 1], same length as `labels`.
    threshold: a row is predicted as an attack when its prob is >= this.

  Returns:
    A JSON-serialisable dict. `roc_auc` and `pr_auc` are None when only one
    class occurs in `labels`; ratios with a zero denominator are 0.0.
  """
  labels, probs = _check_inputs(labels, probs)
  threshold = float(threshold)
  if not math.isfinite(threshold):
    raise ValueError(f'threshold must be finite, got {threshold}.')
  # Compare in float64 so a threshold between two float32 scores keeps them
  # on the sides it was chosen for.
  preds = (probs.astype(np.float64) >= threshold).astype(np.int64)
  cm = skm.confusion_matrix(labels, preds, labels=[0, 1])
  (tn, fp), (fn, tp) = cm.tolist()
  precision = _ratio(tp, tp + fp)
  recall = _ratio(tp, tp + fn)
  specificity = _ratio(tn, tn + fp)
  # Balanced accuracy averages recall over the classes that occur, as
  # sklearn does, without its warning when one class is missing.
  present = [r for r, n in ((recall, tp + fn), (specificity, tn + fp)) if n]
  both_classes = len(present) == 2
  roc_auc = skm.roc_auc_score(labels, probs) if both_classes else None
  pr_auc = skm.average_precision_score(labels, probs) if both_classes else None
  clipped = np.clip(probs.astype(np.float64), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
  report = skm.classification_report(
    labels,
    preds,
    labels=[0, 1],
    target_names=list(CLASS_NAMES),
    output_dict=True,
    zero_division=0,
  )
  out = {
    'threshold': threshold,
    'num_rows': int(labels.size),
    'num_attacks': int(tp + fn),
    'accuracy': _ratio(tp + tn, labels.size),
    'balanced_accuracy': float(np.mean(present)),
    'precision': precision,
    'recall': recall,
    'f1': _ratio(2 * tp, 2 * tp + fp + fn),
    'detection_rate': recall,
    'false_alarm_rate': _ratio(fp, fp + tn),
    'roc_auc': roc_auc,
    'pr_auc': pr_auc,
    'log_loss': float(skm.log_loss(labels, clipped, labels=[0, 1])),
    'confusion_matrix': [[tn, fp], [fn, tp]],
    'classification_report': report,
  }
  return _to_builtin(out)


def _max_f1_threshold(labels, probs, weights=None):
  """Returns the threshold in (0, 1] with the highest F1 on these scores."""
  precision, recall, scores = skm.precision_recall_curve(
    labels, probs, sample_weight=weights, drop_intermediate=False
  )
  # The last precision/recall pair (predict nothing) has no threshold.
  precision, recall = precision[:-1], recall[:-1]
  denom = precision + recall
  f1 = np.divide(
    2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0
  )
  # A score of 0 can only be flagged by a threshold of 0, which is not
  # allowed, so those cut points are out of reach.
  f1 = np.where(scores > 0, f1, -1.0)
  if f1.max() < 0:
    raise ValueError('all probs are 0; no threshold in (0, 1] flags any row.')
  # Among (near) ties, the highest cut point: the same F1 with fewer alarms.
  best = int(np.flatnonzero(f1 >= f1.max() - 1e-12)[-1])
  hi = scores[best]
  lo = scores[best - 1] if best > 0 else hi.dtype.type(0)
  # Any value in (lo, hi] gives the same predictions; the midpoint leaves
  # room on both sides for scores of unseen rows. Fall back to hi where the
  # midpoint rounds onto lo in the scores' own precision.
  mid = (float(lo) + float(hi)) / 2
  return mid if hi.dtype.type(mid) > lo else float(hi)


def type_balanced_weights(labels, attack_names, power=1.0):
  """Row weights that even out how much each attack type counts.

  Normal rows weigh 1. An attack type with `n` rows weighs `n ** -power` a
  row, scaled so that the attack rows keep their total weight: `power` 0
  changes nothing, 1 makes a rare attack type count as much as a flood.
  """
  labels = np.asarray(labels).reshape(-1)
  names = np.asarray(attack_names).astype(str).reshape(-1)
  weights = np.ones(labels.shape, np.float64)
  attacks = labels == 1
  _, inverse, counts = np.unique(
    names[attacks], return_inverse=True, return_counts=True
  )
  if len(counts):
    per_row = counts.astype(np.float64) ** -power
    scale = attacks.sum() / np.sum(counts * per_row)
    weights[attacks] = scale * per_row[inverse]
  return weights


def types_even_roc_auc(labels, probs, attack_names):
  """ROC AUC with every attack type counting alike, however many rows it has.

  The rows are weighted by `type_balanced_weights` at power 1, which makes
  this the mean over attack types of each type's ROC AUC against all the
  normal rows. None when `labels` lacks normal or attack rows.
  """
  labels, probs = _check_inputs(labels, probs)
  names = _check_names(attack_names, labels)
  if labels.min() == labels.max():
    return None
  weights = type_balanced_weights(labels, names)
  return float(skm.roc_auc_score(labels, probs, sample_weight=weights))


def by_attack_type(labels, probs, attack_names, *, threshold, seen=None):
  """How each attack type is detected, and its share of the missing ROC AUC.

  A test set's ROC AUC is the mean, over its attack types weighted by their
  rows, of each type's AUC against all normal rows. So `1 - roc_auc` splits
  exactly into one share per type, `(1 - roc_auc_vs_normal) * rows /
  attacks`: the types with the largest shares are where ranking fails.

  Args:
    labels: 0 (normal) or 1 (attack) per row.
    probs: attack probability per row.
    attack_names: the attack type of each row (ignored for normal rows).
    threshold: the decision threshold for `detection_rate`.
    seen: the attack types that training showed, or None if unknown.

  Returns:
    One dict per attack type, the largest share of missing AUC first; an
    empty list when the set lacks normal or attack rows.
  """
  labels, probs = _check_inputs(labels, probs)
  names = _check_names(attack_names, labels)
  normal = np.sort(probs[labels == 0])
  attacks = labels == 1
  if not normal.size or not attacks.any():
    return []
  # Per attack row: the normal rows it outranks, ties counting a half.
  below = np.searchsorted(normal, probs, side='left')
  ties = np.searchsorted(normal, probs, side='right') - below
  wins = (below + 0.5 * ties) / normal.size
  seen = None if seen is None else {str(n) for n in seen}
  rows = []
  for name in np.unique(names[attacks]):
    mask = attacks & (names == name)
    auc = float(np.mean(wins[mask]))
    row = {
      'attack': str(name),
      'rows': int(mask.sum()),
      'detection_rate': float(np.mean(probs[mask] >= threshold)),
      'median_prob': float(np.median(probs[mask])),
      'roc_auc_vs_normal': auc,
      'roc_auc_lost': (1 - auc) * mask.sum() / attacks.sum(),
    }
    if seen is not None:
      row['seen_in_training'] = str(name) in seen
    rows.append(row)
  rows.sort(key=lambda r: (-r['roc_auc_lost'], r['attack']))
  return _to_builtin(rows)


def choose_threshold(
  labels,
  probs,
  *,
  method: str = 'max_f1',
  fixed_value: float = 0.5,
  weights=None,
) -> float:
  """Picks the decision threshold from training-side predictions.

  Args:
    labels: 0/1 array, 1 for attacks; out-of-fold labels of the training
      rows, never the test rows.
    probs: attack probabilities aligned with `labels`.
    method: 'max_f1' for the threshold with the highest F1 on these rows,
      'fixed' for `fixed_value`.
    fixed_value: threshold returned by the 'fixed' method.
    weights: optional row weights for 'max_f1' (weighted counts in F1).

  Returns:
    A float in (0, 1]. For 'max_f1' it is the midpoint between the lowest
    score flagged as an attack and the next lower distinct score (or 0), so
    it flags exactly the rows the best cut point flags on these scores.
  """
  if method not in THRESHOLD_METHODS:
    raise ValueError(
      f'unknown threshold method {method!r}; use one of {THRESHOLD_METHODS}.'
    )
  if method == 'fixed':
    value = float(fixed_value)
    if not 0 < value <= 1:
      raise ValueError(f'fixed_value must be in (0, 1], got {value}.')
    return value
  labels, probs = _check_inputs(labels, probs)
  if not labels.any():
    raise ValueError('max_f1 needs at least one attack in labels.')
  if weights is not None:
    weights = np.asarray(weights, np.float64).reshape(-1)
    if weights.shape != labels.shape or not np.all(weights >= 0):
      raise ValueError('weights must be non-negative, one per row.')
  return _max_f1_threshold(labels, probs, weights)


def evaluate_test_set(labels, probs, *, threshold: float) -> dict:
  """Computes metrics at the chosen threshold and at 0.5 for one test set."""
  chosen = binary_metrics(labels, probs, threshold=threshold)
  at_half = binary_metrics(labels, probs, threshold=0.5)
  out = {key: chosen[key] for key in HEADLINE_KEYS}
  out['at_threshold'] = chosen
  out['at_0.5'] = at_half
  return out


def _num(value, spec='.4f'):
  """Formats a number, or 'n/a' for a missing or non-numeric value."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return 'n/a'
  return format(value, spec)


def _clip(line):
  """Shortens a line to the report width, marking the cut with '...'."""
  return line if len(line) <= WIDTH else line[: WIDTH - 3] + '...'


def _wrap(title, items):
  """Lays out 'name value' items after a title, wrapped to the width."""
  text = f'{title}: ' + ', '.join(items) if items else f'{title}: n/a'
  return textwrap.wrap(text, WIDTH, subsequent_indent='  ')


def _scalars(mapping):
  """Returns 'key value' strings for the scalar entries of a mapping."""
  return [
    f'{k} {v}'
    for k, v in (mapping or {}).items()
    if isinstance(v, (str, int, float, bool))
  ]


def _fold_lines(cv, split='n/a'):
  """Returns the per-fold table of one split mode's cross-validation."""
  folds = cv.get('folds') or []
  splitter = cv.get('splitter', 'n/a')
  lines = [
    f'Cross-validation, {split} split: {splitter}, {len(folds)} folds',
    f'  (its own threshold would be {_num(cv.get("threshold"))})',
  ]
  head = f'{"fold":>4}  {"best epoch":>10}  {"epochs":>6}  {"val loss":>8}'
  lines.append(head + f'  {"ROC AUC":>7}  {"F1":>6}  {"accuracy":>8}')
  for f in folds:
    lines.append(
      f'{_num(f.get("fold"), "d"):>4}  {_num(f.get("best_epoch"), "d"):>10}'
      f'  {_num(f.get("epochs_run"), "d"):>6}'
      f'  {_num(f.get("best_val_loss")):>8}  {_num(f.get("roc_auc")):>7}'
      f'  {_num(f.get("f1")):>6}  {_num(f.get("accuracy")):>8}'
    )
  oof = cv.get('oof')
  if oof:
    lines.append(
      f'Out-of-fold: ROC AUC {_num(oof.get("roc_auc"))}'
      f'  PR AUC {_num(oof.get("pr_auc"))}  F1 {_num(oof.get("f1"))}'
      f'  accuracy {_num(oof.get("accuracy"))}'
    )
    if oof.get('roc_auc_types_even') is not None:
      lines.append(
        '  ROC AUC with every attack type counting alike'
        f' {_num(oof["roc_auc_types_even"])}'
      )
  return lines


_SIDE_BY_SIDE = (
  ('accuracy', 'accuracy'),
  ('balanced accuracy', 'balanced_accuracy'),
  ('ROC AUC', 'roc_auc'),
  ('PR AUC', 'pr_auc'),
  ('precision', 'precision'),
  ('F1', 'f1'),
  ('detection rate', 'detection_rate'),
  ('false-alarm rate', 'false_alarm_rate'),
)


def _comparison_lines(chosen, at_half):
  """Returns the headline metrics at the chosen threshold and at 0.5."""
  cols = [('at ' + _num(chosen.get('threshold')), chosen)]
  if at_half:
    cols.append(('at 0.5', at_half))
  lines = [f'  {"metric":<18}' + ''.join(f'{c:>12}' for c, _ in cols)]
  for label, key in _SIDE_BY_SIDE:
    vals = ''.join(f'{_num(m.get(key)):>12}' for _, m in cols)
    lines.append(f'  {label:<18}{vals}')
  return lines


def _confusion_lines(cm):
  """Lays out [[tn, fp], [fn, tp]] with row and column labels."""
  if not cm:
    return []
  lines = [f'  {"":<13}{"pred normal":>13}{"pred attack":>13}']
  for name, row in zip(CLASS_NAMES, cm, strict=False):
    cells = ''.join(f'{_num(n, "d"):>13}' for n in row)
    lines.append(f'  {"true " + name:<13}{cells}')
  return lines


def _class_report_lines(report):
  """Renders sklearn's classification report dict as a text table."""
  if not report:
    return []
  head = ''.join(f'{c:>11}' for c in ('precision', 'recall', 'f1-score'))
  lines = [f'  {"":<13}{head}{"support":>10}']
  for name, row in report.items():
    if isinstance(row, dict):
      cells = ''.join(
        f'{_num(row.get(k)):>11}' for k in ('precision', 'recall', 'f1-score')
      )
      support = _num(row.get('support'), '.0f')
      lines.append(f'  {name[:13]:<13}{cells}{support:>10}')
    else:
      # sklearn stores overall accuracy as a bare number under the f1 column.
      lines.append(f'  {name[:13]:<13}{"":>22}{_num(row):>11}')
  return lines


def _test_lines(name, entry):
  """Returns the block of one test set."""
  chosen = entry.get('at_threshold') or entry
  rows = _num(chosen.get('num_rows'), 'd')
  attacks = _num(chosen.get('num_attacks'), 'd')
  lines = [_clip(f'Test set {name}: {rows} rows, {attacks} attacks')]
  lines += _comparison_lines(chosen, entry.get('at_0.5'))
  thr = _num(chosen.get('threshold'))
  cm = _confusion_lines(chosen.get('confusion_matrix'))
  if cm:
    lines += [f'  Confusion matrix at {thr}:'] + cm
  report = _class_report_lines(chosen.get('classification_report'))
  if report:
    lines += [f'  Classification report at {thr}:'] + report
  lines += attack_type_lines(entry.get('by_attack_type'))
  return lines


def auc_lost_unseen_seen(rows):
  """`(unseen, seen)`: the AUC that `by_attack_type` rows lose, by novelty.

  The first sums the shares of types that training never showed, the
  second of those it did; both are None unless every row says which.
  """
  if not rows or any('seen_in_training' not in r for r in rows):
    return None, None
  unseen = sum(r['roc_auc_lost'] for r in rows if not r['seen_in_training'])
  seen = sum(r['roc_auc_lost'] for r in rows if r['seen_in_training'])
  return unseen, seen


def attack_type_lines(rows, shown=8):
  """Returns text lines for `by_attack_type` rows, the first `shown` named."""
  if len(rows or ()) < 2:  # One type is the test set as a whole.
    return []
  unseen, known = auc_lost_unseen_seen(rows)
  has_seen = unseen is not None
  lines = [
    '  By attack type, largest share of the missing ROC AUC first:',
    f'  {"attack":<16}{"rows":>7}{"seen":>6}{"detected":>10}'
    f'{"median p":>10}{"AUC vs normal":>15}{"AUC lost":>10}',
  ]
  for r in rows[:shown]:
    seen = ('yes' if r['seen_in_training'] else 'no') if has_seen else '?'
    lines.append(
      f'  {r["attack"][:15]:<16}{r["rows"]:>7}{seen:>6}'
      f'{_num(r["detection_rate"]):>10}{_num(r["median_prob"]):>10}'
      f'{_num(r["roc_auc_vs_normal"]):>15}{_num(r["roc_auc_lost"]):>10}'
    )
  rest = rows[shown:]
  if rest:
    lost = sum(r['roc_auc_lost'] for r in rest)
    lines.append(f'  ... {len(rest)} more types, {_num(lost)} of AUC lost')
  if has_seen:
    lines.append(
      f'  AUC lost to types unseen in training {_num(unseen)}, to seen'
      f' types {_num(known)}'
    )
  return lines


def _timing_items(timing):
  """Returns 'name 1.2 s' strings, the usual stages first."""
  order = ['compile_s', 'train_s', 'total_s']
  keys = [k for k in order if k in timing]
  keys += [k for k in timing if k not in order]
  return [
    f'{k.removesuffix("_s")} {_num(timing[k], ".1f")} s'
    for k in keys
    if isinstance(timing[k], (int, float))
  ]


def format_report(report: dict) -> str:
  """Formats a run report as text no wider than 80 columns.

  Args:
    report: the run report; any section may be missing.

  Returns:
    The text, lines joined with newlines, ending without one.
  """
  lines = [_clip(f'Run: {report.get("config_name", "n/a")}')]
  if report.get('data'):
    lines += _wrap('Data', _scalars(report['data']))
  method = report.get('threshold_method', 'n/a')
  if report.get('threshold_from'):
    method += f' on {report["threshold_from"]} out-of-fold predictions'
  lines.append(_clip(f'Threshold: {_num(report.get("threshold"))} ({method})'))
  if report.get('final_model'):
    members = _num(report.get('ensemble_members'), 'd')
    lines.append(
      _clip(
        f'Final model: {report["final_model"]} of the'
        f' {report.get("model_split", "n/a")} folds ({members} members)'
      )
    )
  novelty = report.get('novelty')
  if novelty:
    lines.append(
      f'Novelty: weight {novelty["weight"]:g}, {novelty["centroids"]}'
      " centroids of each model's normal training rows"
    )
  cv = report.get('cv') or {}
  for name, split in (cv.get('splits') or {}).items():
    lines += [''] + _fold_lines(split, name)
  for name, entry in (report.get('test') or {}).items():
    lines += [''] + _test_lines(name, entry)
  lines.append('')
  if report.get('timing'):
    lines += _wrap('Timing', _timing_items(report['timing']))
  ckpt = report.get('checkpoint')
  if ckpt:
    diff = _num(ckpt.get('max_abs_diff'), '.2e')
    lines.append(f'Checkpoint restore: max abs diff {diff}')
    lines.append(_clip(f'  {ckpt.get("path", "n/a")}'))
  if report.get('versions'):
    lines += _wrap('Versions', _scalars(report['versions']))
  return '\n'.join(_clip(line) for line in lines).rstrip('\n')
