"""Tests for the generated flow data set."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.preprocessing import OneHotEncoder
from sklearn.preprocessing import StandardScaler

from netclf import synthetic

_RATES = [c for c in synthetic.FEATURES if c.endswith('_rate')]
_HEAVY = ['duration', 'src_bytes', 'dst_bytes', 'src_packets', 'dst_packets']


@pytest.fixture(scope='module')
def splits():
  return synthetic.make_dataset(4000, 2000, seed=0)


def test_same_seed_gives_same_data():
  first = synthetic.make_dataset(300, 200, seed=7)
  second = synthetic.make_dataset(300, 200, seed=7)
  for a, b in zip(first, second, strict=True):
    pd.testing.assert_frame_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.attack_names, b.attack_names)


def test_different_seeds_give_different_data():
  a, _ = synthetic.make_dataset(300, 200, seed=1)
  b, _ = synthetic.make_dataset(300, 200, seed=2)
  assert not a.features.equals(b.features)


def test_layout(splits):
  for ds in splits:
    assert tuple(ds.features.columns) == synthetic.FEATURES
    assert 15 <= len(synthetic.FEATURES) <= 25
    assert ds.categorical == synthetic.CATEGORICAL
    assert isinstance(ds.features.index, pd.RangeIndex)
    for column, dtype in ds.features.dtypes.items():
      expected = object if column in ds.categorical else np.float64
      assert dtype == expected, column
    assert ds.labels.dtype == np.int32
    np.testing.assert_array_equal(ds.labels, ds.attack_names != 'normal')
  train, test = splits
  assert (len(train), len(test)) == (4000, 2000)


def test_value_ranges(splits):
  for ds in splits:
    rates = ds.features[_RATES].to_numpy()
    assert rates.min() >= 0 and rates.max() <= 1
    heavy = ds.features[_HEAVY].to_numpy()
    assert np.isfinite(heavy).all() and heavy.min() >= 0
  # Byte counts should be heavy-tailed: the top percentile far above median.
  src = splits[0].features['src_bytes']
  assert src.quantile(0.99) > 20 * src.median()


def test_attack_shares_and_novel_families(splits):
  train, test = splits
  assert 0.15 <= train.labels.mean() <= 0.25
  novel = set(test.attack_names) - set(train.attack_names)
  assert novel
  share = np.isin(test.attack_names, list(novel)).sum() / test.labels.sum()
  assert 0.2 <= share <= 0.5


def test_tiny_sizes():
  train, test = synthetic.make_dataset(5, 1, seed=0)
  assert (len(train), len(test)) == (5, 1)
  assert train.labels.shape == (5,)


def test_learnable_but_not_trivial(splits):
  train, test = splits
  numeric = [c for c in synthetic.FEATURES if c not in synthetic.CATEGORICAL]
  model = make_pipeline(
    make_column_transformer(
      (OneHotEncoder(handle_unknown='ignore'), list(synthetic.CATEGORICAL)),
      (make_pipeline(FunctionTransformer(np.log1p), StandardScaler()), numeric),
    ),
    LogisticRegression(max_iter=1000),
  )
  model.fit(train.features, train.labels)
  train_auc = roc_auc_score(
    train.labels, model.predict_proba(train.features)[:, 1]
  )
  test_auc = roc_auc_score(
    test.labels, model.predict_proba(test.features)[:, 1]
  )
  assert 0.80 <= test_auc <= 0.995
  # Families unseen in training make the test split harder.
  assert train_auc > test_auc + 0.02
