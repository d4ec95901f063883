"""Tests of the novelty score: distance to normal training traffic."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import cluster

from netclf import checkpoints
from netclf import classifier
from netclf import novelty
from netclf import pipeline
from netclf import preprocessing as pp
from netclf import synthetic
from tests import conftest
from tests.test_checkpoints import SETTINGS


@pytest.fixture(scope='module')
def rows():
  train_set, test_set = synthetic.make_dataset(600, 200, seed=3)
  schema = pp.fit_schema(train_set.features, train_set.categorical)
  numeric, codes = pp.encode(schema, train_set.features)
  stats = pp.fit_stats(schema, numeric, codes)
  test_numeric, test_codes = pp.encode(schema, test_set.features)
  # A NaN and a category the fitted rows never hold go through as well.
  test_numeric[0, 0] = np.nan
  test_codes[1, 0] = schema.code_offsets[0] + len(schema.vocabularies[0])
  normal = train_set.labels == 0
  return {
    'schema': schema,
    'stats': stats,
    'normal': (numeric[normal], codes[normal]),
    'test': (test_numeric, test_codes),
  }


def _nearest(centroids, x):
  gaps = x[:, None, :] - centroids[None, :, :]
  return np.sqrt((gaps**2).sum(-1)).min(axis=1)


@pytest.mark.parametrize('xp', [np, jnp], ids=['numpy', 'jax'])
def test_distances_match_the_built_inputs(rows, xp):
  stats, (numeric, codes) = rows['stats'], rows['test']
  x = pp.featurize(stats, numeric, codes)
  centroids = np.random.default_rng(0).normal(size=(7, x.shape[1]))
  centroids = centroids.astype(np.float32)
  got = novelty.distances(centroids, stats, numeric, codes, xp=xp)
  np.testing.assert_allclose(
    np.asarray(got), _nearest(centroids, x), rtol=1e-4, atol=1e-4
  )


def test_fitted_rows_score_about_zero_and_far_rows_high(rows):
  numeric, codes = rows['normal']
  ref = novelty.fit(
    rows['stats'], numeric, codes, num_centroids=8, max_rows=10_000, seed=0
  )
  assert ref.centroids.shape == (8, rows['schema'].num_features)
  own = novelty.score(ref, rows['stats'], numeric, codes)
  assert abs(own.mean()) < 1e-4
  assert own.std() == pytest.approx(1.0, rel=1e-3)
  # Rows far out on every numeric column lie far from every centroid.
  far = novelty.score(ref, rows['stats'], numeric + 1e4, codes)
  assert far.min() > own.max()


def test_fewer_distinct_rows_than_centroids_repeat_centroids(rows):
  numeric, codes = rows['normal']
  few = np.arange(3).repeat(4)
  ref = novelty.fit(
    rows['stats'],
    numeric[few],
    codes[few],
    num_centroids=16,
    max_rows=100,
    seed=0,
  )
  assert ref.centroids.shape[0] == 16
  assert len(np.unique(ref.centroids, axis=0)) == 3
  d = novelty.distances(ref.centroids, rows['stats'], numeric[few], codes[few])
  np.testing.assert_allclose(d, 0.0, atol=2e-3)


def test_max_rows_bounds_the_rows_kmeans_sees(rows, monkeypatch):
  seen = []
  fit = cluster.KMeans.fit
  monkeypatch.setattr(
    cluster.KMeans,
    'fit',
    lambda self, x: seen.append(len(x)) or fit(self, x),
  )
  numeric, codes = rows['normal']
  novelty.fit(
    rows['stats'], numeric, codes, num_centroids=4, max_rows=50, seed=0
  )
  assert seen == [50]


def test_no_normal_rows_is_a_data_error(rows):
  numeric, codes = rows['normal']
  with pytest.raises(pp.DataError, match='no normal training rows'):
    novelty.fit(
      rows['stats'],
      numeric[:0],
      codes[:0],
      num_centroids=4,
      max_rows=9,
      seed=0,
    )


def _classifier(rows, weight):
  schema, (numeric, codes) = rows['schema'], rows['normal']
  halves = np.array_split(np.arange(len(numeric)), 2)
  stats = [pp.fit_stats(schema, numeric[h], codes[h]) for h in halves]
  refs = [
    novelty.fit(
      s, numeric[h], codes[h], num_centroids=5, max_rows=1_000, seed=i
    )
    for i, (s, h) in enumerate(zip(stats, halves, strict=True))
  ]
  model = classifier.build_model(SETTINGS)
  keys = jax.random.split(jax.random.key(1), 2)
  variables = jax.vmap(
    lambda k: model.init(k, jnp.zeros((1, schema.num_features)))
  )(keys)
  return (
    classifier.Classifier(
      model_settings=SETTINGS,
      variables=variables,
      preprocessor=pp.Preprocessor(schema, pp.stack_stats(stats)),
      threshold=0.5,
      novelty=novelty.stack(refs),
      novelty_weight=weight,
    ),
    stats,
    refs,
  )


def test_each_model_adds_its_weighted_novelty_to_its_logit(rows):
  clf, stats, refs = _classifier(rows, weight=0.7)
  numeric, codes = rows['test']
  model = classifier.build_model(SETTINGS)
  expected = []
  for m in range(2):
    variables = jax.tree.map(lambda v, m=m: v[m], clf.variables)
    x = pp.featurize(stats[m], numeric, codes)
    logits = np.asarray(model.apply(variables, x), np.float64)
    novel = novelty.score(refs[m], stats[m], numeric, codes)
    expected.append(1 / (1 + np.exp(-(logits + 0.7 * novel))))
  got = clf.predict_encoded(numeric, codes)
  np.testing.assert_allclose(got, np.mean(expected, axis=0), atol=1e-5)
  # The novelty must move the scores, or the comparison shows nothing.
  plain = classifier.Classifier(
    model_settings=SETTINGS,
    variables=clf.variables,
    preprocessor=clf.preprocessor,
    threshold=0.5,
  )
  assert np.abs(plain.predict_encoded(numeric, codes) - got).max() > 1e-2


def test_take_keeps_the_chosen_models(rows):
  clf, _, _ = _classifier(rows, weight=1.0)
  numeric, codes = rows['test']
  both = clf.predict_encoded(numeric, codes)
  halves = [clf.take([m]).predict_encoded(numeric, codes) for m in range(2)]
  np.testing.assert_allclose(np.mean(halves, axis=0), both, atol=1e-6)
  width = clf.novelty.centroids.shape[2]
  assert clf.take([1]).novelty.centroids.shape == (1, 5, width)


def test_checkpoint_round_trip_keeps_the_novelty(rows, tmp_path):
  clf, _, _ = _classifier(rows, weight=1.5)
  path = checkpoints.save(tmp_path / 'ckpt', clf)
  restored, metadata = checkpoints.load(path)
  assert metadata['novelty'] == {'weight': 1.5, 'centroids': 5}
  assert restored.novelty_weight == 1.5
  numeric, codes = rows['test']
  np.testing.assert_array_equal(
    restored.predict_encoded(numeric, codes),
    clf.predict_encoded(numeric, codes),
  )


def test_a_checkpoint_missing_its_novelty_is_refused(rows, tmp_path):
  clf, _, _ = _classifier(rows, weight=1.0)
  path = checkpoints.save(tmp_path / 'ckpt', clf)
  shutil.rmtree(path / 'novelty')
  with pytest.raises(checkpoints.CheckpointError, match='novelty'):
    checkpoints.load(path)


def _run(workdir, *overrides):
  proc = conftest.run_main(
    workdir,
    '--config.final.novelty=1.0',
    '--config.final.novelty_centroids=8',
    *overrides,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = json.loads((workdir / 'report.json').read_text())
  assert report['novelty'] == {'weight': 1.0, 'centroids': 8}
  assert report['checkpoint']['verified']
  return report, checkpoints.load(workdir / 'checkpoint')[0]


def test_a_refit_fits_its_novelty_on_every_normal_row(tmp_path):
  _, clf = _run(tmp_path / 'run', '--config.final.model=refit')
  assert clf.novelty.centroids.shape[:2] == (1, 8)


def test_a_run_with_novelty_scores_out_of_fold_as_its_models_do(tmp_path):
  workdir = tmp_path / 'run'
  report, clf = _run(workdir)
  assert clf.novelty.centroids.shape[:2] == (3, 8)
  # Each random fold's out-of-fold scores are its saved member's, novelty
  # included: the threshold was chosen on what the model will output.
  config = pipeline.ml_collections.ConfigDict(report['config'])
  _, train_set, _ = pipeline.read_data(config.data)
  splits = pipeline.make_splits(config, train_set)['random']
  numeric, codes = clf.encode(train_set.features)
  with np.load(workdir / 'predictions.npz') as saved:
    oof = np.split(
      saved['oof.random.probs'], np.cumsum([len(va) for _, va in splits])[:-1]
    )
  for f, (_, va) in enumerate(splits):
    np.testing.assert_allclose(
      clf.take([f]).predict_encoded(numeric[va], codes[va]), oof[f], atol=1e-6
    )
