"""PNG figures of a finished run and of an ablation sweep.

Figures are drawn with matplotlib's object API on the Agg canvas, so no
display and no pyplot state are involved. Labels are 0 for normal traffic
and 1 for attacks; scores are attack probabilities.
"""

import json
import math
import pathlib
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn import metrics as skm

DPI = 110
# Figure sizes in inches; at DPI they give whole pixel counts.
ROC_PR_SIZE = (10, 4)
CONFUSION_SIZE = (5, 4)
CURVE_PANEL_SIZE = (5, 3.6)
CURVE_COLUMNS = 3
SWEEP_COLUMNS = 3
# The phase whose epochs come after each warm-up phase on the x axis.
MAIN_PHASE = {'warmup': 'train', 'refit_warmup': 'refit_train'}
DEFAULT_SPLIT = 'random'
# Out-of-fold curves, drawn lightly behind the test curve.
OOF_STYLE = {'ls': '--', 'lw': 1, 'alpha': 0.6}


def _safe_name(name):
  """Returns `name` usable in a file name: '+' as 'plus', others as '_'."""
  return re.sub(r'[^A-Za-z0-9_-]', '_', str(name).replace('+', 'plus'))


def _new_figure(size):
  """Returns an empty figure on an Agg canvas with a constrained layout."""
  fig = Figure(figsize=size, dpi=DPI, layout='constrained')
  FigureCanvasAgg(fig)
  return fig


def _save(fig, path):
  """Writes `fig` as a PNG at `path` and returns the path."""
  path = pathlib.Path(path)
  fig.savefig(path, format='png', dpi=DPI)
  return path


def _grid(fig, count, columns, **kwargs):
  """Returns `count` axes in a grid at most `columns` wide; hides the rest."""
  cols = min(count, columns)
  rows = math.ceil(count / cols)
  axes = fig.subplots(rows, cols, squeeze=False, **kwargs).ravel()
  for ax in axes[count:]:
    ax.set_visible(False)
  return list(axes[:count])


def _read_predictions(path):
  """Returns {'test': {name: (labels, probs)}, 'oof': {split: ...}}."""
  out = {'test': {}, 'oof': {}}
  with np.load(path) as npz:
    for key in npz.files:
      kind, _, rest = key.partition('.')
      name, _, field = rest.rpartition('.')
      if kind in out and field == 'labels':
        probs = npz[f'{kind}.{name}.probs']
        out[kind][name] = (npz[key].astype(np.int64), probs)
  return out


def _read_records(path):
  """Returns the epoch records of a metrics.jsonl file."""
  lines = pathlib.Path(path).read_text().splitlines()
  return [json.loads(line) for line in lines if line.strip()]


def _both_classes(labels):
  """Whether `labels` holds both normal rows and attacks."""
  return 0 < int(labels.sum()) < labels.size


def _operating_point(labels, probs, threshold):
  """Returns (fpr, tpr, precision) when predicting attack at probs >= t."""
  preds = probs.astype(np.float64) >= threshold
  tp = int(np.sum(preds & (labels == 1)))
  fp = int(np.sum(preds & (labels == 0)))
  attacks = int(labels.sum())
  fpr = fp / (labels.size - attacks)
  tpr = tp / attacks
  precision = tp / (tp + fp) if tp + fp else math.nan
  return fpr, tpr, precision


def _draw_curves(roc_ax, pr_ax, labels, probs, label, **style):
  """Draws the ROC and precision-recall curves of one set of scores."""
  fpr, tpr, _ = skm.roc_curve(labels, probs)
  precision, recall, _ = skm.precision_recall_curve(labels, probs)
  auc = skm.roc_auc_score(labels, probs)
  ap = skm.average_precision_score(labels, probs)
  roc_ax.plot(fpr, tpr, label=f'{label} (AUC {auc:.3f})', **style)
  pr_ax.plot(recall, precision, label=f'{label} (AP {ap:.3f})', **style)


def _draw_points(roc_ax, pr_ax, labels, probs, threshold):
  """Marks the chosen threshold and 0.5 on both curves."""
  marks = (
    (threshold, dict(marker='o', color='C3', ms=7)),
    (0.5, dict(marker='s', color='k', mfc='none', ms=7)),
  )
  for t, style in marks:
    fpr, tpr, precision = _operating_point(labels, probs, t)
    name = f'threshold {t:.3g}'
    roc_ax.plot([fpr], [tpr], ls='none', label=name, **style)
    if not math.isnan(precision):
      pr_ax.plot([tpr], [precision], ls='none', label=name, **style)


def roc_pr_figure(name, labels, probs, threshold, oof=None):
  """Returns a figure with the ROC and PR curves of one test set."""
  fig = _new_figure(ROC_PR_SIZE)
  roc_ax, pr_ax = fig.subplots(1, 2)
  for i, (split, (oof_labels, oof_probs)) in enumerate((oof or {}).items()):
    if _both_classes(oof_labels):
      style = dict(OOF_STYLE, color=f'C{i + 1}')
      _draw_curves(
        roc_ax, pr_ax, oof_labels, oof_probs, f'OOF {split}', **style
      )
  _draw_curves(roc_ax, pr_ax, labels, probs, name, color='C0', lw=1.8)
  _draw_points(roc_ax, pr_ax, labels, probs, threshold)
  roc_ax.plot([0, 1], [0, 1], color='0.7', ls=':', lw=1)
  pr_ax.axhline(labels.mean(), color='0.7', ls=':', lw=1)
  roc_ax.set(
    xlabel='false alarm rate', ylabel='detection rate', title=f'ROC, {name}'
  )
  pr_ax.set(
    xlabel='recall', ylabel='precision', title=f'precision-recall, {name}'
  )
  for ax in (roc_ax, pr_ax):
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(
      fontsize='small', loc='lower right' if ax is roc_ax else 'lower left'
    )
  return fig


def _x_positions(records):
  """Sets each record's x, warm-up epochs first; returns the warm-up span."""
  warmup = {}
  for r in records:
    if r['phase'] in MAIN_PHASE:
      warmup[r['phase']] = max(warmup.get(r['phase'], 0), r['epoch'])
  offset = {main: warmup.get(w, 0) for w, main in MAIN_PHASE.items()}
  for r in records:
    r['x'] = r['epoch'] + offset.get(r['phase'], 0)
  return max(warmup.values(), default=0)


def _panel_key(record):
  """Returns (refit, split): cross-validation and refit epochs apart."""
  refit = record['phase'].startswith('refit_')
  return refit, record.get('split', DEFAULT_SPLIT)


def _draw_losses(ax, records):
  """Draws one panel: per-fold losses with the warm-up epochs shaded."""
  span = _x_positions(records)
  if span:
    ax.axvspan(0.5, span + 0.5, color='0.92', label='warm-up')
  folds = sorted({r['fold'] for r in records})
  for fold in folds:
    mine = sorted(
      (r for r in records if r['fold'] == fold), key=lambda r: r['x']
    )
    color = f'C{fold % 10}'
    ax.plot(
      [r['x'] for r in mine],
      [r['train_loss'] for r in mine],
      color=color,
      ls='--',
      lw=1,
      alpha=0.55,
    )
    val = [r for r in mine if 'val_loss' in r]
    ax.plot(
      [r['x'] for r in val],
      [r['val_loss'] for r in val],
      color=color,
      lw=1.5,
      label=f'fold {fold}',
    )
  ax.plot([], [], color='0.3', lw=1.5, label='validation')
  ax.plot([], [], color='0.3', ls='--', lw=1, alpha=0.55, label='training')
  ax.set(xlabel='epoch', ylabel='loss')
  ax.grid(alpha=0.3)
  ax.legend(fontsize='x-small', ncols=2)


def learning_curves_figure(records):
  """Returns a figure of losses per epoch and fold, a panel per split.

  Records of epochs after a fold stopped (`active` False) are left out.
  """
  panels = {}
  for r in records:
    if not r.get('active', True):
      continue
    panels.setdefault(_panel_key(r), []).append(dict(r))
  keys = sorted(panels, key=lambda k: k[0])
  refit_splits = {split for refit, split in keys if refit}
  cols = min(len(keys), CURVE_COLUMNS)
  rows = math.ceil(len(keys) / cols)
  width, height = CURVE_PANEL_SIZE
  fig = _new_figure((width * cols, height * rows))
  for ax, key in zip(_grid(fig, len(keys), CURVE_COLUMNS), keys, strict=True):
    refit, split = key
    _draw_losses(ax, panels[key])
    if not refit:
      ax.set_title(f'cross-validation, {split} split')
    else:
      ax.set_title('refit' + (f', {split}' if len(refit_splits) > 1 else ''))
  return fig


def confusion_figure(name, metrics):
  """Returns a 2x2 heat map of counts and row shares at one threshold."""
  # binary_metrics stores the counts as [[tn, fp], [fn, tp]].
  counts = np.asarray(metrics['confusion_matrix'], dtype=np.int64)
  totals = counts.sum(axis=1, keepdims=True)
  shares = np.divide(
    counts, totals, out=np.zeros(counts.shape), where=totals > 0
  )
  fig = _new_figure(CONFUSION_SIZE)
  ax = fig.subplots()
  image = ax.imshow(shares, cmap='Blues', vmin=0, vmax=1)
  for (i, j), count in np.ndenumerate(counts):
    color = 'white' if shares[i, j] > 0.5 else 'black'
    text = f'{count:,}\n{100 * shares[i, j]:.1f}%'
    ax.text(j, i, text, ha='center', va='center', color=color)
  ticks = ['normal', 'attack']
  ax.set_xticks([0, 1], ticks)
  ax.set_yticks([0, 1], ticks)
  ax.set(xlabel='predicted', ylabel='true')
  ax.set_title(f'{name}, threshold {metrics["threshold"]:.3g}')
  fig.colorbar(image, ax=ax, label='share of the true class')
  return fig


def write_run_plots(workdir) -> list[pathlib.Path]:
  """Writes the PNG figures of a finished run into its workdir.

  Reads `report.json`, `predictions.npz` and `metrics.jsonl`; a missing
  file only leaves out the figures that need it. Writes `roc_pr_<test>.png`
  per test set with predictions, `learning_curves.png`, and
  `confusion_<test>.png` per test set in the report.

  Args:
    workdir: directory of a finished run.

  Returns:
    The paths of the PNG files written.
  """
  workdir = pathlib.Path(workdir)
  report_path = workdir / 'report.json'
  report = None
  if report_path.is_file():
    report = json.loads(report_path.read_text())
  written = []
  preds_path = workdir / 'predictions.npz'
  if report is not None and preds_path.is_file():
    preds = _read_predictions(preds_path)
    for name, (labels, probs) in preds['test'].items():
      if not _both_classes(labels):
        continue
      fig = roc_pr_figure(
        name, labels, probs, report['threshold'], oof=preds['oof']
      )
      written.append(_save(fig, workdir / f'roc_pr_{_safe_name(name)}.png'))
  metrics_path = workdir / 'metrics.jsonl'
  records = _read_records(metrics_path) if metrics_path.is_file() else []
  if any(r.get('active', True) for r in records):
    fig = learning_curves_figure(records)
    written.append(_save(fig, workdir / 'learning_curves.png'))
  for name, entry in (report or {}).get('test', {}).items():
    fig = confusion_figure(name, entry['at_threshold'])
    written.append(_save(fig, workdir / f'confusion_{_safe_name(name)}.png'))
  return written


def _as_floats(values, size, what):
  """Returns `values` as a float array of `size`, None read as NaN."""
  if values is None:
    return np.full(size, np.nan)
  out = np.array(
    [math.nan if v is None else float(v) for v in values], dtype=np.float64
  )
  if out.size != size:
    raise ValueError(f'{what} has {out.size} values for {size} names.')
  return out


def _draw_metric(ax, names, means, stds):
  """Draws one metric as points with error bars, zoomed to their spread.

  Names with no mean get no point. The axis spans the values (and their
  error bars) rather than starting at 0, so that differences of a few
  thousandths stay visible; a dashed line marks the first name's value.
  """
  rows = np.arange(len(names))
  shown = ~np.isnan(means)
  errors = np.where(np.isnan(stds), 0.0, stds)
  ax.errorbar(
    means[shown],
    rows[shown],
    xerr=errors[shown],
    fmt='o',
    color='C0',
    ecolor='0.25',
    capsize=3,
    lw=1,
  )
  for row, mean in zip(rows[shown], means[shown], strict=True):
    ax.annotate(
      f'{mean:.4g}',
      (mean, row),
      xytext=(0, 5),
      textcoords='offset points',
      ha='center',
      fontsize='x-small',
    )
  if shown[0]:
    ax.axvline(means[0], color='0.5', ls='--', lw=0.8)
  if shown.any():
    low = np.min((means - errors)[shown])
    high = np.max((means + errors)[shown])
    pad = max(high - low, 1e-3) * 0.15
    ax.set_xlim(low - pad, high + pad)
  ax.set_yticks(rows, names)
  ax.set_ylim(len(names) - 0.5, -0.5)
  ax.grid(axis='x', alpha=0.3)


def sweep_chart(names, metrics, path, *, title=''):
  """Writes a chart of an ablation table as a PNG: a panel per metric.

  Args:
    names: config names, one point per name in each panel; the first is
      the baseline that a dashed line marks.
    metrics: maps a metric label to `(means, stds)`, each aligned with
      `names`; a None or NaN mean draws no point, a None or NaN std no
      error bar.
    path: where to write the PNG.
    title: shown above all panels when given.

  Returns:
    The path written, as a `pathlib.Path`.
  """
  names = [str(n) for n in names]
  if not names or not metrics:
    raise ValueError('sweep_chart needs at least one name and one metric.')
  cols = min(len(metrics), SWEEP_COLUMNS)
  rows = math.ceil(len(metrics) / cols)
  height = rows * (0.8 + 0.3 * len(names)) + (0.4 if title else 0.0)
  fig = _new_figure((2.5 + 3.5 * cols, height))
  axes = _grid(fig, len(metrics), SWEEP_COLUMNS, sharey=True)
  for ax, (label, (means, stds)) in zip(axes, metrics.items(), strict=True):
    means = _as_floats(means, len(names), f'means of {label!r}')
    stds = _as_floats(stds, len(names), f'stds of {label!r}')
    _draw_metric(ax, names, means, stds)
    ax.set_title(label, fontsize='medium')
  if title:
    fig.suptitle(title)
  return _save(fig, path)
