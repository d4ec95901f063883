"""Bad training input through the real command line: one line, status 2."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests import conftest


def _write_csv(path, n=60, attacks=None, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, n) if attacks is None else attacks
  frame = pd.DataFrame(
    {
      'bytes': rng.lognormal(3, 1, n).round(1),
      'rate': rng.uniform(0, 1, n).round(3),
      'proto': rng.choice(['tcp', 'udp'], n),
      'label': labels,
    }
  )
  frame.to_csv(path, index=False)
  return frame


def _train(data_dir, workdir, *overrides):
  return subprocess.run(
    [
      sys.executable,
      '-m',
      'netclf.main',
      '--config=configs/csv.py',
      f'--workdir={workdir}',
      f'--config.data.dir={data_dir}',
      '--config.model.widths=(8,)',
      '--config.model.dropouts=(0.1,)',
      '--config.train.epochs=1',
      '--config.train.warmup_epochs=0',
      '--config.train.batch_size=16',
      '--config.train.eval_batch_size=32',
      '--config.cv.folds=3',
      '--config.checkpoint_every=0',
      *overrides,
    ],
    cwd=conftest.REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )


def _expect_error(proc, *words):
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  error_lines = [x for x in proc.stderr.splitlines() if 'netclf: error:' in x]
  assert len(error_lines) == 1, proc.stderr[-2000:]
  for word in words:
    assert word in error_lines[0], error_lines[0]


@pytest.fixture
def data_dir(tmp_path):
  directory = tmp_path / 'data'
  directory.mkdir()
  _write_csv(directory / 'train.csv')
  _write_csv(directory / 'test.csv', n=20, seed=1)
  return directory


def test_missing_train_file(data_dir, tmp_path):
  (data_dir / 'train.csv').unlink()
  _expect_error(_train(data_dir, tmp_path / 'w'), 'train.csv', 'not exist')


def test_missing_data_directory(tmp_path):
  _expect_error(_train(tmp_path / 'nowhere', tmp_path / 'w'), 'nowhere')


def test_empty_file(data_dir, tmp_path):
  (data_dir / 'train.csv').write_text('')
  _expect_error(_train(data_dir, tmp_path / 'w'), 'train.csv', 'empty')


def test_header_only_file(data_dir, tmp_path):
  (data_dir / 'train.csv').write_text('bytes,rate,proto,label\n')
  _expect_error(_train(data_dir, tmp_path / 'w'), 'train.csv')


def test_text_in_a_numeric_column(data_dir, tmp_path):
  frame = pd.read_csv(data_dir / 'train.csv')
  frame['rate'] = frame['rate'].astype(object)
  frame.loc[4, 'rate'] = 'fast'
  frame.to_csv(data_dir / 'train.csv', index=False)
  proc = _train(
    data_dir, tmp_path / 'w', '--config.data.categorical_columns=("proto",)'
  )
  _expect_error(proc, 'rate', 'fast', 'line 6')


def test_test_set_missing_a_feature_column(data_dir, tmp_path):
  frame = pd.read_csv(data_dir / 'test.csv').drop(columns=['rate'])
  frame.to_csv(data_dir / 'test.csv', index=False)
  _expect_error(_train(data_dir, tmp_path / 'w'), "'rate'")


def test_label_column_with_one_class(data_dir, tmp_path):
  _write_csv(data_dir / 'train.csv', attacks=np.zeros(60, int))
  _expect_error(_train(data_dir, tmp_path / 'w'), 'one class')


def test_fewer_rows_than_folds(data_dir, tmp_path):
  _write_csv(data_dir / 'train.csv', n=4, attacks=np.array([0, 1, 0, 1]))
  _expect_error(_train(data_dir, tmp_path / 'w'), 'too few', '3 folds')


def test_a_fold_without_attacks_suggests_stratified_folds(data_dir, tmp_path):
  attacks = np.zeros(60, int)
  attacks[:2] = 1
  _write_csv(data_dir / 'train.csv', attacks=attacks)
  _expect_error(
    _train(data_dir, tmp_path / 'w'), 'no attacks', 'cv.stratified=True'
  )


def test_type_balance_out_of_range(data_dir, tmp_path):
  proc = _train(data_dir, tmp_path / 'w', '--config.train.type_balance=2')
  _expect_error(proc, 'train.type_balance must be in [0, 1]')


def test_missing_label_column(data_dir, tmp_path):
  proc = _train(data_dir, tmp_path / 'w', '--config.data.label_column=class')
  _expect_error(proc, "'class'")


def test_valid_csv_trains(data_dir, tmp_path):
  proc = _train(data_dir, tmp_path / 'w', '--config.cv.stratified=True')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (tmp_path / 'w' / 'report.json').exists()
