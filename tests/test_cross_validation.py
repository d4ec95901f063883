"""Tests of the fold runner: vmapped folds against the fold-by-fold loop."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn import model_selection

from configs import test as test_config
from netclf import cross_validation as cv
from netclf import losses
from netclf import models
from netclf import pipeline
from netclf import preprocessing as pp
from netclf import synthetic
from netclf import train

SETTINGS = cv.TrainSettings(
  epochs=12,
  batch_size=64,
  eval_batch_size=128,
  warmup_epochs=1,
  patience=2,
)
MODEL = models.ResidualMLP(
  widths=(24, 24), dropouts=(0.2, 0.1), input_dropout=0.2
)


def _problem(num_rows=900, folds=3):
  train_set, _ = synthetic.make_dataset(num_rows, 10, seed=3)
  schema = pp.fit_schema(train_set.features, train_set.categorical)
  numeric, codes = pp.encode(schema, train_set.features)
  labels = train_set.labels
  splits = cv.split_folds(labels, folds)
  plan = cv.make_plan((schema, numeric, codes), labels, splits, SETTINGS)
  data = train.DeviceData(
    jnp.asarray(numeric), jnp.asarray(codes), jnp.asarray(labels, jnp.float32)
  )
  return data, plan, labels


def _run(mode, data, plan, settings=SETTINGS, records=None, shrink='never'):
  def on_epoch(phase, epoch, folds, train_loss, val_loss, active):
    if records is not None and val_loss is not None:
      for i, f in enumerate(folds):
        if active[i]:
          records.setdefault(int(f), []).append(float(val_loss[i]))

  return cv.train_folds(
    MODEL,
    optax.adam(3e-3),
    losses.Loss(),
    data,
    plan,
    jax.random.key(0),
    settings,
    mode=mode,
    on_epoch=on_epoch,
    shrink=shrink,
  )


@pytest.fixture(scope='module')
def runs():
  data, plan, labels = _problem()
  records = {'vmap': {}, 'sequential': {}}
  results = {m: _run(m, data, plan, records=records[m]) for m in records}
  results['shrunk'] = _run('vmap', data, plan, shrink='always')
  return data, plan, labels, results, records


def _assert_same_results(a, b):
  np.testing.assert_array_equal(a.best_epoch, b.best_epoch)
  np.testing.assert_array_equal(a.epochs_run, b.epochs_run)
  np.testing.assert_allclose(a.best_val_loss, b.best_val_loss, rtol=1e-4)
  for pa, pb in zip(a.oof_probs, b.oof_probs, strict=True):
    np.testing.assert_allclose(pa, pb, atol=1e-4)
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(x, y, atol=1e-4),
    a.variables,
    b.variables,
  )


def test_vmapped_folds_match_the_fold_by_fold_loop(runs):
  _, _, _, results, _ = runs
  _assert_same_results(results['vmap'], results['sequential'])


def test_dropping_stopped_folds_changes_no_result(runs):
  _, _, _, results, _ = runs
  a, b = results['shrunk'], results['sequential']
  # The folds stop at different epochs, so the epoch was recompiled.
  assert a.shrunk_to and max(a.shrunk_to) < len(a.best_epoch)
  _assert_same_results(a, b)


def test_early_stopping_keeps_the_best_epoch(runs):
  _, plan, _, results, records = runs
  result = results['vmap']
  for f, losses_seen in records['vmap'].items():
    assert len(losses_seen) == result.epochs_run[f]
    best = int(np.argmin(losses_seen))
    assert result.best_epoch[f] == best + 1
    np.testing.assert_allclose(result.best_val_loss[f], losses_seen[best])
    # It stopped `patience` epochs after its best, or at the epoch limit.
    stopped_early = result.epochs_run[f] < SETTINGS.epochs
    if stopped_early:
      assert result.epochs_run[f] == best + 1 + SETTINGS.patience
  assert all(
    len(p) == len(r)
    for p, r in zip(result.oof_probs, plan.val_rows, strict=True)
  )


def test_kept_weights_reproduce_the_best_validation_loss(runs):
  data, plan, labels, results, _ = runs
  result = results['vmap']
  loss = losses.Loss()
  for f, rows in enumerate(plan.val_rows):
    variables = jax.tree.map(lambda x, f=f: x[f], result.variables)
    stats = pp.FeatureStats(*(s[f] for s in plan.stats))
    x = pp.featurize(
      stats, np.asarray(data.numeric)[rows], np.asarray(data.codes)[rows]
    )
    logits = MODEL.apply(variables, x)
    value = float(jnp.mean(loss(logits, labels[rows])))
    np.testing.assert_allclose(value, result.best_val_loss[f], rtol=1e-4)
    np.testing.assert_allclose(
      jax.nn.sigmoid(logits), result.oof_probs[f], atol=1e-5
    )


def test_folds_learn_something(runs):
  from sklearn.metrics import roc_auc_score

  _, plan, labels, results, _ = runs
  for probs, rows in zip(results['vmap'].oof_probs, plan.val_rows, strict=True):
    assert roc_auc_score(labels[rows], probs) > 0.8


def test_splits_are_scikit_learn_kfold_shuffled_with_seed_42():
  labels = np.arange(50) % 3 == 0
  ours = cv.split_folds(labels, 5)
  theirs = model_selection.KFold(5, shuffle=True, random_state=42).split(
    np.zeros(50)
  )
  for (a_tr, a_va), (b_tr, b_va) in zip(ours, theirs, strict=True):
    np.testing.assert_array_equal(a_tr, b_tr)
    np.testing.assert_array_equal(a_va, b_va)
  strat = cv.split_folds(labels, 5, stratified=True)
  assert all(labels[va].sum() in (3, 4) for _, va in strat)


def test_padding_keeps_every_real_row_once():
  rows = [np.arange(10), np.arange(20, 27)]
  index, weight = cv.pad_rows(rows, 4)
  assert index.shape == (2, 12)
  for f, r in enumerate(rows):
    real = index[f][weight[f] == 1]
    np.testing.assert_array_equal(np.sort(real), r)
    assert set(index[f]) <= set(r)


def test_plan_weights_come_from_each_folds_own_rows():
  train_set, _ = synthetic.make_dataset(300, 10, seed=3)
  schema = pp.fit_schema(train_set.features, train_set.categorical)
  encoded = (schema, *pp.encode(schema, train_set.features))
  labels = train_set.labels
  splits = cv.split_folds(labels, 3)

  def weigh(rows):
    return 1.0 + labels[rows] + rows / 1000

  weighted = cv.make_plan(encoded, labels, splits, SETTINGS, weigh=weigh)
  for f, (tr, va) in enumerate(splits):
    for index, weight, rows in (
      (weighted.train_index[f], weighted.train_weight[f], tr),
      (weighted.val_index[f], weighted.val_weight[f], va),
    ):
      n = len(rows)
      np.testing.assert_array_equal(index[:n], rows)
      np.testing.assert_allclose(weight[:n], weigh(rows), rtol=1e-6)
      assert not weight[n:].any()


def test_a_non_finite_loss_stops_the_run():
  # The same shapes as the other runs here, so the program is cached.
  data, plan, _ = _problem()
  broken = data._replace(labels=data.labels.at[:].set(jnp.nan))
  with pytest.raises(cv.TrainingError, match='loss of fold 0 became nan'):
    _run('vmap', broken, plan)


def test_unknown_mode_is_an_error():
  data, plan, _ = _problem(300)
  with pytest.raises(ValueError, match='unknown fold mode'):
    _run('pmap', data, plan)


def test_attack_split_holds_out_whole_attack_types():
  rng = np.random.default_rng(0)
  names = rng.choice(['normal'] * 6 + list('abcdefg'), 2_000)
  labels = (names != 'normal').astype(int)
  splits = cv.split_by_attack(labels, names, 3, seed=1)
  val = np.concatenate([va for _, va in splits])
  np.testing.assert_array_equal(np.sort(val), np.arange(2_000))
  held_out = []
  for train_rows, val_rows in splits:
    assert not np.intersect1d(train_rows, val_rows).size
    assert len(train_rows) + len(val_rows) == 2_000
    seen = set(names[train_rows][labels[train_rows] == 1])
    unseen = set(names[val_rows][labels[val_rows] == 1])
    assert unseen and not seen & unseen
    held_out.append(unseen)
  assert set().union(*held_out) == set('abcdefg')
  normal_counts = [int((labels[va] == 0).sum()) for _, va in splits]
  assert max(normal_counts) - min(normal_counts) <= 1


def test_attack_split_needs_as_many_attack_types_as_folds():
  names = np.array(['normal', 'a', 'b', 'normal', 'a', 'b'])
  with pytest.raises(ValueError, match='2 attack types are too few'):
    cv.split_by_attack((names != 'normal').astype(int), names, 3)


def test_type_balance_weights_the_fold_plans():
  train_set, _ = synthetic.make_dataset(400, 10, seed=3)
  config = test_config.get_config()
  assert pipeline.loss_weights(config, train_set) is None
  config.train.type_balance = 1.0
  weigh = pipeline.loss_weights(config, train_set)
  rows = np.arange(0, 400, 2)
  weights = weigh(rows)
  labels = train_set.labels[rows]
  names = train_set.attack_names[rows]
  np.testing.assert_allclose(weights[labels == 0], 1.0)
  shares = [weights[names == t].sum() for t in np.unique(names[labels == 1])]
  assert len(shares) > 1
  np.testing.assert_allclose(shares, shares[0])
