"""Finds and reads a run's training and test sets."""

import pathlib

from netclf import readers
from netclf import synthetic

SYNTHETIC = 'synthetic'
CSV_OPTIONS = (
  'label_column',
  'benign_labels',
  'attack_labels',
  'categorical_columns',
  'drop_columns',
)


def reader_options(format, fields):
  """Returns the reader keyword arguments held in a data config."""
  if format != 'csv':
    return {}
  options = {k: fields.get(k) for k in CSV_OPTIONS}
  for k in ('benign_labels', 'attack_labels'):
    # An empty tuple in a config means "not given".
    options[k] = list(options[k]) if options[k] else None
  if options['categorical_columns'] is not None:
    options['categorical_columns'] = list(options['categorical_columns'])
  options['drop_columns'] = list(options['drop_columns'] or ())
  return options


def test_set_name(file_name):
  """The name a test file is reported under: its file name without suffix."""
  return pathlib.Path(file_name).stem


def load_datasets(
  format,
  *,
  directory='',
  train='',
  test=(),
  options=None,
  num_train=0,
  num_test=0,
  seed=0,
):
  """Returns `(train_set, {name: test_set})` for a run.

  Args:
    format: 'synthetic' or a key of `readers.READERS`.
    directory: where the files are.
    train: the training file name (inside `directory`).
    test: test file names (inside `directory`).
    options: extra reader keyword arguments.
    num_train: rows of generated training data.
    num_test: rows of generated test data.
    seed: seed of generated data.
  """
  if format == SYNTHETIC:
    train_set, test_set = synthetic.make_dataset(num_train, num_test, seed=seed)
    return train_set, {'test': test_set}
  if format not in readers.READERS:
    known = ', '.join(sorted([SYNTHETIC, *readers.READERS]))
    raise readers.DataError(f'unknown data format {format!r}: use {known}')
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise readers.DataError(f'data directory {directory} does not exist')
  options = options or {}
  train_set = readers.read(format, directory / train, **options)
  tests = {
    test_set_name(name): readers.read(format, directory / name, **options)
    for name in test
  }
  return train_set, tests
