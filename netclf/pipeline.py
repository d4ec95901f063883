"""Cross-validate, pick the final model and threshold, save, and evaluate."""

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import platform
import shutil
import time
from importlib import metadata

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from absl import logging

from netclf import checkpoints
from netclf import classifier as classifier_lib
from netclf import cross_validation as cv
from netclf import evaluation
from netclf import input_pipeline
from netclf import losses
from netclf import models
from netclf import novelty as novelty_lib
from netclf import plots
from netclf import preprocessing
from netclf import readers
from netclf import train as train_lib

FOLD_MODES = ('vmap', 'sequential')
# 'random': shuffled (optionally stratified) KFold; 'attack': whole attack
# types held out per fold, so validation sees attacks training never showed.
SPLIT_MODES = ('random', 'attack')
FINAL_MODELS = ('ensemble', 'refit')
# Largest difference allowed between in-memory and reloaded test scores.
RELOAD_TOLERANCE = 1e-6


class ConfigError(ValueError):
  """A config value that cannot work."""


def threshold_sources(splits):
  """Out-of-fold predictions a threshold can be chosen on.

  Each split mode's own; with 'attack', also 'attack_balanced': the same
  predictions with every attack type weighted equally.
  """
  sources = tuple(splits)
  if 'attack' in splits:
    sources += ('attack_balanced',)
  return sources


def validate_config(config):
  """Raises `ConfigError` on the first impossible value."""
  splits = tuple(config.cv.splits)
  checks = [
    (
      config.cv.folds >= 2,
      f'cv.folds must be at least 2, not {config.cv.folds}',
    ),
    (config.cv.mode in FOLD_MODES, f'cv.mode must be one of {FOLD_MODES}'),
    (
      config.cv.shrink in ('auto', 'always', 'never'),
      "cv.shrink must be 'auto', 'always' or 'never'",
    ),
    (
      len(splits) >= 1
      and len(set(splits)) == len(splits)
      and set(splits) <= set(SPLIT_MODES),
      f'cv.splits must name distinct split modes from {SPLIT_MODES},'
      f' not {splits}',
    ),
    (
      config.final.model_split in (*splits, 'all'),
      f'final.model_split must be one of cv.splits {splits} or "all",'
      f' not {config.final.model_split!r}',
    ),
    (
      config.final.threshold_from in threshold_sources(splits),
      f'final.threshold_from must be one of {threshold_sources(splits)}'
      f' (with these cv.splits), not {config.final.threshold_from!r}',
    ),
    (
      config.final.model in FINAL_MODELS,
      f'final.model must be one of {FINAL_MODELS}',
    ),
    (
      config.final.threshold in evaluation.THRESHOLD_METHODS,
      f'final.threshold must be one of {evaluation.THRESHOLD_METHODS}',
    ),
    (config.train.epochs >= 1, 'train.epochs must be at least 1'),
    (config.train.batch_size >= 1, 'train.batch_size must be at least 1'),
    (config.train.eval_batch_size >= 1, 'train.eval_batch_size must be >= 1'),
    (config.train.warmup_epochs >= 0, 'train.warmup_epochs must be >= 0'),
    (config.train.patience >= 1, 'train.patience must be at least 1'),
    (
      0 <= config.train.type_balance <= 1,
      f'train.type_balance must be in [0, 1], not {config.train.type_balance}',
    ),
    (config.checkpoint_every >= 0, 'checkpoint_every must be >= 0'),
    (config.keep_checkpoints >= 1, 'keep_checkpoints must be at least 1'),
    (config.optimizer.learning_rate > 0, 'optimizer.learning_rate must be > 0'),
    (config.optimizer.weight_decay >= 0, 'optimizer.weight_decay must be >= 0'),
    (
      len(config.model.widths) == len(config.model.dropouts),
      'model.widths and model.dropouts must have the same length',
    ),
    (
      all(w >= 1 for w in config.model.widths),
      'model.widths must be positive',
    ),
    (
      config.model.input_noise >= 0,
      f'model.input_noise must be >= 0, not {config.model.input_noise}',
    ),
    (
      config.final.novelty >= 0,
      f'final.novelty must be >= 0, not {config.final.novelty}',
    ),
    (
      config.final.novelty_centroids >= 1,
      'final.novelty_centroids must be at least 1',
    ),
    (
      config.final.novelty_rows >= config.final.novelty_centroids,
      'final.novelty_rows must be at least final.novelty_centroids',
    ),
    (config.loss.gamma >= 0, 'loss.gamma must be >= 0'),
    (
      config.loss.alpha is None or 0 < config.loss.alpha < 1,
      'loss.alpha must be in (0, 1) or None',
    ),
  ]
  rates = {
    'model.input_dropout': config.model.input_dropout,
    'train.warmup_input_dropout': config.train.warmup_input_dropout,
    **{f'model.dropouts[{i}]': r for i, r in enumerate(config.model.dropouts)},
  }
  for name, rate in rates.items():
    checks.append(
      (
        models.valid_dropout_rate(rate),
        f'{name} must be 0 or in [1/256, 255/256], not {rate}',
      )
    )
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)
  try:
    jnp.dtype(config.model.dtype)
  except TypeError:
    raise ConfigError(
      f'model.dtype {config.model.dtype!r} is unknown'
    ) from None
  try:
    losses.Loss(config.loss.name, config.loss.alpha, config.loss.gamma)
  except ValueError as e:
    raise ConfigError(f'loss.name: {e}') from None


def create_optimizer(config, steps_per_epoch):
  """Returns the optax optimizer that the config describes."""
  opt = config.optimizer
  lr = opt.learning_rate
  if opt.schedule == 'cosine':
    lr = optax.cosine_decay_schedule(lr, steps_per_epoch * config.train.epochs)
  elif opt.schedule != 'constant':
    raise ConfigError("optimizer.schedule must be 'constant' or 'cosine'")
  if opt.name == 'adam':
    return optax.adam(lr)
  if opt.name == 'adamw':
    return optax.adamw(lr, weight_decay=opt.weight_decay)
  raise ConfigError("optimizer.name must be 'adam' or 'adamw'")


def model_settings(config):
  """The model's keyword arguments as plain values, for checkpoints."""
  m = config.model
  return {
    'widths': [int(w) for w in m.widths],
    'dropouts': [float(r) for r in m.dropouts],
    'input_dropout': float(m.input_dropout),
    'input_noise': float(m.input_noise),
    'residual': bool(m.residual),
    'batch_norm': bool(m.batch_norm),
    'dtype': str(m.dtype),
  }


def train_settings(config, **overrides):
  t = config.train
  fields = {
    'epochs': t.epochs,
    'batch_size': t.batch_size,
    'eval_batch_size': t.eval_batch_size,
    'warmup_epochs': t.warmup_epochs,
    'warmup_input_dropout': t.warmup_input_dropout,
    'patience': t.patience,
    'min_delta': t.min_delta,
  }
  return cv.TrainSettings(**{**fields, **overrides})


def package_versions():
  names = (
    'jax',
    'jaxlib',
    'flax',
    'optax',
    'orbax-checkpoint',
    'ml-collections',
    'scikit-learn',
    'pandas',
    'numpy',
  )
  versions = {'python': platform.python_version()}
  for name in names:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def write_atomic(path, text):
  """Writes a file under a temporary name, then renames it into place."""
  path = pathlib.Path(path)
  tmp = path.with_name(f'.{path.name}.tmp')
  tmp.write_text(text)
  os.replace(tmp, path)


class EpochLogger:
  """Logs each epoch, appends it to metrics.jsonl and moves a progress bar."""

  def __init__(self, workdir, total, phase_prefix='', fold_names=None):
    self.fold_names = fold_names
    self.file = open(pathlib.Path(workdir) / 'metrics.jsonl', 'a')  # noqa: SIM115
    self.bar = tqdm.tqdm(
      total=total, desc='epochs', unit='epoch', leave=False, disable=None
    )
    self.prefix = phase_prefix

  def __call__(self, phase, epoch, folds, train_loss, val_loss, active):
    phase = self.prefix + phase
    for i, fold in enumerate(folds):
      split, number = ('random', int(fold))
      if self.fold_names is not None:
        split, number = self.fold_names[int(fold)]
      record = {
        'phase': phase,
        'epoch': epoch + 1,
        'split': split,
        'fold': number,
        'train_loss': float(train_loss[i]),
        'active': bool(active[i]),
      }
      if val_loss is not None:
        record['val_loss'] = float(val_loss[i])
      self.file.write(json.dumps(record) + '\n')
    self.file.flush()
    losses_text = ' '.join(
      f'{v:.4f}' if a else '-'
      for v, a in zip(
        train_loss if val_loss is None else val_loss, active, strict=True
      )
    )
    kind = 'train' if val_loss is None else 'val'
    logging.info(
      '%s epoch %d: %s loss per fold [%s], %d/%d folds training',
      phase,
      epoch + 1,
      kind,
      losses_text,
      int(np.sum(active)),
      len(folds),
    )
    self.bar.update(1)

  def close(self):
    """Closes the file, keeping the last record of each epoch and fold.

    A resumed run repeats the epochs after its last save; their second
    records replace the first.
    """
    self.bar.close()
    self.file.close()
    path = pathlib.Path(self.file.name)
    records = {}
    for line in path.read_text().splitlines():
      r = json.loads(line)
      key = (r['phase'], r['epoch'], r.get('split'), r['fold'])
      records[key] = line
    write_atomic(path, ''.join(line + '\n' for line in records.values()))


def check_folds(labels, splits, hint=''):
  """Raises `DataError` when a fold cannot be trained or validated."""
  for f, (train_rows, val_rows) in enumerate(splits):
    for part, rows in (('training', train_rows), ('validation', val_rows)):
      attacks = int(labels[rows].sum())
      if attacks == 0 or attacks == len(rows):
        missing = 'attacks' if attacks == 0 else 'normal rows'
        raise readers.DataError(
          f'fold {f} has no {missing} in its {part} rows{hint}'
        )


def make_splits(config, dataset):
  """Returns `{split mode: [(train_rows, val_rows)]}` for `cv.splits`."""
  c, labels = config.cv, dataset.labels
  splits = {}
  for mode in c.splits:
    if mode == 'random':
      splits[mode] = cv.split_folds(
        labels, c.folds, stratified=c.stratified, seed=c.seed
      )
      hint = '' if c.stratified else '; try --config.cv.stratified=True'
    else:
      if dataset.attack_names is None:
        raise readers.DataError(
          f'{dataset.name}: no attack names to group folds by; drop'
          " 'attack' from cv.splits"
        )
      try:
        splits[mode] = cv.split_by_attack(
          labels, dataset.attack_names, c.folds, seed=c.seed
        )
      except ValueError as e:
        raise readers.DataError(f'{dataset.name}: {e}') from None
      hint = ' (folds grouped by attack)'
    check_folds(labels, splits[mode], hint)
  return splits


def splitter_name(config, mode):
  if mode == 'attack':
    return 'GroupKFold by attack name'
  return 'StratifiedKFold' if config.cv.stratified else 'KFold'


def oof_rows(splits):
  """The training rows in the order that out-of-fold scores are kept."""
  return np.concatenate([val_rows for _, val_rows in splits])


def fold_metrics(labels, splits, result, threshold):
  """Validation metrics of each fold's best model."""
  folds = []
  for f, (_, val_rows) in enumerate(splits):
    m = evaluation.binary_metrics(
      labels[val_rows], result.oof_probs[f], threshold=threshold
    )
    folds.append(
      {
        'fold': f,
        'rows': len(val_rows),
        'roc_auc': m['roc_auc'],
        'pr_auc': m['pr_auc'],
        'f1': m['f1'],
        'accuracy': m['accuracy'],
        'false_alarm_rate': m['false_alarm_rate'],
        'best_epoch': int(result.best_epoch[f]),
        'best_val_loss': float(result.best_val_loss[f]),
        'epochs_run': int(result.epochs_run[f]),
      }
    )
  return folds


# Fields that change how a run is kept, not what it computes.
RUN_FIELDS = (
  'retrain',
  'checkpoint_every',
  'keep_checkpoints',
  'distributed',
  'plots',
)
OUTPUTS = (
  'report.json',
  'metrics.jsonl',
  'predictions.npz',
  'checkpoint',
  'train_state',
)


# Fields that were added after runs were first fingerprinted, each with the
# value at which it computes what runs made before it existed computed. At
# that value a field is left out of the digest, so that a new field does not
# turn away the workdirs an earlier version finished or part-trained. A field
# added later belongs here with its neutral value.
ADDED_FIELDS = {
  'model.input_noise': 0.0,
  'train.type_balance': 0.0,
  'final.novelty': 0.0,
  'final.novelty_centroids': 256,
  'final.novelty_rows': 50_000,
}


def _digest(fields):
  text = json.dumps(fields, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _result_fields(config):
  return {k: v for k, v in config.to_dict().items() if k not in RUN_FIELDS}


def fingerprint(config):
  """A digest of the settings that decide a run's results."""
  fields = _result_fields(config)
  for path, neutral in ADDED_FIELDS.items():
    group, name = path.split('.')
    section = fields.get(group, {})
    if name in section and section[name] == neutral:
      del section[name]
  return _digest(fields)


def accepted_fingerprints(config):
  """The digests that a workdir of this config may carry.

  Besides `fingerprint(config)`, the digest of every field, neutral ones
  included, as versions before `ADDED_FIELDS` wrote it.
  """
  return (fingerprint(config), _digest(_result_fields(config)))


def training_checkpoints(config, workdir, stage):
  if not config.checkpoint_every:
    return None
  return checkpoints.TrainingCheckpoints(
    pathlib.Path(workdir) / 'train_state' / stage,
    every=config.checkpoint_every,
    keep=config.keep_checkpoints,
    fingerprint=fingerprint(config),
    accepted=accepted_fingerprints(config),
  )


def finished_report(config, workdir):
  """The report of a finished run in `workdir`, unless a retrain is asked.

  With `retrain`, the outputs of the earlier run are removed instead.
  """
  workdir = pathlib.Path(workdir)
  if config.retrain:
    for name in OUTPUTS:
      path = workdir / name
      if path.is_dir():
        shutil.rmtree(path)
      elif path.exists():
        path.unlink()
    return None
  path = workdir / 'report.json'
  if not path.exists():
    return None
  try:
    report = json.loads(path.read_text())
  except ValueError:
    return None
  if report.get('fingerprint') not in accepted_fingerprints(config):
    raise ConfigError(
      f'{workdir} holds a finished run with other settings; use a new'
      ' workdir or --config.retrain=True'
    )
  return report


def _devices_line():
  return ', '.join(f'{d.platform}:{d.id}' for d in jax.devices())


def train_and_evaluate(config, workdir):
  """Runs cross-validation, the final model, checkpointing and evaluation.

  Args:
    config: a `ConfigDict` like `configs/default.py`.
    workdir: directory for metrics.jsonl, the checkpoint and report.json.

  Returns:
    The report dict that is also written to `<workdir>/report.json`.
  """
  t_start = time.perf_counter()
  validate_config(config)
  workdir = pathlib.Path(workdir)
  report = finished_report(config, workdir)
  if report is not None:
    logging.info(
      '%s already holds a finished run: not retraining (set'
      ' --config.retrain=True to train again).',
      workdir,
    )
    print(evaluation.format_report(report))
    return report
  workdir.mkdir(parents=True, exist_ok=True)
  logging.info('Config:\n%s', config)
  logging.info('Devices: %s', _devices_line())

  # Data, and the vocabulary of the training rows.
  d = config.data
  options, train_set, test_sets = read_data(d)
  labels = train_set.labels
  logging.info(
    'Training rows: %d (%d attacks) from %s; test sets: %s',
    len(train_set),
    int(labels.sum()),
    train_set.name,
    ', '.join(f'{k} ({len(v)} rows)' for k, v in test_sets.items()),
  )
  if labels.min() == labels.max():
    raise readers.DataError(f'{train_set.name}: the labels hold one class only')
  if len(train_set) < 2 * config.cv.folds:
    raise readers.DataError(
      f'{train_set.name}: {len(train_set)} rows are too few for'
      f' {config.cv.folds} folds'
    )
  schema = preprocessing.fit_schema(train_set.features, train_set.categorical)
  numeric, codes = preprocessing.encode(schema, train_set.features)
  nonfinite = preprocessing.count_nonfinite(schema, numeric)
  # Encoding the test sets now finds a missing column before training.
  test_encoded = {
    name: preprocessing.encode(schema, ds.features, source=ds.name)
    for name, ds in test_sets.items()
  }
  if nonfinite:
    logging.info(
      'Non-finite training values (filled from training rows): %s', nonfinite
    )

  # Cross-validation: the folds of every split mode train in one program
  # (unless sequential is asked); each fold keeps its own rows and stats.
  split_sets = make_splits(config, train_set)
  weigh = loss_weights(config, train_set)
  fold_names = [
    (mode, f) for mode, folds in split_sets.items() for f in range(len(folds))
  ]
  splits = [split for folds in split_sets.values() for split in folds]
  settings = train_settings(config)
  plan = cv.make_plan(
    (schema, numeric, codes),
    labels,
    splits,
    settings,
    log1p=_log1p_option(config),
    weigh=weigh,
  )
  data = train_lib.DeviceData(
    numeric=jnp.asarray(numeric),
    codes=jnp.asarray(codes),
    labels=jnp.asarray(labels, jnp.float32),
  )
  model = classifier_lib.build_model(model_settings(config))
  loss = losses.Loss(config.loss.name, config.loss.alpha, config.loss.gamma)
  steps = plan.train_index.shape[1] // settings.batch_size
  tx = create_optimizer(config, steps)
  key = jax.random.key(config.seed)
  per_group = settings.warmup_epochs + settings.epochs
  groups = 1 if config.cv.mode == 'vmap' else len(splits)
  logger = EpochLogger(workdir, per_group * groups, fold_names=fold_names)
  saver = training_checkpoints(config, workdir, 'cv')
  mesh = None
  if config.cv.mode == 'vmap' and jax.device_count() > 1:
    mesh = cv.fold_mesh(num_folds=len(splits))
    logging.info(
      'Sharding over %d devices: %d along folds, %d along each batch.',
      jax.device_count(),
      mesh.shape['folds'],
      mesh.shape['data'],
    )
  logging.info(
    'Cross-validating %s: %d folds in all.',
    ' and '.join(f'{len(v)} {k} folds' for k, v in split_sets.items()),
    len(splits),
  )
  with contextlib.closing(logger):
    result = cv.train_folds(
      model,
      tx,
      loss,
      data,
      plan,
      key,
      settings,
      mode=config.cv.mode,
      on_epoch=logger,
      checkpointer=saver,
      mesh=mesh,
      shrink=config.cv.shrink,
    )

  fold_novelty, novelty_s = None, 0.0
  if config.final.novelty:
    t_novelty = time.perf_counter()
    fold_novelty, result = _with_novelty(
      config, result, schema, plan.stats, (numeric, codes), labels, splits
    )
    novelty_s = time.perf_counter() - t_novelty
    logging.info(
      'Novelty: %d centroids per fold model, fitted and scored in %.1f s.',
      config.final.novelty_centroids,
      novelty_s,
    )

  # Thresholds from out-of-fold predictions: training rows only.
  numbers = {}
  for f, (mode, _) in enumerate(fold_names):
    numbers.setdefault(mode, []).append(f)
  by_split = {mode: result.take(folds) for mode, folds in numbers.items()}
  oof = {
    mode: (
      labels[oof_rows(split_sets[mode])],
      np.concatenate(by_split[mode].oof_probs),
    )
    for mode in split_sets
  }
  sources = {mode: (*oof[mode], None) for mode in split_sets}
  if 'attack' in split_sets:
    rows = oof_rows(split_sets['attack'])
    weights = evaluation.type_balanced_weights(
      labels[rows], train_set.attack_names[rows]
    )
    sources['attack_balanced'] = (*oof['attack'], weights)
  thresholds = {
    source: evaluation.choose_threshold(
      oof_labels,
      oof_probs,
      method=config.final.threshold,
      fixed_value=config.final.fixed_threshold,
      weights=weights,
    )
    for source, (oof_labels, oof_probs, weights) in sources.items()
  }
  threshold = thresholds[config.final.threshold_from]
  logging.info(
    'Threshold %.4f (%s on %s out-of-fold predictions); the other'
    ' sources give %s.',
    threshold,
    config.final.threshold,
    config.final.threshold_from,
    ', '.join(f'{k} {v:.4f}' for k, v in thresholds.items()),
  )
  cv_report = {'mode': config.cv.mode, 'splits': {}}
  for mode, folds in split_sets.items():
    cv_report['splits'][mode] = {
      'splitter': splitter_name(config, mode),
      'threshold': thresholds[mode],
      'folds': fold_metrics(labels, folds, by_split[mode], threshold),
      'oof': evaluation.binary_metrics(*oof[mode], threshold=threshold),
    }
    if train_set.attack_names is not None:
      cv_report['splits'][mode]['oof']['roc_auc_types_even'] = (
        evaluation.types_even_roc_auc(
          *oof[mode], train_set.attack_names[oof_rows(folds)]
        )
      )

  # The final model: the fold ensemble, or a refit on every training row.
  member_split = config.final.model_split
  members = result if member_split == 'all' else by_split[member_split]
  member_stats, member_novelty = plan.stats, fold_novelty
  if member_split != 'all':
    pick = functools.partial(
      jax.tree.map, lambda x: x[np.asarray(numbers[member_split])]
    )
    member_stats, member_novelty = pick(plan.stats), pick(fold_novelty)
  refit_timing = {}
  if config.final.model == 'ensemble':
    variables, stats = members.variables, member_stats
  else:
    variables, stats, refit_timing = _refit(
      config,
      model,
      loss,
      data,
      labels,
      schema,
      numeric,
      codes,
      members,
      key,
      workdir,
      weigh,
    )
    if config.final.novelty:
      t_novelty = time.perf_counter()
      every_row = np.arange(len(labels))
      member_novelty = novelty_lib.stack(
        [_fit_novelty(config, stats, 0, numeric, codes, labels, every_row)]
      )
      novelty_s += time.perf_counter() - t_novelty
  clf = classifier_lib.Classifier(
    model_settings=model_settings(config),
    variables=jax.tree.map(jnp.asarray, variables),
    preprocessor=preprocessing.Preprocessor(schema, stats),
    threshold=threshold,
    reader={'format': d.format, 'options': options},
    novelty=member_novelty,
    novelty_weight=config.final.novelty,
  )

  # Test sets, the checkpoint and its verification.
  t_eval = time.perf_counter()
  test_probs = {
    name: clf.predict_encoded(*test_encoded[name]) for name in test_sets
  }
  test_report = {}
  for name, ds in test_sets.items():
    test_report[name] = evaluation.evaluate_test_set(
      ds.labels, test_probs[name], threshold=threshold
    )
    test_report[name]['at_thresholds'] = {
      source: evaluation.binary_metrics(
        ds.labels, test_probs[name], threshold=t
      )
      for source, t in thresholds.items()
    }
    types = attack_types(train_set, ds, test_probs[name], threshold)
    if types is not None:
      test_report[name]['by_attack_type'] = types
    unknown = preprocessing.count_unknown(schema, test_encoded[name][1])
    test_report[name]['unseen_categories'] = unknown
    if unknown:
      logging.info('%s: categories unseen in training: %s', name, unknown)
  eval_s = time.perf_counter() - t_eval
  checkpoint = _save_and_verify(config, workdir, clf, test_sets, test_probs)
  save_predictions(workdir, test_sets, test_probs, oof)

  report = {
    'config_name': config.name,
    'fingerprint': fingerprint(config),
    'data': {
      'format': d.format,
      'train': train_set.name,
      'train_rows': len(train_set),
      'train_attacks': int(labels.sum()),
      'features': schema.num_features,
      'nonfinite_train_values': nonfinite,
    },
    'threshold': threshold,
    'threshold_method': config.final.threshold,
    'threshold_from': config.final.threshold_from,
    'thresholds': thresholds,
    'final_model': config.final.model,
    'model_split': member_split,
    'ensemble_members': int(jax.tree.leaves(variables)[0].shape[0]),
    'novelty': None
    if fold_novelty is None
    else {
      'weight': config.final.novelty,
      'centroids': config.final.novelty_centroids,
    },
    'cv': cv_report,
    'test': test_report,
    'timing': {
      'compile_s': result.compile_s + refit_timing.get('compile_s', 0.0),
      'cv_train_s': result.train_s,
      'refit_train_s': refit_timing.get('train_s'),
      'novelty_s': novelty_s,
      'eval_s': eval_s,
      'total_s': time.perf_counter() - t_start,
    },
    'checkpoint': checkpoint,
    'devices': _devices_line(),
    'xla_flags': os.environ.get('XLA_FLAGS', ''),
    'compilation_cache': jax.config.jax_compilation_cache_dir or None,
    'versions': package_versions(),
    'config': json.loads(config.to_json_best_effort()),
  }
  write_atomic(workdir / 'report.json', json.dumps(report, indent=2) + '\n')
  if config.plots:
    write_plots(workdir)
  print(evaluation.format_report(report))
  return report


def write_plots(workdir):
  """Draws the run's figures; a failure is logged, the run stands."""
  try:
    paths = plots.write_run_plots(workdir)
  except Exception as e:  # noqa: BLE001 - the report is already written.
    logging.warning('Could not draw the figures: %s: %s', type(e).__name__, e)
    return
  logging.info('Figures: %s', ', '.join(p.name for p in paths))


def loss_weights(config, dataset):
  """`weigh(rows)` for the fold plans, or None when rows weigh the same."""
  power = float(config.train.type_balance)
  if not power:
    return None
  attacks = dataset.attack_names[dataset.labels == 1]
  logging.info(
    'Loss weights even out %d attack types (type_balance %g).',
    len(np.unique(attacks)),
    power,
  )

  def weigh(rows):
    return evaluation.type_balanced_weights(
      dataset.labels[rows], dataset.attack_names[rows], power
    )

  return weigh


def _log1p_option(config):
  option = config.preprocess.log1p
  return option if isinstance(option, str) else tuple(option)


def _refit(
  config,
  model,
  loss,
  data,
  labels,
  schema,
  numeric,
  codes,
  result,
  key,
  workdir,
  weigh,
):
  """Trains one model on all rows for the folds' median best epoch."""
  epochs = max(1, int(np.median(result.best_epoch)))
  logging.info('Refitting on all %d rows for %d epochs.', len(labels), epochs)
  rows = np.arange(len(labels))
  settings = train_settings(config, epochs=epochs, early_stopping=False)
  plan = cv.make_plan(
    (schema, numeric, codes),
    labels,
    [(rows, rows[:0])],
    settings,
    log1p=_log1p_option(config),
    weigh=weigh,
  )
  tx = create_optimizer(
    config, plan.train_index.shape[1] // settings.batch_size
  )
  logger = EpochLogger(workdir, settings.warmup_epochs + epochs, 'refit_')
  saver = training_checkpoints(config, workdir, 'refit')
  with contextlib.closing(logger):
    refit = cv.train_folds(
      model,
      tx,
      loss,
      data,
      plan,
      jax.random.fold_in(key, 10_000),
      settings,
      mode='vmap',
      on_epoch=logger,
      checkpointer=saver,
    )
  timing = {'compile_s': refit.compile_s, 'train_s': refit.train_s}
  return refit.variables, plan.stats, timing


def _with_novelty(config, result, schema, stats, encoded, labels, splits):
  """Fits each fold model's `Novelty`; rescores its out-of-fold rows with it.

  The out-of-fold scores are then exactly what the saved model outputs,
  so the threshold is chosen on them.

  Returns:
    `(novelty, result)`: the references stacked over folds, and `result`
    with the new out-of-fold scores.
  """
  numeric, codes = encoded
  fold_novelty = novelty_lib.stack(
    [
      _fit_novelty(config, stats, f, numeric, codes, labels, tr)
      for f, (tr, _) in enumerate(splits)
    ]
  )
  folds_clf = classifier_lib.Classifier(
    model_settings=model_settings(config),
    variables=result.variables,
    preprocessor=preprocessing.Preprocessor(schema, stats),
    threshold=0.5,
    novelty=fold_novelty,
    novelty_weight=config.final.novelty,
  )
  oof_probs = tuple(
    folds_clf.take([f]).predict_encoded(numeric[va], codes[va])
    for f, (_, va) in enumerate(splits)
  )
  return fold_novelty, dataclasses.replace(result, oof_probs=oof_probs)


def _fit_novelty(config, stats, member, numeric, codes, labels, rows):
  """Fits model `member`'s `Novelty` on the normal rows among `rows`."""
  normal = rows[labels[rows] == 0]
  return novelty_lib.fit(
    jax.tree.map(lambda x: x[member], stats),
    numeric[normal],
    codes[normal],
    num_centroids=config.final.novelty_centroids,
    max_rows=config.final.novelty_rows,
    seed=config.seed * 1_000 + member,
  )


def read_data(data):
  """`(reader options, train_set, {name: test_set})` of a `config.data`."""
  options = input_pipeline.reader_options(data.format, data)
  train_set, test_sets = input_pipeline.load_datasets(
    data.format,
    directory=data.dir,
    train=data.train,
    test=tuple(data.test),
    options=options,
    num_train=data.num_train,
    num_test=data.num_test,
    seed=data.seed,
  )
  return options, train_set, test_sets


def attack_types(train_set, test_set, probs, threshold):
  """`evaluation.by_attack_type` rows of one test set; None without names."""
  if test_set.attack_names is None or train_set.attack_names is None:
    return None
  return evaluation.by_attack_type(
    test_set.labels,
    probs,
    test_set.attack_names,
    threshold=threshold,
    seen=np.unique(train_set.attack_names[train_set.labels == 1]),
  )


def attack_type_breakdown(workdir, datasets=None):
  """`{test set: evaluation.by_attack_type rows}` of a finished workdir.

  Worked out from the saved test predictions and the data that the run's
  config names, so that it serves runs whose report lacks the breakdown.

  Args:
    workdir: a finished run's directory.
    datasets: a dict that caches the data read, between calls.
  """
  workdir = pathlib.Path(workdir)
  report = json.loads((workdir / 'report.json').read_text())
  train_set, test_sets = _run_data(report, datasets)
  with np.load(workdir / 'predictions.npz') as saved:
    out = {
      name: attack_types(
        train_set, ds, saved[f'test.{name}.probs'], report['threshold']
      )
      for name, ds in test_sets.items()
    }
  return {name: rows for name, rows in out.items() if rows is not None}


def oof_types_even_roc_auc(workdir, datasets=None):
  """`{split mode: evaluation.types_even_roc_auc}` of a finished workdir.

  Worked out from the saved out-of-fold scores, the data that the run's
  config names and the folds it splits them into, so that it serves runs
  whose report lacks the figure. Empty when the data has no attack names.

  Raises:
    ValueError: the saved scores are not of the folds the config makes.
  """
  workdir = pathlib.Path(workdir)
  report = json.loads((workdir / 'report.json').read_text())
  train_set, _ = _run_data(report, datasets)
  if train_set.attack_names is None:
    return {}
  splits = make_splits(ml_collections.ConfigDict(report['config']), train_set)
  out = {}
  with np.load(workdir / 'predictions.npz') as saved:
    for mode, folds in splits.items():
      rows = oof_rows(folds)
      labels = saved[f'oof.{mode}.labels']
      if not np.array_equal(labels, train_set.labels[rows]):
        raise ValueError(
          f'{workdir}: its saved {mode} out-of-fold scores are not of the'
          ' folds its config makes'
        )
      out[mode] = evaluation.types_even_roc_auc(
        labels, saved[f'oof.{mode}.probs'], train_set.attack_names[rows]
      )
  return out


def _run_data(report, datasets):
  """`(train_set, test_sets)` of the data a report's config names, cached."""
  key = json.dumps(report['config']['data'], sort_keys=True)
  datasets = {} if datasets is None else datasets
  if key not in datasets:
    data = ml_collections.ConfigDict(report['config']['data'])
    datasets[key] = read_data(data)[1:]
  return datasets[key]


def save_predictions(workdir, test_sets, test_probs, oof):
  """Writes test and out-of-fold scores to predictions.npz, for plots."""
  arrays = {}
  for name, ds in test_sets.items():
    arrays[f'test.{name}.labels'] = np.asarray(ds.labels, np.int8)
    arrays[f'test.{name}.probs'] = np.asarray(test_probs[name], np.float32)
  for mode, (oof_labels, oof_probs) in oof.items():
    arrays[f'oof.{mode}.labels'] = np.asarray(oof_labels, np.int8)
    arrays[f'oof.{mode}.probs'] = np.asarray(oof_probs, np.float32)
  path = pathlib.Path(workdir) / 'predictions.npz'
  tmp = path.with_name('.predictions.tmp.npz')
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)


def _save_and_verify(config, workdir, clf, test_sets, test_probs):
  """Saves the checkpoint, reloads it fresh and compares test scores."""
  path = workdir / 'checkpoint'
  checkpoints.save(
    path,
    clf,
    config=json.loads(config.to_json_best_effort()),
    extra={'versions': package_versions()},
  )
  restored, _ = checkpoints.load(path)
  diff = 0.0
  for name, ds in test_sets.items():
    again = restored.predict_proba(ds.features)
    diff = max(diff, float(np.max(np.abs(again - test_probs[name]))))
  logging.info('Checkpoint reloaded: largest test score difference %.3g.', diff)
  if diff > RELOAD_TOLERANCE or restored.threshold != clf.threshold:
    raise checkpoints.CheckpointError(
      f'reloaded checkpoint {path} scores differ by {diff:.3g}'
    )
  return {'path': str(path), 'max_abs_diff': diff, 'verified': True}
