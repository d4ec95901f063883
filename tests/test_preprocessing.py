"""Tests of preprocessing: fitted on training rows, applied anywhere."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from netclf import cross_validation as cv
from netclf import preprocessing as pp
from netclf import readers


def _frame(n=200, seed=0):
  rng = np.random.default_rng(seed)
  return pd.DataFrame(
    {
      'bytes': rng.lognormal(5, 2, n),
      'rate': rng.uniform(0, 1, n),
      'delta': rng.normal(0, 3, n),
      'proto': rng.choice(['tcp', 'udp', 'icmp'], n),
      'flag': rng.choice(['SF', 'S0'], n),
    }
  )


def _fit(frame, **kwargs):
  schema = pp.fit_schema(frame, ['proto', 'flag'])
  numeric, codes = pp.encode(schema, frame)
  return schema, numeric, codes, pp.fit_stats(schema, numeric, codes, **kwargs)


def test_auto_log1p_picks_non_negative_columns_above_one():
  _, _, _, stats = _fit(_frame())
  # bytes: heavy-tailed counts; rate stays in [0, 1]; delta has negatives.
  np.testing.assert_array_equal(stats.log1p, [1.0, 0.0, 0.0])
  _, _, _, none = _fit(_frame(), log1p='none')
  np.testing.assert_array_equal(none.log1p, [0.0, 0.0, 0.0])
  _, _, _, named = _fit(_frame(), log1p=('rate',))
  np.testing.assert_array_equal(named.log1p, [0.0, 1.0, 0.0])


def test_features_are_standardised_on_fit_rows():
  schema, numeric, codes, stats = _fit(_frame())
  x = pp.featurize(stats, numeric, codes)
  assert x.shape == (200, schema.num_features)
  np.testing.assert_allclose(x[:, :3].mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(x[:, :3].std(0), 1, atol=1e-4)
  # Each categorical column sets exactly one slot.
  assert np.all(x[:, 3:].sum(1) == 2)


def test_non_finite_values_take_values_from_training_rows():
  frame = _frame()
  frame.loc[[0, 1], 'delta'] = [np.nan, np.inf]
  frame.loc[2, 'delta'] = -np.inf
  schema, numeric, codes, stats = _fit(frame)
  finite = frame['delta'].to_numpy()[3:]
  np.testing.assert_allclose(stats.fill_nan[2], np.median(finite), rtol=1e-5)
  np.testing.assert_allclose(stats.fill_posinf[2], finite.max(), rtol=1e-6)
  np.testing.assert_allclose(stats.fill_neginf[2], finite.min(), rtol=1e-6)
  x = pp.featurize(stats, numeric, codes)
  assert np.all(np.isfinite(x))
  assert pp.count_nonfinite(schema, numeric) == {
    'delta': {'nan': 1, 'posinf': 1, 'neginf': 1}
  }


def test_unseen_categories_go_to_the_unknown_slot():
  schema, _, _, stats = _fit(_frame())
  test = _frame(5, seed=1)
  test.loc[0, 'proto'] = 'sctp'
  numeric, codes = pp.encode(schema, test)
  assert pp.count_unknown(schema, codes) == {'proto': 1}
  x = pp.featurize(stats, numeric, codes)
  names = schema.feature_names
  assert x[0, names.index(f'proto={pp.UNKNOWN}')] == 1
  assert x[1:, names.index(f'proto={pp.UNKNOWN}')].sum() == 0


def test_validation_rows_cannot_change_a_folds_statistics():
  frame = _frame(300)
  labels = np.arange(300) % 2
  splits = cv.split_folds(labels, 3)
  schema = pp.fit_schema(frame, ['proto', 'flag'])
  settings = cv.TrainSettings(batch_size=16, eval_batch_size=16)

  def plan_for(f):
    numeric, codes = pp.encode(pp.fit_schema(f, ['proto', 'flag']), f)
    return cv.make_plan((schema, numeric, codes), labels, splits, settings)

  before = plan_for(frame)
  changed = frame.copy()
  val_rows = splits[0][1]
  changed.loc[val_rows, 'bytes'] = 1e12
  changed.loc[val_rows, 'delta'] = np.nan
  after = plan_for(changed)
  for field in pp.FeatureStats._fields:
    np.testing.assert_array_equal(
      getattr(before.stats, field)[0], getattr(after.stats, field)[0]
    )
  # The other folds train on those rows, so theirs must move.
  assert not np.array_equal(before.stats.mean[1], after.stats.mean[1])


def test_a_category_seen_only_in_validation_is_unknown_to_that_fold():
  frame = _frame(300)
  labels = np.arange(300) % 2
  splits = cv.split_folds(labels, 3)
  val_row = splits[0][1][0]
  frame.loc[val_row, 'proto'] = 'gre'
  schema = pp.fit_schema(frame, ['proto', 'flag'])
  numeric, codes = pp.encode(schema, frame)
  settings = cv.TrainSettings(batch_size=16, eval_batch_size=16)
  plan = cv.make_plan((schema, numeric, codes), labels, splits, settings)
  fold0 = pp.FeatureStats(*(s[0] for s in plan.stats))
  fold1 = pp.FeatureStats(*(s[1] for s in plan.stats))
  row = slice(val_row, val_row + 1)
  names = schema.feature_names
  x0 = pp.featurize(fold0, numeric[row], codes[row])
  x1 = pp.featurize(fold1, numeric[row], codes[row])
  assert x0[0, names.index(f'proto={pp.UNKNOWN}')] == 1
  assert x1[0, names.index('proto=gre')] == 1


def test_numpy_and_jax_give_the_same_features():
  schema, numeric, codes, stats = _fit(_frame())
  host = pp.featurize(stats, numeric, codes)
  device = pp.featurize(
    pp.FeatureStats(*map(jnp.asarray, stats)),
    jnp.asarray(numeric),
    jnp.asarray(codes),
    xp=jnp,
  )
  np.testing.assert_allclose(host, device, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('xp', [np, jnp])
def test_first_layer_equals_features_times_the_kernel(xp):
  frame = _frame()
  schema, numeric, codes, stats = _fit(frame.iloc[:150])
  # Unseen rows, with a category training never showed.
  later = frame.iloc[150:].copy()
  later.loc[later.index[0], 'proto'] = 'gre'
  numeric, codes = pp.encode(schema, later)
  if xp is jnp:
    stats = pp.FeatureStats(*map(jnp.asarray, stats))
  x = pp.featurize(stats, numeric, codes, xp=xp)
  kernel = np.random.default_rng(0).normal(size=(x.shape[1], 7))
  kernel = kernel.astype(np.float32)
  np.testing.assert_allclose(
    pp.first_layer(stats, numeric, codes, xp=xp)(xp.asarray(kernel)),
    x @ kernel,
    rtol=1e-5,
    atol=1e-5,
  )


def test_json_round_trip_keeps_every_value():
  schema, numeric, codes, stats = _fit(_frame())
  stacked = pp.stack_stats([stats, stats])
  pre = pp.Preprocessor(schema, stacked)
  again = pp.Preprocessor.from_json(pre.to_json())
  assert again.schema == schema
  for a, b in zip(again.stats, stacked, strict=True):
    np.testing.assert_array_equal(a, b)
    assert a.dtype == b.dtype


def test_corrupt_json_is_a_data_error():
  with pytest.raises(readers.DataError, match='preprocessing record'):
    pp.Preprocessor.from_json('{"numeric": []}')


def test_missing_column_is_named():
  schema, _, _, _ = _fit(_frame())
  with pytest.raises(readers.DataError, match="missing feature column 'rate'"):
    pp.encode(schema, _frame().drop(columns=['rate']), source='flows.csv')


@pytest.mark.parametrize(
  'dtype', ['int64', 'uint8', 'float32', 'Int64', object]
)
def test_numbers_of_any_type_and_column_order_encode_alike(dtype):
  schema, _, _, _ = _fit(_frame())
  values = [0, 3, 250, 7, 1, 12]
  frame = _frame(6).assign(bytes=pd.Series(values).astype(dtype))
  numeric, _ = pp.encode(schema, frame[frame.columns[::-1]])
  want = np.stack(
    [values, frame['rate'], frame['delta']], axis=1, dtype=np.float32
  )
  np.testing.assert_array_equal(numeric, want)


def test_text_in_a_numeric_column_is_named_with_its_row():
  schema, _, _, _ = _fit(_frame())
  frame = _frame(5).astype({'bytes': object})
  frame.loc[3, 'bytes'] = 'lots'
  with pytest.raises(readers.DataError, match=r"row 4: column 'bytes'.*'lots'"):
    pp.encode(schema, frame)


def test_infinity_spelled_out_is_a_number():
  schema, _, _, _ = _fit(_frame())
  frame = _frame(3).astype({'bytes': object})
  frame.loc[:, 'bytes'] = ['Infinity', '-inf', '']
  numeric, _ = pp.encode(schema, frame)
  assert numeric[0, 0] == np.inf and numeric[1, 0] == -np.inf
  assert np.isnan(numeric[2, 0])


@pytest.mark.parametrize(
  'values, dtype',
  [
    ([' tcp', 'udp ', 'tcp', 'sctp', '', 'udp'], object),
    (['tcp', np.nan, None, 'nan', 'None'], object),
    (['tcp', np.nan, 'udp'], 'str'),
    ([1, 1.0, True, '1', 'True'], object),
    (['tcp', 'udp', 'tcp'], 'category'),
  ],
)
def test_category_codes_compare_values_as_stripped_text(values, dtype):
  vocab = ('', '1', '1.0', 'None', 'True', 'nan', 'tcp', 'udp')
  schema = pp.Schema(('bytes',), ('proto',), (vocab,))
  column = pd.Series(values, dtype=dtype)
  frame = pd.DataFrame({'bytes': np.zeros(len(values)), 'proto': column})
  _, codes = pp.encode(schema, frame)
  # Written out: each value as stripped text, found in the vocabulary.
  text = column.astype(str).str.strip()
  want = [vocab.index(v) if v in vocab else len(vocab) for v in text]
  np.testing.assert_array_equal(codes[:, 0], want)
