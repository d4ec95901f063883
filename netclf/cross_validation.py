"""K-fold training with all folds in one compiled program.

The step functions in `netclf.train` are written for one fold. Here they are
combined into one epoch with early-stopping bookkeeping, which is either
`jax.vmap`-ed over a leading fold axis (every fold trains in the same
program, each with its own key, rows and preprocessing statistics) or run
fold by fold as a reference. The encoded rows sit on the device once; folds
only hold row numbers into them.
"""

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from sklearn import model_selection

from netclf import preprocessing
from netclf import train as train_lib


class TrainingError(RuntimeError):
  """Training cannot go on (for example, the loss is no longer finite)."""


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  """How long and how each fold trains."""

  epochs: int = 50
  batch_size: int = 256
  eval_batch_size: int = 4096
  warmup_epochs: int = 5
  warmup_input_dropout: float = 0.9
  early_stopping: bool = True
  patience: int = 5
  min_delta: float = 0.0


@dataclasses.dataclass(frozen=True)
class FoldPlan:
  """Per-fold row numbers (padded to one length) and fitted statistics."""

  train_index: np.ndarray  # [folds, n_train] int32
  train_weight: np.ndarray  # [folds, n_train] float32, 0 on padding
  val_index: np.ndarray  # [folds, n_val] int32
  val_weight: np.ndarray  # [folds, n_val] float32, 0 on padding
  val_rows: tuple[np.ndarray, ...]  # each fold's real validation rows
  stats: preprocessing.FeatureStats  # stacked, leading fold axis
  prior_logits: np.ndarray  # [folds] log-odds of attacks in training rows

  @property
  def num_folds(self):
    return self.train_index.shape[0]


class Stopper(NamedTuple):
  """Early-stopping state of one fold."""

  best: Any  # {'params', 'batch_stats'} of the best epoch so far
  best_loss: jax.Array
  best_epoch: jax.Array  # 1-based; 0 before the first epoch
  bad_epochs: jax.Array
  stopped: jax.Array
  epochs_run: jax.Array


@dataclasses.dataclass
class FoldResult:
  """What cross-validation hands to the rest of the run."""

  variables: Any  # best variables, stacked over folds
  best_epoch: np.ndarray
  best_val_loss: np.ndarray
  epochs_run: np.ndarray
  oof_probs: tuple[np.ndarray, ...]  # per fold, aligned with val_rows
  compile_s: float
  train_s: float
  shrunk_to: tuple[int, ...] = ()  # fold counts the epoch was recompiled for

  def take(self, folds):
    """The results of the folds numbered `folds`, in that order."""
    folds = np.asarray(folds)
    return dataclasses.replace(
      self,
      variables=jax.tree.map(lambda x: x[folds], self.variables),
      best_epoch=self.best_epoch[folds],
      best_val_loss=self.best_val_loss[folds],
      epochs_run=self.epochs_run[folds],
      oof_probs=tuple(self.oof_probs[f] for f in folds),
    )


def split_folds(labels, num_folds, *, stratified=False, seed=42):
  """Returns `[(train_rows, val_rows)]` from scikit-learn's splitters."""
  labels = np.asarray(labels)
  cls = model_selection.StratifiedKFold if stratified else model_selection.KFold
  splitter = cls(n_splits=num_folds, shuffle=True, random_state=seed)
  return list(splitter.split(np.zeros(len(labels)), labels))


def split_by_attack(labels, attack_names, num_folds, *, seed=42):
  """Returns `[(train_rows, val_rows)]` that hold out whole attack types.

  Attack rows are grouped by attack name (`GroupKFold`, which balances the
  folds' sizes), so each fold validates on attack types its training rows
  never show. Normal rows are spread over the folds by a shuffled `KFold`.

  Raises:
    ValueError: if there are fewer attack types than folds.
  """
  labels = np.asarray(labels)
  names = np.asarray(attack_names).astype(str)
  attacks = np.flatnonzero(labels == 1)
  normal = np.flatnonzero(labels == 0)
  types = np.unique(names[attacks])
  if len(types) < num_folds:
    raise ValueError(
      f'{len(types)} attack types are too few for {num_folds} folds'
      ' grouped by attack'
    )
  grouped = model_selection.GroupKFold(n_splits=num_folds)
  attack_val = [
    attacks[va] for _, va in grouped.split(attacks, groups=names[attacks])
  ]
  spread = model_selection.KFold(num_folds, shuffle=True, random_state=seed)
  normal_val = [normal[va] for _, va in spread.split(normal)]
  splits = []
  for a, n in zip(attack_val, normal_val, strict=True):
    val = np.sort(np.concatenate([a, n]))
    splits.append((np.setdiff1d(np.arange(len(labels)), val), val))
  return splits


def pad_rows(rows_per_fold, multiple, weigh=None):
  """Pads each fold's rows to one length, a multiple of `multiple`.

  Padding repeats a fold's own rows with weight 0, so batch statistics see
  data from that fold while the loss ignores it. Real rows weigh 1, or
  `weigh(rows)` when given.
  """
  longest = max(len(r) for r in rows_per_fold)
  length = max(multiple, -(-longest // multiple) * multiple)
  index = np.zeros((len(rows_per_fold), length), np.int32)
  weight = np.zeros((len(rows_per_fold), length), np.float32)
  for f, rows in enumerate(rows_per_fold):
    if len(rows):
      index[f] = np.resize(rows, length)
      weight[f, : len(rows)] = 1.0 if weigh is None else weigh(rows)
  return index, weight


def prior_logit(labels):
  """Log-odds of the attack share, clipped away from 0 and 1."""
  p = float(np.clip(np.mean(labels), 1e-4, 1 - 1e-4))
  return np.log(p / (1 - p))


def make_plan(encoded, labels, splits, settings, *, log1p='auto', weigh=None):
  """Fits each fold's preprocessing on its training rows and pads rows.

  `weigh(rows)`, when given, returns the loss weights of a fold's training
  or validation rows, from those rows alone.
  """
  schema, numeric, codes = encoded
  stats = [
    preprocessing.fit_stats(schema, numeric[tr], codes[tr], log1p=log1p)
    for tr, _ in splits
  ]
  train_index, train_weight = pad_rows(
    [tr for tr, _ in splits], settings.batch_size, weigh
  )
  val_index, val_weight = pad_rows(
    [va for _, va in splits], settings.eval_batch_size, weigh
  )
  return FoldPlan(
    train_index=train_index,
    train_weight=train_weight,
    val_index=val_index,
    val_weight=val_weight,
    val_rows=tuple(va for _, va in splits),
    stats=preprocessing.stack_stats(stats),
    prior_logits=np.array(
      [prior_logit(labels[tr]) for tr, _ in splits], np.float32
    ),
  )


def _where(condition, new, old):
  return jax.tree.map(lambda n, o: jnp.where(condition, n, o), new, old)


def _variables(state):
  return {'params': state.params, 'batch_stats': state.batch_stats}


class _FoldPrograms:
  """The single-fold functions of a run, closed over its static settings."""

  def __init__(self, model, tx, loss, settings, num_features, batch=None):
    self.batch_sharding = batch
    self.model = model
    self.warm_model = model.clone(input_dropout=settings.warmup_input_dropout)
    self.tx = tx
    self.loss = loss
    self.settings = settings
    self.num_features = num_features

  def init(self, key, prior):
    """A fresh state for the first phase (warm-up when there is one)."""
    first = self.warm_model if self.settings.warmup_epochs else self.model
    state = train_lib.create_train_state(
      first, key, self.num_features, self.tx, prior_logit=prior
    )
    inf = jnp.array(jnp.inf, jnp.float32)
    zero = jnp.array(0, jnp.int32)
    stopper = Stopper(
      best=_variables(state),
      best_loss=inf,
      best_epoch=zero,
      bad_epochs=zero,
      stopped=jnp.array(False),
      epochs_run=zero,
    )
    return state, stopper

  def warmup_epoch(self, state, epoch, key, inputs, data):
    stats, train_index, train_weight, _, _ = inputs
    key = jax.random.fold_in(jax.random.fold_in(key, 0), epoch)
    return train_lib.train_epoch(
      state,
      data,
      stats,
      train_index,
      train_weight,
      key,
      batch_size=self.settings.batch_size,
      loss=self.loss,
      batch_sharding=self.batch_sharding,
    )

  def start_main(self, state):
    return train_lib.restart(state, self.model.apply, self.tx)

  def main_epoch(self, state, stopper, epoch, key, inputs, data):
    """One epoch, validation and early-stopping update for one fold."""
    s = self.settings
    stats, train_index, train_weight, val_index, val_weight = inputs
    key = jax.random.fold_in(jax.random.fold_in(key, 1), epoch)
    new_state, train_loss = train_lib.train_epoch(
      state,
      data,
      stats,
      train_index,
      train_weight,
      key,
      batch_size=s.batch_size,
      loss=self.loss,
      batch_sharding=self.batch_sharding,
    )
    val_loss, _ = train_lib.evaluate(
      new_state,
      data,
      stats,
      val_index,
      val_weight,
      batch_size=s.eval_batch_size,
      loss=self.loss,
    )
    active = ~stopper.stopped
    improved = active
    if s.early_stopping:
      improved &= val_loss < stopper.best_loss - s.min_delta
    bad_epochs = jnp.where(improved, 0, stopper.bad_epochs + active)
    stopper = Stopper(
      best=_where(improved, _variables(new_state), stopper.best),
      best_loss=jnp.where(improved, val_loss, stopper.best_loss),
      best_epoch=jnp.where(improved, epoch + 1, stopper.best_epoch),
      bad_epochs=bad_epochs,
      stopped=stopper.stopped | (s.early_stopping & (bad_epochs >= s.patience)),
      epochs_run=stopper.epochs_run + active,
    )
    # A stopped fold keeps its state: its updates are masked out.
    state = _where(active, new_state, state)
    return state, stopper, train_loss, val_loss, active

  def predict(self, state, variables, inputs, data):
    stats, _, _, val_index, val_weight = inputs
    state = state.replace(
      params=variables['params'], batch_stats=variables['batch_stats']
    )
    return train_lib.evaluate(
      state,
      data,
      stats,
      val_index,
      val_weight,
      batch_size=self.settings.eval_batch_size,
      loss=self.loss,
    )[1]


def _check_finite(losses, folds, phase, epoch):
  for fold, value in zip(folds, losses, strict=True):
    if not np.isfinite(value):
      raise TrainingError(
        f'{phase} loss of fold {fold} became {value} at epoch {epoch + 1};'
        ' lower the learning rate or check the inputs'
      )


def train_folds(
  model,
  tx,
  loss,
  data,
  plan,
  key,
  settings,
  *,
  mode='vmap',
  on_epoch: Callable[..., None] | None = None,
  checkpointer=None,
  mesh=None,
  shrink='auto',
):
  """Trains every fold of `plan` and returns their best variables.

  Args:
    model: the Flax module for the main phase.
    tx: the optax optimizer (a fresh copy starts each phase).
    loss: per-example loss `loss(logits, labels)`, hashable.
    data: `DeviceData` of all training rows.
    plan: the `FoldPlan`.
    key: the run's key; fold `f` uses `fold_in(key, f)`.
    settings: `TrainSettings`.
    mode: 'vmap' (all folds in one program) or 'sequential'.
    on_epoch: called as `on_epoch(phase, epoch, folds, train_loss, val_loss,
      active)` after each epoch with host values, for logging.
    checkpointer: optional; saves the training state every
      `checkpointer.every` epochs and resumes from its last save (see
      `netclf.checkpoints.TrainingCheckpoints`).
    mesh: optional `Mesh` with `folds` and `data` axes (see `fold_mesh`); in
      'vmap' mode the fold axis is sharded over `folds` and each batch's
      rows over `data`. Folds are padded with copies of the first ones up
      to a multiple of the `folds` axis; the copies' results are dropped.
    shrink: 'auto' drops stopped folds from the vmapped epoch (recompiling
      it for the folds left) when at most half still train and the time
      saved over the next `patience` epochs exceeds a compile; 'always'
      does so whenever at most half still train; 'never' keeps every fold.
      Not with a mesh. Results are the same either way.

  Returns:
    A `FoldResult`.
  """
  num_features = plan.stats.code_map.shape[-1] + plan.stats.mean.shape[-1]
  mesh = mesh if mode == 'vmap' else None
  batch = None
  if mesh is not None and mesh.shape['data'] > 1:
    batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  programs = _FoldPrograms(model, tx, loss, settings, num_features, batch)
  keys = jnp.stack([jax.random.fold_in(key, f) for f in range(plan.num_folds)])
  inputs = (
    jax.tree.map(jnp.asarray, plan.stats),
    jnp.asarray(plan.train_index),
    jnp.asarray(plan.train_weight),
    jnp.asarray(plan.val_index),
    jnp.asarray(plan.val_weight),
  )
  priors = jnp.asarray(plan.prior_logits)
  # The sequential reference runs the very same single-fold functions
  # without the fold axis; the vmapped run maps them over all folds at once.
  single = {
    'init': programs.init,
    'warmup': programs.warmup_epoch,
    'start': programs.start_main,
    'main': programs.main_epoch,
    'predict': programs.predict,
  }
  if mode == 'vmap':
    size = 1 if mesh is None else mesh.shape['folds']
    padded = -(-plan.num_folds // size) * size
    groups = [np.arange(padded) % plan.num_folds]
    # With a mesh, sharding constraints inside the single-fold functions
    # gain the `folds` axis on the mapped dimension.
    fold_map = functools.partial(
      jax.vmap, spmd_axis_name=None if mesh is None else 'folds'
    )
    fns = {
      'init': fold_map(single['init']),
      'warmup': fold_map(single['warmup'], in_axes=(0, None, 0, 0, None)),
      'start': fold_map(single['start']),
      'main': fold_map(single['main'], in_axes=(0, 0, None, 0, 0, None)),
      'predict': fold_map(single['predict'], in_axes=(0, 0, 0, None)),
    }
  elif mode == 'sequential':
    groups = list(range(plan.num_folds))
    fns = single
  else:
    raise ValueError(f"unknown fold mode {mode!r}: use 'vmap' or 'sequential'")
  if shrink not in ('auto', 'always', 'never'):
    raise ValueError(
      f"unknown shrink {shrink!r}: use 'auto', 'always' or 'never'"
    )
  runner = _GroupRunner(fns, settings, on_epoch, checkpointer, mesh, shrink)
  start = time.perf_counter()
  results = runner.run(groups, keys, priors, inputs, data, mode)
  train_s = time.perf_counter() - start - runner.compile_s
  k = plan.num_folds
  stopper = jax.tree.map(
    lambda *x: np.concatenate(x)[:k], *[r[0] for r in results]
  )
  probs = np.concatenate([r[1] for r in results])[:k]
  return FoldResult(
    variables=stopper.best,
    best_epoch=stopper.best_epoch,
    best_val_loss=stopper.best_loss,
    epochs_run=stopper.epochs_run,
    oof_probs=tuple(
      probs[f, : len(rows)] for f, rows in enumerate(plan.val_rows)
    ),
    compile_s=runner.compile_s,
    train_s=train_s,
    shrunk_to=tuple(sorted(runner.shrunk, reverse=True)),
  )


def _compile(fn, *args, donate=(), shardings=None):
  """Lowers and compiles `fn` for `args` (arrays or abstract values)."""
  kwargs = {}
  if shardings is not None:
    kwargs = {'in_shardings': shardings[0], 'out_shardings': shardings[1]}
  return jax.jit(fn, donate_argnums=donate, **kwargs).lower(*args).compile()


def fold_mesh(devices=None, num_folds=None):
  """A `(folds, data)` mesh over the given (default: all) devices.

  The `folds` axis gets as many devices as there are folds where the count
  allows (the largest divisor of the device count not above `num_folds`);
  the devices left over split each batch along `data`.
  """
  devices = jax.devices() if devices is None else list(devices)
  n = len(devices)
  folds = n
  if num_folds is not None and n > num_folds:
    folds = max(d for d in range(1, num_folds + 1) if n % d == 0)
  grid = np.array(devices).reshape(folds, n // folds)
  return jax.sharding.Mesh(grid, ('folds', 'data'))


class _GroupRunner:
  """Runs groups of folds (all at once, or one by one) with checkpoints.

  With a checkpointer, the training state is saved every few epochs and a
  run restarts from the last complete save. Keys depend only on the fold
  and the epoch, so a resumed run repeats an uninterrupted one exactly.
  """

  def __init__(self, fns, settings, on_epoch, checkpointer, mesh, shrink):
    self.fns = fns
    self.mesh = mesh
    self.settings = settings
    self.on_epoch = on_epoch
    self.checkpointer = checkpointer
    self.compiled = None
    self.compile_s = 0.0
    self.main_compile_s = 0.0
    self.shrunk = {}
    self.can_shrink = False
    self.shrink = shrink

  def run(self, groups, keys, priors, inputs, data, mode):
    per_group = self.settings.warmup_epochs + self.settings.epochs
    done, resume = [], None
    for g, folds in enumerate(groups):
      group = (
        keys[folds],
        priors[folds],
        jax.tree.map(lambda x, folds=folds: x[folds], inputs),
      )
      if self.mesh is not None:
        group = jax.device_put(group, self._sharding('folds'))
        data = jax.device_put(data, self._sharding())
      self.can_shrink = (
        mode == 'vmap' and self.mesh is None and self.shrink != 'never'
      )
      if self.compiled is None:
        logging.info('Compiling the fold programs (%s).', mode)
        t0 = time.perf_counter()
        self._compile_all(*group, data, expand=mode == 'sequential')
        self.compile_s = time.perf_counter() - t0
        logging.info('Compilation done in %.1f s.', self.compile_s)
        resume = self._restore(len(groups))
        if resume is not None:
          done = list(resume[1]['done'])
      if g < len(done):
        continue
      start = None
      if resume is not None and resume[0].get('group') == g:
        start = (resume[0]['phase'], resume[0]['epoch'], resume[1])

      def save(phase, epoch, state, stopper, g=g, done=done):
        step = g * per_group + epoch + 1
        if phase == 'main':
          step += self.settings.warmup_epochs
        meta = {'group': g, 'phase': phase, 'epoch': epoch + 1}
        tree = {'done': done, 'state': state, 'stopper': stopper}
        self.checkpointer.save(step, tree, meta)

      stopper, probs = self._run_group(
        folds, *group, data, save if self.checkpointer else None, start
      )
      if mode == 'sequential':
        stopper, probs = jax.tree.map(lambda x: x[None], (stopper, probs))
      done.append((stopper, probs))
    if self.checkpointer and (resume is None or 'group' in resume[0]):
      self.checkpointer.save(len(groups) * per_group + 1, {'done': done}, {})
    return done

  def _sharding(self, *axes):
    return jax.sharding.NamedSharding(
      self.mesh, jax.sharding.PartitionSpec(*axes)
    )

  def _placements(self, *kinds):
    """`(in_shardings, out_shardings)`: fold-sharded or replicated args."""
    if self.mesh is None:
      return None
    fold, whole = self._sharding('folds'), self._sharding()
    return tuple(fold if k == 'f' else whole for k in kinds), fold

  def _compile_all(self, keys, priors, inputs, data, *, expand):
    """Compiles each program once, ahead of time, for one group's shapes."""
    fns = self.fns
    state, stopper = jax.eval_shape(fns['init'], keys, priors)
    epoch = jnp.int32(0)
    main_state = jax.eval_shape(fns['start'], state)
    probs = jax.eval_shape(
      fns['predict'], main_state, stopper.best, inputs, data
    )
    grow = lambda x: jax.ShapeDtypeStruct((1, *x.shape), x.dtype)
    self.shapes = {
      'state': main_state,
      'stopper': stopper,
      'done': jax.tree.map(grow, (stopper, probs))
      if expand
      else (stopper, probs),
    }
    # Argument kinds: 'f' is split along the fold axis, 'r' is replicated.
    place = self._placements
    t0 = time.perf_counter()
    main = _compile(
      fns['main'],
      *(main_state, stopper, epoch, keys, inputs, data),
      donate=(0, 1),
      shardings=place('f', 'f', 'r', 'f', 'f', 'r'),
    )
    self.main_compile_s = time.perf_counter() - t0
    self.compiled = {
      'init': _compile(fns['init'], keys, priors, shardings=place('f', 'f')),
      'warmup': _compile(
        fns['warmup'],
        *(state, epoch, keys, inputs, data),
        donate=(0,),
        shardings=place('f', 'r', 'f', 'f', 'r'),
      ),
      'start': _compile(fns['start'], state, shardings=place('f')),
      'main': main,
      'predict': _compile(
        fns['predict'],
        *(main_state, stopper.best, inputs, data),
        shardings=place('f', 'f', 'f', 'r'),
      ),
    }

  def _restore(self, num_groups):
    """Returns `(meta, tree)` of the last complete save, or None."""
    if self.checkpointer is None:
      return None

    def abstract(meta):
      num_done = meta.get('group', num_groups)
      tree = {'done': [self.shapes['done']] * num_done}
      if 'group' in meta:
        tree.update(state=self.shapes['state'], stopper=self.shapes['stopper'])
      return tree

    restored = self.checkpointer.restore(abstract)
    if restored is not None:
      meta = restored[0]
      where = (
        f'group {meta["group"]}, {meta["phase"]} epoch {meta["epoch"]}'
        if 'group' in meta
        else 'finished cross-validation'
      )
      logging.info('Resuming from the saved training state (%s).', where)
    return restored

  def _run_group(self, folds, keys, priors, inputs, data, save, start):
    """Runs warm-up and main training for one fold or a stack of folds."""
    c, s = self.compiled, self.settings
    folds = np.atleast_1d(folds)
    as_host = lambda x: np.atleast_1d(np.asarray(x))
    first = {'warmup': 0, 'main': 0}
    if start is None:
      state, stopper = c['init'](keys, priors)
    else:
      phase, epoch, tree = start
      state, stopper = tree['state'], tree['stopper']
      first = (
        {'warmup': epoch, 'main': 0}
        if phase == 'warmup'
        else {
          'warmup': s.warmup_epochs,
          'main': epoch,
        }
      )
    every = getattr(self.checkpointer, 'every', 0)
    for epoch in range(first['warmup'], s.warmup_epochs):
      state, train_loss = c['warmup'](
        state, jnp.int32(epoch), keys, inputs, data
      )
      train_loss = as_host(train_loss)
      _check_finite(train_loss, folds, 'warm-up', epoch)
      if self.on_epoch:
        active = np.ones(len(folds), bool)
        self.on_epoch('warmup', epoch, folds, train_loss, None, active)
      if save and (epoch + 1) % every == 0:
        save('warmup', epoch, state, stopper)
    if first['main'] == 0 and (start is None or start[0] == 'warmup'):
      state = c['start'](state)
    # Folds that have stopped still cost a full share of each vmapped epoch.
    # When few enough train on, the rest are parked on the host and the
    # epoch is recompiled for the folds left, if that pays for itself.
    stack = _Stack(len(folds), keys, inputs)
    losses = np.zeros((2, len(folds)), np.float32)
    main = c['main']
    for epoch in range(first['main'], s.epochs):
      t0 = time.perf_counter()
      state, stopper, train_loss, val_loss, active = main(
        state, stopper, jnp.int32(epoch), stack.keys, stack.inputs, data
      )
      # One host transfer per epoch: the losses and which folds still train.
      train_loss, val_loss, active, stopped = map(
        as_host, jax.device_get((train_loss, val_loss, active, stopper.stopped))
      )
      epoch_s = time.perf_counter() - t0
      losses[:, stack.live] = train_loss, val_loss
      _check_finite(
        train_loss[active], folds[stack.live][active], 'training', epoch
      )
      if self.on_epoch:
        every_active = np.zeros(len(folds), bool)
        every_active[stack.live] = active
        self.on_epoch('train', epoch, folds, *losses, every_active)
      if stopped.all():
        break
      if save and (epoch + 1) % every == 0:
        save('main', epoch, *stack.whole(state, stopper))
      remaining = min(s.patience, s.epochs - epoch - 1)
      if self._worth_shrinking(
        stack, int((~stopped).sum()), epoch_s, remaining
      ):
        state, stopper = stack.shrink(state, stopper, ~stopped)
        main = self._main_for(state, stopper, stack, data)
    state, stopper = stack.whole(state, stopper)
    probs = c['predict'](state, stopper.best, inputs, data)
    return jax.device_get(stopper), np.asarray(probs)

  def _worth_shrinking(self, stack, num_active, epoch_s, remaining):
    """Whether the epochs saved by dropping stopped folds beat a compile."""
    if not self.can_shrink or num_active > len(stack.live) // 2:
      return False
    if num_active < 1:
      return False
    saved_s = (1 - num_active / len(stack.live)) * epoch_s * remaining
    return self.shrink == 'always' or saved_s > self.main_compile_s

  def _main_for(self, state, stopper, stack, data):
    """The main epoch compiled for the current, smaller stack of folds."""
    size = len(stack.live)
    if size not in self.shrunk:
      t0 = time.perf_counter()
      self.shrunk[size] = _compile(
        self.fns['main'],
        *(state, stopper, jnp.int32(0), stack.keys, stack.inputs, data),
        donate=(0, 1),
      )
      took = time.perf_counter() - t0
      self.compile_s += took
      logging.info(
        'Recompiled the epoch for the %d folds still training (%.1f s).',
        size,
        took,
      )
    return self.shrunk[size]


class _Stack:
  """Which folds of a vmapped group are still on the device, in order.

  Stopped folds are parked as host copies of their (frozen) state and
  early-stopping record; `whole` puts the group back together.
  """

  def __init__(self, size, keys, inputs):
    self.live = np.arange(size)
    self.keys = keys
    self.inputs = inputs
    self.parked = None

  def _park(self, state, stopper):
    tree = jax.device_get((state, stopper))
    if self.parked is None:
      return tree

    def put(whole, part):
      whole = np.array(whole)
      whole[self.live] = part
      return whole

    return jax.tree.map(put, self.parked, tree)

  def whole(self, state, stopper):
    """`(state, stopper)` of every fold of the group, in the first order."""
    if self.parked is None:
      return state, stopper
    return jax.tree.map(jnp.asarray, self._park(state, stopper))

  def shrink(self, state, stopper, keep):
    """Keeps the folds where `keep` (over `live`) holds on the device."""
    self.parked = self._park(state, stopper)
    take = lambda x: x[np.flatnonzero(keep)]
    self.live = self.live[keep]
    self.keys = take(self.keys)
    self.inputs = jax.tree.map(take, self.inputs)
    return jax.tree.map(take, (state, stopper))
