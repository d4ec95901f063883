"""Scoring new rows with a saved checkpoint, from Python and the command line.

The checkpoint is trained once for the module. The command-line cases run
a few at a time, as each one starts JAX afresh.
"""

import concurrent.futures
import csv
import io
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import netclf
from netclf import checkpoints
from netclf import classifier
from netclf import predict
from netclf import preprocessing
from netclf import readers
from netclf import synthetic
from tests import conftest

ENV = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(conftest.REPO_ROOT))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  """Trains the test config once for the module."""
  workdir = tmp_path_factory.mktemp('run')
  proc = subprocess.run(
    [
      sys.executable,
      '-m',
      'netclf.main',
      '--config=configs/test.py',
      f'--workdir={workdir}',
    ],
    cwd=conftest.REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=600,
    env=ENV,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir / 'checkpoint'


@pytest.fixture(scope='module')
def clf(checkpoint):
  return netclf.load(checkpoint)


@pytest.fixture(scope='module')
def test_set():
  return synthetic.make_dataset(1200, 400, seed=0)[1]


def _quirky(test_set):
  """The test rows with an id, a label, extra text and odd values."""
  frame = test_set.features.copy()
  frame.insert(0, 'flow_id', [f'flow-{i}' for i in range(len(frame))])
  frame['label'] = test_set.labels
  frame['note'] = 'mirrored port'
  frame.loc[3, 'src_bytes'] = np.nan
  frame.loc[4, 'dst_bytes'] = np.inf
  frame.loc[5, 'duration'] = -np.inf
  frame.loc[6, 'service'] = 'gopher'
  frame.loc[7, 'protocol'] = 'sctp'
  return frame


# Each bad case and the words its error line must hold.
BAD_INPUTS = {
  'no_column': ['no_column.csv', "missing feature column 'src_bytes'"],
  'non_numeric': ['line 8', "column 'count'", "non-numeric value 'lots'"],
  'empty': ['empty.csv', 'file is empty'],
  'no_file': ['flows.csv', 'does not exist'],
  'directory': ['is a directory'],
  'header_only': ['header_only.csv', 'header but no data rows'],
  'unreadable': ['unreadable.csv', 'cannot be read'],
}
BAD_CHECKPOINTS = {
  'no_checkpoint': ['checkpoint', 'does not exist'],
  'truncated': ['checkpoint', 'unreadable or corrupt'],
  'corrupt': ['checkpoint', 'unreadable or corrupt'],
  'shapes': ['checkpoint', 'has shape', 'its record says'],
}


def _predict_command(checkpoint, input_path, output_path, *flags):
  return [
    '-m',
    'netclf.predict',
    f'--checkpoint={checkpoint}',
    f'--input={input_path}',
    f'--output={output_path}',
    *flags,
  ]


def _python(args, cwd=conftest.REPO_ROOT, env=ENV):
  return subprocess.run(
    [sys.executable, *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=300,
    env=env,
  )


def _damaged_checkpoint(checkpoint, path, damage):
  """Copies a checkpoint and damages the copy."""
  if damage == 'no_checkpoint':
    return path
  shutil.copytree(checkpoint, path)
  data = sorted(
    (f for f in (path / 'variables').rglob('*') if f.is_file()),
    key=lambda f: f.stat().st_size,
  )
  if damage == 'truncated':
    # Cut every file of stored arrays short (the largest file alone may be
    # one that loading can do without).
    for f in data:
      if f.parent.name == 'd':
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
  elif damage == 'corrupt':
    # Overwrite the stored arrays, keeping their sizes.
    for f in data:
      if f.parent.name == 'd':
        size = f.stat().st_size
        f.write_bytes((b'\x00garbage' * (size // 8 + 1))[:size])
  elif damage == 'shapes':
    record = path / 'metadata' / 'metadata'
    meta = json.loads(record.read_text())
    meta['model']['widths'] = [16, 16]
    record.write_text(json.dumps(meta))
  return path


def _bad_inputs(root, test_set):
  """Writes one bad input file per case; returns `{case: path}`."""
  frame = test_set.features
  paths = {case: root / f'{case}.csv' for case in BAD_INPUTS}
  paths['no_file'] = root / 'missing' / 'flows.csv'
  paths['directory'] = root
  frame.drop(columns=['src_bytes']).to_csv(paths['no_column'], index=False)
  text = frame.astype({'count': object})
  text.loc[6, 'count'] = 'lots'
  text.to_csv(paths['non_numeric'], index=False)
  paths['empty'].write_text('')
  frame.head(0).to_csv(paths['header_only'], index=False)
  if os.geteuid() == 0:
    del paths['unreadable']  # Root reads files whatever their permissions.
  else:
    frame.to_csv(paths['unreadable'], index=False)
    paths['unreadable'].chmod(0)
  return paths


@pytest.fixture(scope='module')
def cli_runs(checkpoint, test_set, tmp_path_factory):
  """Runs every command-line case, as many at a time as there are cores.

  Returns `{case: (completed process, its output directory)}`.
  """
  root = tmp_path_factory.mktemp('cli')
  inputs = root / 'inputs'
  inputs.mkdir()
  jobs = {}
  for case, path in _bad_inputs(inputs, test_set).items():
    jobs[case] = (checkpoint, path)
  good = inputs / 'flows.csv'
  _quirky(test_set).to_csv(good, index=False)
  for case in BAD_CHECKPOINTS:
    jobs[case] = (_damaged_checkpoint(checkpoint, root / case, case), good)
  commands = {}
  for case, (ckpt, path) in jobs.items():
    (root / 'out' / case).mkdir(parents=True)
    output = root / 'out' / case / 'scores.csv'
    commands[case] = _predict_command(ckpt, path, output)
  (root / 'out' / 'good').mkdir()
  commands['good'] = _predict_command(
    checkpoint,
    good,
    root / 'out' / 'good' / 'scores.csv',
    '--chunk_rows=64',
    '--id_column=flow_id',
  )
  # The package alone on the path, run from a directory without configs.
  copy = shutil.copytree(checkpoint, root / 'elsewhere' / 'model')
  bare = root / 'bare'
  shutil.copytree(
    conftest.REPO_ROOT / 'netclf',
    bare / 'site' / 'netclf',
    ignore=shutil.ignore_patterns('__pycache__'),
  )
  commands['api'] = [
    '-c',
    'import json, sys, netclf, pandas; '
    'clf = netclf.load(sys.argv[1]); '
    'probs = clf.predict_proba(pandas.read_csv(sys.argv[2])); '
    "print(json.dumps([probs.tolist(), 'configs' in sys.modules, "
    "'sklearn' in sys.modules]))",
    str(copy),
    str(good),
  ]
  api_env = dict(ENV, PYTHONPATH=str(bare / 'site'))
  workers = os.cpu_count() or 2
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    futures = {
      case: pool.submit(_python, args)
      for case, args in commands.items()
      if case != 'api'
    }
    futures['api'] = pool.submit(_python, commands['api'], bare, api_env)
  return {
    case: (f.result(), root / 'out' / case) for case, f in futures.items()
  }


@pytest.mark.parametrize('case', [*BAD_INPUTS, *BAD_CHECKPOINTS])
def test_bad_input_is_one_line_and_status_2(cli_runs, case):
  if case == 'unreadable' and os.geteuid() == 0:
    pytest.skip('root reads files whatever their permissions')
  proc, out = cli_runs[case]
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  errors = [
    line for line in proc.stderr.splitlines() if line.startswith('netclf:')
  ]
  assert len(errors) == 1, proc.stderr[-2000:]
  assert errors[0].startswith('netclf: error: ')
  for words in {**BAD_INPUTS, **BAD_CHECKPOINTS}[case]:
    assert words in errors[0], errors[0]
  assert list(out.iterdir()) == []  # Neither scores nor a partial file.


def test_command_line_scores_every_row(cli_runs, clf, test_set):
  proc, out = cli_runs['good']
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert [f.name for f in out.iterdir()] == ['scores.csv']
  scores = pd.read_csv(out / 'scores.csv')
  frame = _quirky(test_set)
  assert list(scores.columns) == ['flow_id', 'attack_probability', 'is_attack']
  assert scores['flow_id'].tolist() == frame['flow_id'].tolist()
  probs = clf.predict_proba(frame)
  np.testing.assert_allclose(scores['attack_probability'], probs, atol=1e-6)
  np.testing.assert_array_equal(
    scores['is_attack'], (probs >= clf.threshold).astype(int)
  )
  for words in ('Scored 400 rows', 'note', "label column 'label'", 'unseen'):
    assert words in proc.stderr, words
  assert 'Non-finite' in proc.stderr


def test_a_copied_checkpoint_scores_from_anywhere(cli_runs, clf, test_set):
  proc, _ = cli_runs['api']
  assert proc.returncode == 0, proc.stderr[-3000:]
  last_line = proc.stdout.strip().splitlines()[-1]
  probs, imported_configs, imported_sklearn = json.loads(last_line)
  assert not imported_configs
  # Scoring never fits, so it leaves scikit-learn's second of imports out.
  assert not imported_sklearn
  expected = clf.predict_proba(_quirky(test_set))
  np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_chunks_score_like_one_chunk(clf, test_set, tmp_path):
  path = tmp_path / 'flows.csv'
  test_set.features.to_csv(path, index=False)
  one = predict.score_file(clf, path, tmp_path / 'one.csv')
  many = predict.score_file(clf, path, tmp_path / 'many.csv', chunk_rows=7)
  assert one['rows'] == many['rows'] == 400
  assert one['attacks'] == many['attacks']
  first = pd.read_csv(tmp_path / 'one.csv')
  pd.testing.assert_frame_equal(first, pd.read_csv(tmp_path / 'many.csv'))
  assert first['row'].tolist() == list(range(400))
  expected = clf.predict_proba(test_set.features)
  np.testing.assert_allclose(first['attack_probability'], expected, atol=1e-6)
  assert first['is_attack'].sum() == one['attacks']
  assert one['label_rows'] == 0 and one['extra_columns'] == []
  assert sorted(p.name for p in tmp_path.iterdir()) == [
    'flows.csv',
    'many.csv',
    'one.csv',
  ]


def test_odd_rows_are_scored_and_counted(clf, test_set, tmp_path, caplog):
  frame = _quirky(test_set)
  path = tmp_path / 'flows.csv'
  frame.to_csv(path, index=False)
  with caplog.at_level(logging.INFO):
    summary = predict.score_file(
      clf, path, tmp_path / 'scores.csv', chunk_rows=3, id_column='flow_id'
    )
  assert summary['extra_columns'] == ['note']
  assert summary['label_column'] == 'label'
  assert summary['label_rows'] == 400
  assert summary['unknown_categories'] == {'protocol': 1, 'service': 1}
  assert summary['nonfinite'] == {
    'duration': {'neginf': 1},
    'src_bytes': {'nan': 1},
    'dst_bytes': {'posinf': 1},
  }
  scores = pd.read_csv(tmp_path / 'scores.csv')
  probs = clf.predict_proba(frame)
  assert np.isfinite(probs).all()
  np.testing.assert_allclose(scores['attack_probability'], probs, atol=1e-6)
  warned = ' '.join(r.getMessage() for r in caplog.records)
  for words in ('note', "'label' (400 rows)", 'unseen', 'Non-finite'):
    assert words in warned, words


def test_the_api_reads_frames_of_text(clf, test_set):
  # As pandas reads a file when told that every column is text.
  frame = test_set.features.astype(str)
  probs = clf.predict_proba(frame)
  np.testing.assert_allclose(
    probs, clf.predict_proba(test_set.features), atol=1e-6
  )
  assert clf.predict(frame).tolist() == (probs >= clf.threshold).tolist()


def test_unreadable_input_is_a_data_error(clf, tmp_path, monkeypatch):
  path = tmp_path / 'flows.csv'
  path.write_text('a,b\n1,2\n')

  def refuse(self, *args, **kwargs):
    raise PermissionError(13, 'Permission denied')

  monkeypatch.setattr(pathlib.Path, 'open', refuse)
  with pytest.raises(readers.DataError, match='flows.csv: cannot be read'):
    predict.score_file(clf, path, tmp_path / 'out.csv')
  assert sorted(p.name for p in tmp_path.iterdir()) == ['flows.csv']


def test_id_column_must_exist(clf, test_set, tmp_path):
  path = tmp_path / 'flows.csv'
  test_set.features.to_csv(path, index=False)
  with pytest.raises(readers.DataError, match="missing id column 'flow'"):
    predict.score_file(clf, path, tmp_path / 'out.csv', id_column='flow')
  assert not (tmp_path / 'out.csv').exists()


@pytest.fixture(scope='module')
def nsl_kdd_model(tmp_path_factory):
  """A checkpoint in the NSL-KDD layout, its preprocessing fitted on real rows.

  The network is left untrained: training it would add a compilation of the
  fold programs, and these tests check how rows are read, not how well
  they are scored.
  """
  train = readers.read_nsl_kdd(
    conftest.nsl_kdd_dir() / 'KDDTrain+_20Percent.txt'
  )
  schema = preprocessing.fit_schema(train.features, train.categorical)
  numeric, codes = preprocessing.encode(schema, train.features)
  stats = preprocessing.fit_stats(schema, numeric, codes)
  settings = {
    'widths': [16],
    'dropouts': [0.1],
    'input_dropout': 0.2,
    'residual': True,
    'batch_norm': True,
    'dtype': 'float32',
  }
  model = classifier.build_model(settings)
  x = jnp.zeros((1, schema.num_features))
  variables = jax.vmap(lambda key: model.init(key, x))(
    jax.random.split(jax.random.key(0), 1)
  )
  clf = classifier.Classifier(
    model_settings=settings,
    variables=variables,
    preprocessor=preprocessing.Preprocessor(
      schema, preprocessing.stack_stats([stats])
    ),
    threshold=0.5,
    reader={'format': 'nsl_kdd', 'options': {}},
  )
  path = tmp_path_factory.mktemp('nsl_kdd') / 'checkpoint'
  return netclf.load(checkpoints.save(path, clf))


def test_nsl_kdd_rows_with_and_without_labels(nsl_kdd_model, tmp_path):
  model = nsl_kdd_model
  test_file = conftest.nsl_kdd_dir() / 'KDDTest+.txt'
  lines = test_file.read_text().splitlines()[:300]
  labelled = tmp_path / 'labelled.txt'
  labelled.write_text('\n'.join(lines) + '\n')
  bare = tmp_path / 'features.txt'
  bare.write_text(''.join(','.join(x.split(',')[:41]) + '\n' for x in lines))
  summaries = [
    predict.score_file(
      model, path, tmp_path / f'{path.stem}.csv', chunk_rows=64
    )
    for path in (labelled, bare)
  ]
  assert [s['rows'] for s in summaries] == [300, 300]
  assert [s['label_rows'] for s in summaries] == [300, 0]
  with_labels = pd.read_csv(tmp_path / 'labelled.csv')
  pd.testing.assert_frame_equal(
    with_labels, pd.read_csv(tmp_path / 'features.csv')
  )
  ds = readers.read_nsl_kdd(labelled)
  assert len(set(ds.labels)) == 2
  probs = model.predict_proba(ds.features)
  assert probs.std() > 0  # Rows scored alike would hide a misread column.
  np.testing.assert_allclose(
    with_labels['attack_probability'], probs, atol=1e-6
  )
  assert summaries[0]['unknown_categories'] == preprocessing.count_unknown(
    model.preprocessor.schema, model.encode(ds.features)[1]
  )


def test_score_lines_match_the_csv_writer():
  probs = np.array([0.0, 1.0, 0.5, 1 / 3, 1e-12, np.float32(0.1)], np.float64)
  flagged = (probs >= 0.5).astype(np.int32)
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator='\n')
  rows = zip(probs.tolist(), flagged.tolist(), strict=True)
  for i, (p, f) in enumerate(rows):
    writer.writerow([7 + i, f'{p:.9g}', f])
  assert predict._score_lines(7, probs, flagged) == buffer.getvalue()


def test_read_ahead_keeps_order_and_raises_where_it_stopped():
  def items():
    yield from (1, 2)
    raise readers.DataError('line 3 is bad')

  seen = []
  with pytest.raises(readers.DataError, match='line 3'):
    for item in predict._read_ahead(items()):
      seen.append(item)
  assert seen == [1, 2]
