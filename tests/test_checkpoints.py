"""Tests of saving, restoring and verifying a classifier checkpoint."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netclf import checkpoints
from netclf import classifier
from netclf import preprocessing as pp
from netclf import synthetic

SETTINGS = {
  'widths': [16, 8],
  'dropouts': [0.2, 0.1],
  'input_dropout': 0.3,
  'residual': True,
  'batch_norm': True,
  'dtype': 'float32',
}


def _classifier(num_models=2, seed=0, settings=SETTINGS):
  train_set, test_set = synthetic.make_dataset(400, 100, seed=seed)
  schema = pp.fit_schema(train_set.features, train_set.categorical)
  numeric, codes = pp.encode(schema, train_set.features)
  halves = np.array_split(np.arange(len(numeric)), num_models)
  stats = pp.stack_stats(
    [pp.fit_stats(schema, numeric[h], codes[h]) for h in halves]
  )
  model = classifier.build_model(settings)

  def init(key):
    variables = model.init(key, jnp.zeros((1, schema.num_features)))
    # Training keeps an empty batch_stats collection where there is none.
    return {'batch_stats': {}, **variables}

  keys = jax.random.split(jax.random.key(seed), num_models)
  variables = jax.vmap(init)(keys)
  clf = classifier.Classifier(
    model_settings=settings,
    variables=variables,
    preprocessor=pp.Preprocessor(schema, stats),
    threshold=0.37,
    reader={'format': 'synthetic', 'options': {}},
  )
  return clf, test_set


@pytest.mark.parametrize('batch_norm', [True, False])
def test_round_trip_gives_identical_scores(tmp_path, batch_norm):
  clf, test_set = _classifier(settings={**SETTINGS, 'batch_norm': batch_norm})
  path = checkpoints.save(tmp_path / 'ckpt', clf, config={'name': 'x'})
  restored, metadata = checkpoints.load(path)
  np.testing.assert_array_equal(
    restored.predict_proba(test_set.features),
    clf.predict_proba(test_set.features),
  )
  assert restored.threshold == 0.37
  assert metadata['config'] == {'name': 'x'}
  assert restored.num_models == 2


def test_a_checkpoint_trained_with_input_noise_scores_without_it(tmp_path):
  clf, test_set = _classifier(settings={**SETTINGS, 'input_noise': 0.5})
  restored, _ = checkpoints.load(checkpoints.save(tmp_path / 'ckpt', clf))
  assert restored.model_settings['input_noise'] == 0.5
  quiet = classifier.Classifier(
    model_settings=SETTINGS,
    variables=clf.variables,
    preprocessor=clf.preprocessor,
    threshold=clf.threshold,
  )
  np.testing.assert_array_equal(
    restored.predict_proba(test_set.features),
    quiet.predict_proba(test_set.features),
  )


def test_ensemble_scores_are_the_mean_of_its_members():
  clf, test_set = _classifier()
  member_probs = []
  for m in range(2):
    member = classifier.Classifier(
      model_settings=SETTINGS,
      variables=jax.tree.map(lambda x, m=m: x[m : m + 1], clf.variables),
      preprocessor=pp.Preprocessor(
        clf.preprocessor.schema,
        pp.FeatureStats(*(s[m : m + 1] for s in clf.preprocessor.stats)),
      ),
      threshold=0.5,
    )
    member_probs.append(member.predict_proba(test_set.features))
  np.testing.assert_allclose(
    clf.predict_proba(test_set.features),
    np.mean(member_probs, axis=0),
    rtol=1e-5,
  )


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_scores_are_those_of_the_module_as_trained(dtype):
  clf, test_set = _classifier(settings={**SETTINGS, 'dtype': dtype})
  # Batch statistics away from their initial zeros and ones.
  key = jax.random.key(1)
  clf.variables['batch_stats'] = jax.tree.map(
    lambda v: jnp.abs(v + jax.random.normal(key, v.shape)) + 0.1,
    clf.variables['batch_stats'],
  )
  numeric, codes = clf.encode(test_set.features)
  expected = []
  for m in range(clf.num_models):
    stats = pp.FeatureStats(*(s[m] for s in clf.preprocessor.stats))
    x = pp.featurize(stats, numeric, codes)
    variables = jax.tree.map(lambda v, m=m: v[m], clf.variables)
    expected.append(jax.nn.sigmoid(clf.model.apply(variables, x)))
  # float32 scores come from folded weights, bfloat16 ones from the module
  # itself, whose products keep about three significant digits.
  tolerance = 1e-6 if dtype == 'float32' else 1e-2
  np.testing.assert_allclose(
    clf.predict_encoded(numeric, codes),
    np.mean(expected, axis=0),
    rtol=tolerance,
    atol=tolerance,
  )


def test_predict_applies_the_saved_threshold():
  clf, test_set = _classifier()
  probs = clf.predict_proba(test_set.features)
  np.testing.assert_array_equal(
    clf.predict(test_set.features), (probs >= 0.37).astype(int)
  )


def test_missing_directory_is_a_checkpoint_error(tmp_path):
  with pytest.raises(checkpoints.CheckpointError, match='does not exist'):
    checkpoints.load(tmp_path / 'nope')


def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path):
  clf, _ = _classifier()
  path = checkpoints.save(tmp_path / 'ckpt', clf)
  for f in (path / 'variables').rglob('*'):
    if f.is_file():
      f.write_bytes(b'garbage')
  with pytest.raises(checkpoints.CheckpointError, match='corrupt'):
    checkpoints.load(path)


def test_shapes_that_do_not_match_the_record_are_named(tmp_path):
  clf, _ = _classifier()
  path = checkpoints.save(tmp_path / 'ckpt', clf)
  meta_file = next(pathlib.Path(path, 'metadata').rglob('metadata'))
  meta = json.loads(meta_file.read_text())
  meta['model']['widths'] = [16, 4]
  meta_file.write_text(json.dumps(meta))
  with pytest.raises(checkpoints.CheckpointError, match='shape'):
    checkpoints.load(path)


def test_a_record_with_another_depth_is_named(tmp_path):
  clf, _ = _classifier()
  path = checkpoints.save(tmp_path / 'ckpt', clf)
  meta_file = next(pathlib.Path(path, 'metadata').rglob('metadata'))
  meta = json.loads(meta_file.read_text())
  meta['model']['widths'] = [16, 8, 8]
  meta['model']['dropouts'] = [0.2, 0.1, 0.1]
  meta_file.write_text(json.dumps(meta))
  with pytest.raises(checkpoints.CheckpointError, match='do not match'):
    checkpoints.load(path)
