"""Command line: score new flow records with a saved classifier.

  python -m netclf.predict --checkpoint runs/default/checkpoint \
    --input flows.csv --output scores.csv

The input holds raw rows in the layout of the training data: NSL-KDD rows
without a header, or a CSV file whose header names the feature columns
(also for the generated data set, whose frame columns are its features).
Columns the model does not use are ignored, and so is a label column. The
output has one line per input row: its 0-based `row` (or the value of
`--id_column`), `attack_probability` and `is_attack` (1 where the
probability reaches the checkpoint's threshold). It is written under a
temporary name and renamed when complete, so a failed or interrupted run
leaves no partial scores behind.

Flags:
  --checkpoint: a checkpoint directory written by `netclf.main`.
  --input: the file of rows to score.
  --output: where the scores go (CSV).
  --chunk_rows: rows read and scored at a time; bounds memory use.
  --id_column: an input column to write in place of the row number.
"""

import concurrent.futures
import contextlib
import csv
import itertools
import os
import pathlib

import numpy as np
import tqdm
from absl import app
from absl import flags
from absl import logging

from netclf import checkpoints
from netclf import cli
from netclf import compile_cache
from netclf import preprocessing
from netclf import readers
from netclf import xla_flags

CHUNK_ROWS = 65_536

FLAGS = flags.FLAGS
flags.DEFINE_string('checkpoint', None, 'Checkpoint directory.')
flags.DEFINE_string('input', None, 'File of raw rows to score.')
flags.DEFINE_string('output', None, 'CSV file for the scores.')
flags.DEFINE_integer(
  'chunk_rows', CHUNK_ROWS, 'Rows read and scored at a time.', lower_bound=1
)
flags.DEFINE_string(
  'id_column', None, 'Input column to write instead of the row number.'
)
flags.mark_flags_as_required(['checkpoint', 'input', 'output'])

# The label column of each format whose files have a header.
LABEL_COLUMNS = {
  'synthetic': 'label',
  'unsw_nb15': 'label',
  'cic_ids2017': 'Label',
}


class OutputError(RuntimeError):
  """The scores file cannot be written."""


# Errors that come from what the user gave: one line and exit status 2.
USER_ERRORS = (readers.DataError, checkpoints.CheckpointError, OutputError)


def _format_and_label(clf):
  """Returns the reader format and label column of a checkpoint's data."""
  reader = clf.reader or {}
  format = reader.get('format')
  if format == 'nsl_kdd':
    return format, 'attack'
  if format == 'csv':
    return format, (reader.get('options') or {}).get('label_column')
  if format in LABEL_COLUMNS:
    return format, LABEL_COLUMNS[format]
  raise checkpoints.CheckpointError(
    f'checkpoint reader format {format!r} is unknown'
  )


def read_chunks(clf, path, *, chunk_rows=CHUNK_ROWS, id_column=None):
  """Opens `path` for scoring with `clf`, in the layout it was trained on.

  Files with a header are read as CSV whatever their format: the model's
  columns are known, so categorical columns are taken from its schema
  (not guessed from the rows) and columns it does not use are dropped
  unread, leaving only the label column to the format.

  Args:
    clf: the `Classifier`.
    path: the input file.
    chunk_rows: the most rows in one chunk.
    id_column: a column to keep in each chunk's features for the output.

  Returns:
    `(chunks, extra_columns, label_column)`: an iterator of
    `readers.Dataset`s, the input columns that are ignored, and the name of
    the label column (ignored as well where present).
  """
  schema = clf.preprocessor.schema
  format, label = _format_and_label(clf)
  name = pathlib.Path(path).name
  if format == 'nsl_kdd':
    if id_column is not None and id_column not in readers.NSL_KDD_FEATURES:
      raise readers.DataError(f'{name}: missing id column {id_column!r}')
    chunks = readers.iter_read(
      format, path, chunk_rows=chunk_rows, require_labels=False
    )
    return chunks, [], label
  columns = readers.read_columns(path)
  for column in (*schema.numeric, *schema.categorical):
    if column not in columns:
      raise readers.DataError(f'{name}: missing feature column {column!r}')
  if id_column is not None and id_column not in columns:
    raise readers.DataError(f'{name}: missing id column {id_column!r}')
  if id_column is not None and id_column == label:
    raise readers.DataError(f'{name}: the id column {label!r} is the label')
  used = {*schema.numeric, *schema.categorical}
  extra = [c for c in columns if c not in (*used, label, id_column)]
  text = list(schema.categorical)
  if id_column is not None and id_column not in used:
    text.append(id_column)  # Identifiers are kept as written.
  chunks = readers.iter_read(
    'csv',
    path,
    chunk_rows=chunk_rows,
    label_column=label,
    benign_labels=[],
    categorical_columns=text,
    drop_columns=extra,
    require_labels=False,
  )
  return chunks, extra, label


@contextlib.contextmanager
def _replaced_on_success(path):
  """Yields a text file beside `path` that becomes `path` on success."""
  path = pathlib.Path(path)
  if path.is_dir():
    raise OutputError(f'cannot write {path}: is a directory')
  tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
  try:
    f = open(tmp, 'w', newline='')  # noqa: SIM115
  except OSError as e:
    raise OutputError(f'cannot write {path}: {e.strerror}') from None
  try:
    with f:
      yield f
    os.replace(tmp, path)
  except OSError as e:
    tmp.unlink(missing_ok=True)
    raise OutputError(f'cannot write {path}: {e.strerror}') from None
  except BaseException:
    # Interrupted or failed: leave neither scores nor the partial file.
    tmp.unlink(missing_ok=True)
    raise


def _add_counts(total, counts):
  """Adds nested `{key: n}` counts into `total`."""
  for key, value in counts.items():
    if isinstance(value, dict):
      _add_counts(total.setdefault(key, {}), value)
    else:
      total[key] = total.get(key, 0) + value


def _read_ahead(items):
  """Yields from `items` while a thread already makes the next one.

  Parsing a chunk of text and scoring the one before it then share the
  cores; an error in the thread is raised here, at the item it stopped.
  """
  items = iter(items)
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    ahead = pool.submit(next, items, None)
    while (item := ahead.result()) is not None:
      ahead = pool.submit(next, items, None)
      yield item


def _scored_ahead(clf, encoded):
  """Yields `(ds, numeric, codes, scores)` with the next chunk dispatched.

  A JAX call returns once its work is queued, so the next chunk is scored
  while the caller formats and writes this one.
  """
  pending = None
  for ds, numeric, codes in encoded:
    scores = clf.scores_on_device(numeric, codes)
    if pending is not None:
      yield pending
    pending = (ds, numeric, codes, scores)
  if pending is not None:
    yield pending


def _score_lines(start, probs, flagged):
  """The output lines of rows numbered from `start`, as one string.

  One `%` over all rows formats them in a single call, much faster than a
  `csv.writer` row by row; no field needs quoting. Nine significant digits
  give back the model's float32 exactly.
  """
  ids = range(start, start + len(probs))
  fields = zip(ids, probs.tolist(), flagged.tolist(), strict=True)
  return (
    '%d,%.9g,%d\n' * len(probs) % tuple(itertools.chain.from_iterable(fields))
  )


def score_file(
  clf, input_path, output_path, *, chunk_rows=CHUNK_ROWS, id_column=None
):
  """Scores every row of a file and writes one line of scores per row.

  Args:
    clf: the `Classifier`.
    input_path: raw rows in the layout of the training data.
    output_path: the CSV file to write, replaced only when complete.
    chunk_rows: the most rows read and scored at a time.
    id_column: an input column written instead of the 0-based row number.

  Returns:
    A summary dict: rows, attacks, threshold, extra_columns, label_column
    and label_rows (0 where the input has none), unknown_categories
    (`{column: rows}`) and nonfinite (`{column: {kind: rows}}`).
  """
  schema = clf.preprocessor.schema
  chunks, extra, label = read_chunks(
    clf, input_path, chunk_rows=chunk_rows, id_column=id_column
  )
  summary = {
    'rows': 0,
    'attacks': 0,
    'threshold': clf.threshold,
    'extra_columns': extra,
    'label_column': label,
    'label_rows': 0,
    'unknown_categories': {},
    'nonfinite': {},
  }
  bar = tqdm.tqdm(desc='scoring', unit=' rows', leave=False, disable=None)
  encoded = _read_ahead(
    (ds, *clf.encode(ds.features, source=ds.name)) for ds in chunks
  )
  with (
    _replaced_on_success(output_path) as out,
    contextlib.closing(bar),
    contextlib.closing(encoded),
  ):
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow([id_column or 'row', 'attack_probability', 'is_attack'])
    for ds, numeric, codes, scores in _scored_ahead(clf, encoded):
      probs = np.asarray(scores).astype(np.float64)
      flagged = (probs >= clf.threshold).astype(np.int32)
      if id_column:
        ids = ds.features[id_column].tolist()
        # Nine significant digits give back the model's float32 exactly.
        text = [f'{p:.9g}' for p in probs.tolist()]
        writer.writerows(zip(ids, text, flagged.tolist(), strict=True))
      else:
        out.write(_score_lines(summary['rows'], probs, flagged))
      summary['rows'] += len(probs)
      summary['attacks'] += int(flagged.sum())
      if ds.labels is not None:
        summary['label_rows'] += len(ds)
      _add_counts(
        summary['unknown_categories'],
        preprocessing.count_unknown(schema, codes),
      )
      _add_counts(
        summary['nonfinite'], preprocessing.count_nonfinite(schema, numeric)
      )
      bar.update(len(probs))
  log_summary(summary, input_path, output_path)
  return summary


def log_summary(summary, input_path, output_path):
  """Logs what was scored and every input quirk that was worked around."""
  logging.info(
    'Scored %d rows of %s: %d flagged as attacks (threshold %.4f); scores'
    ' in %s.',
    summary['rows'],
    input_path,
    summary['attacks'],
    summary['threshold'],
    output_path,
  )
  if summary['extra_columns']:
    logging.warning(
      'Ignored %d input columns that the model does not use: %s',
      len(summary['extra_columns']),
      ', '.join(summary['extra_columns']),
    )
  if summary['label_rows']:
    logging.warning(
      'Ignored the label column %r (%d rows).',
      summary['label_column'],
      summary['label_rows'],
    )
  if summary['unknown_categories']:
    logging.warning(
      'Rows with categories unseen in training (scored as unknown): %s',
      summary['unknown_categories'],
    )
  if summary['nonfinite']:
    logging.warning(
      'Non-finite values, filled as in training: %s', summary['nonfinite']
    )


def main(argv):
  if len(argv) > 1:
    cli.fail(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.setup_logging()
  compile_cache.configure()
  try:
    clf, _ = checkpoints.load(FLAGS.checkpoint)
    score_file(
      clf,
      FLAGS.input,
      FLAGS.output,
      chunk_rows=FLAGS.chunk_rows,
      id_column=FLAGS.id_column,
    )
  except USER_ERRORS as e:
    cli.fail(str(e))


def parse_flags(argv):
  """Parses flags; a missing or bad flag is one line and status 2."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    cli.fail(' '.join(str(e).split()))


if __name__ == '__main__':
  xla_flags.configure()  # Before the first computation creates a backend.
  app.run(main, flags_parser=parse_flags)
