"""Tests of the residual MLP and the train step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from netclf import losses
from netclf import models
from netclf import train

FEATURES = 12


def _model(**kwargs):
  settings = dict(widths=(16, 8), dropouts=(0.3, 0.2), input_dropout=0.5)
  return models.ResidualMLP(**{**settings, **kwargs})


def _init(model):
  return model.init(jax.random.key(0), jnp.zeros((2, FEATURES)))


def test_one_logit_per_row_and_inference_by_default():
  model = _model()
  variables = _init(model)
  x = jax.random.normal(jax.random.key(1), (5, FEATURES))
  out = model.apply(variables, x)
  assert out.shape == (5,)
  np.testing.assert_array_equal(out, model.apply(variables, x, train=False))


def test_train_is_keyword_only():
  model = _model()
  variables = _init(model)
  with pytest.raises(TypeError):
    model.apply(variables, jnp.zeros((2, FEATURES)), True)


def test_dropout_is_active_in_training():
  model = _model()
  variables = _init(model)
  x = jax.random.normal(jax.random.key(1), (64, FEATURES))

  def run(seed):
    out, _ = model.apply(
      variables,
      x,
      train=True,
      rngs={'dropout': jax.random.key(seed)},
      mutable=['batch_stats'],
    )
    return out

  assert not np.allclose(run(0), run(1))


@pytest.mark.parametrize('rate', [0.2, 0.4, 0.7, 0.9])
def test_dropout_drops_its_rate_and_keeps_the_expectation(rate):
  # 7 units per row: the last random word of each row is only partly used.
  x = jnp.full((20000, 7), 2.0)
  out = models.Dropout(rate).apply(
    {}, x, deterministic=False, rngs={'dropout': jax.random.key(0)}
  )
  out = np.asarray(out)
  dropped = models.dropout_levels(rate) / models.DROPOUT_LEVELS
  assert abs(dropped - rate) <= 0.5 / models.DROPOUT_LEVELS
  kept = out != 0
  # Three standard errors of a binomial fraction over 140,000 units.
  assert abs((1 - kept.mean()) - dropped) < 3 * np.sqrt(
    rate * (1 - rate) / out.size
  )
  np.testing.assert_allclose(out[kept], 2.0 / (1 - dropped), rtol=1e-6)
  np.testing.assert_allclose(out.mean(), 2.0, rtol=0.02)
  # Every unit position, the partly used last word's included, drops alike.
  per_unit = 1 - kept.mean(axis=0)
  assert np.all(
    np.abs(per_unit - dropped) < 4 * np.sqrt(rate * (1 - rate) / len(out))
  )


def test_dropout_masks_differ_across_rows_keys_and_units():
  x = jnp.ones((64, 40))
  apply = lambda seed: np.asarray(
    models.Dropout(0.5).apply(
      {}, x, deterministic=False, rngs={'dropout': jax.random.key(seed)}
    )
  )
  a, b = apply(0), apply(1)
  assert not np.array_equal(a, b)
  assert len({row.tobytes() for row in a}) == len(a)
  assert len({col.tobytes() for col in a.T}) == a.shape[1]


def test_dropout_is_the_identity_at_inference_and_at_rate_zero():
  x = jax.random.normal(jax.random.key(1), (8, 5))
  for rate, deterministic in [(0.7, True), (0.0, False)]:
    out = models.Dropout(rate).apply(
      {}, x, deterministic=deterministic, rngs={'dropout': jax.random.key(0)}
    )
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize('rate', [0.001, 0.999, 1.0])
def test_dropout_refuses_a_rate_that_rounds_to_zero_or_one(rate):
  with pytest.raises(ValueError, match=r'in \[1/256, 255/256\]'):
    models.Dropout(rate).apply(
      {},
      jnp.ones((2, 3)),
      deterministic=False,
      rngs={'dropout': jax.random.key(0)},
    )


def test_input_noise_has_the_configured_scale_in_training_only():
  noise = models.GaussianNoise(0.3)
  x = jnp.ones((4000, 8))
  key = jax.random.key(0)
  noisy = noise.apply({}, x, deterministic=False, rngs={'dropout': key})
  spread = np.asarray(noisy - x)
  assert abs(spread.mean()) < 0.01
  np.testing.assert_allclose(spread.std(), 0.3, rtol=0.03)
  np.testing.assert_array_equal(noise.apply({}, x, deterministic=True), x)


def test_input_noise_changes_training_outputs_but_not_the_parameters():
  quiet = _model(input_dropout=0.0)
  noisy = _model(input_dropout=0.0, input_noise=0.5)
  variables = _init(quiet)
  assert jax.tree.structure(variables) == jax.tree.structure(_init(noisy))
  x = jax.random.normal(jax.random.key(1), (64, FEATURES))

  def run(model):
    out, _ = model.apply(
      variables,
      x,
      train=True,
      rngs={'dropout': jax.random.key(0)},
      mutable=['batch_stats'],
    )
    return out

  assert not np.allclose(run(quiet), run(noisy))
  np.testing.assert_array_equal(
    quiet.apply(variables, x), noisy.apply(variables, x)
  )


def test_switches_change_the_parameters():
  with_all = _init(_model())
  assert 'batch_stats' in with_all
  assert any('skip' in k for k in with_all['params']['DenseBlock_0'])
  plain = _init(_model(residual=False, batch_norm=False))
  assert 'batch_stats' not in plain
  assert not any('skip' in k for k in plain['params']['DenseBlock_0'])


def _trained_looking(variables, seed=0):
  """`variables` with every value moved off its initial value.

  Fresh batch statistics are zero means and unit variances, which would
  let a wrong folding of batch norm pass.
  """
  leaves, tree = jax.tree.flatten(variables)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  moved = [
    leaf + 0.5 * jax.random.normal(key, leaf.shape)
    for leaf, key in zip(leaves, keys, strict=True)
  ]
  moved = jax.tree.unflatten(tree, moved)
  if 'batch_stats' in moved:  # Variances stay positive.
    moved['batch_stats'] = jax.tree.map_with_path(
      lambda path, v: jnp.abs(v) + 0.1 if path[-1].key == 'var' else v,
      moved['batch_stats'],
    )
  return moved


@pytest.mark.parametrize(
  'settings',
  [
    {},
    {'residual': False},
    {'batch_norm': False},
    {'residual': False, 'batch_norm': False},
    {'widths': (FEATURES, 8)},  # The first block's skip is the identity.
    {'widths': (16, 16), 'dropouts': (0.3, 0.2)},  # So is the last's.
    {'widths': (8,), 'dropouts': (0.2,)},  # One block, projected skip.
    {'widths': (FEATURES,), 'dropouts': (0.2,)},  # One block, identity.
  ],
)
def test_folded_logits_match_the_module_at_inference(settings):
  model = _model(**settings)
  variables = _trained_looking(_init(model))
  x = jax.random.normal(jax.random.key(2), (64, FEATURES))
  expected = model.apply(variables, x, train=False)
  folded = model.apply(
    variables, x.__matmul__, method=models.ResidualMLP.folded_logits
  )
  assert folded.dtype == expected.dtype
  np.testing.assert_allclose(folded, expected, rtol=1e-5, atol=1e-5)
  if 'batch_stats' in variables:
    # The comparison can tell: with fresh statistics the logits differ, so a
    # folding that ignored them would fail.
    fresh = {**variables, 'batch_stats': _init(model)['batch_stats']}
    unfolded = model.apply(fresh, x, train=False)
    assert not np.allclose(unfolded, expected, rtol=1e-3, atol=1e-3)


def test_output_bias_starts_at_the_prior_log_odds():
  prior = np.log(0.2 / 0.8)
  state = train.create_train_state(
    _model(), jax.random.key(0), FEATURES, optax.adam(1e-3), prior_logit=prior
  )
  np.testing.assert_allclose(state.params['head']['bias'], [prior], rtol=1e-6)


def _batch(n=32, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, FEATURES)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.float32)
  return {'x': x, 'y': y, 'w': np.ones(n, np.float32)}


def test_train_step_gives_finite_metrics_and_moves_params():
  state = train.create_train_state(
    _model(), jax.random.key(0), FEATURES, optax.adam(1e-2), prior_logit=0.0
  )
  step = jax.jit(train.train_step, static_argnames='loss')
  new, metrics = step(state, _batch(), jax.random.key(1), loss=losses.Loss())
  assert np.isfinite(metrics['loss'])
  assert metrics['weight'] == 32
  moved = jax.tree.map(
    lambda a, b: bool(np.any(a != b)), state.params, new.params
  )
  assert any(jax.tree.leaves(moved))
  assert int(new.step) == 1


def test_rows_with_zero_weight_do_not_count():
  state = train.create_train_state(
    _model(), jax.random.key(0), FEATURES, optax.adam(1e-2), prior_logit=0.0
  )
  batch = _batch()
  batch['w'][20:] = 0.0
  flipped = dict(batch, y=batch['y'].copy())
  flipped['y'][20:] = 1 - flipped['y'][20:]
  key = jax.random.key(1)
  step = jax.jit(train.train_step, static_argnames='loss')
  _, a = step(state, batch, key, loss=losses.Loss())
  _, b = step(state, flipped, key, loss=losses.Loss())
  np.testing.assert_allclose(a['loss'], b['loss'], rtol=1e-6)
  assert a['weight'] == 20


def test_restart_keeps_weights_and_resets_the_optimizer():
  tx = optax.adam(1e-2)
  state = train.create_train_state(
    _model(), jax.random.key(0), FEATURES, tx, prior_logit=0.0
  )
  step = jax.jit(train.train_step, static_argnames='loss')
  state, _ = step(state, _batch(), jax.random.key(1), loss=losses.Loss())
  fresh = train.restart(state, state.apply_fn, tx)
  assert int(fresh.step) == 0
  jax.tree.map(np.testing.assert_array_equal, fresh.params, state.params)
  jax.tree.map(
    np.testing.assert_array_equal, fresh.opt_state, tx.init(state.params)
  )
