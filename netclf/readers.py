"""Readers for network-flow data sets: NSL-KDD, UNSW-NB15, CIC-IDS2017, CSV.

Every reader returns a `Dataset` of raw features (numeric columns as float64,
categorical columns as stripped strings) and binary labels, 0 for normal
traffic and 1 for attacks. Cleaning (infinities, missing values, encoding)
is left to preprocessing, which must be fitted on training rows only.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import os
import re
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

NSL_KDD_FEATURES = (
  'duration',
  'protocol_type',
  'service',
  'flag',
  'src_bytes',
  'dst_bytes',
  'land',
  'wrong_fragment',
  'urgent',
  'hot',
  'num_failed_logins',
  'logged_in',
  'num_compromised',
  'root_shell',
  'su_attempted',
  'num_root',
  'num_file_creations',
  'num_shells',
  'num_access_files',
  'num_outbound_cmds',
  'is_host_login',
  'is_guest_login',
  'count',
  'srv_count',
  'serror_rate',
  'srv_serror_rate',
  'rerror_rate',
  'srv_rerror_rate',
  'same_srv_rate',
  'diff_srv_rate',
  'srv_diff_host_rate',
  'dst_host_count',
  'dst_host_srv_count',
  'dst_host_same_srv_rate',
  'dst_host_diff_srv_rate',
  'dst_host_same_src_port_rate',
  'dst_host_srv_diff_host_rate',
  'dst_host_serror_rate',
  'dst_host_srv_serror_rate',
  'dst_host_rerror_rate',
  'dst_host_srv_rerror_rate',
)
NSL_KDD_CATEGORICAL = ('protocol_type', 'service', 'flag')

UNSW_NB15_FEATURES = (
  'dur',
  'proto',
  'service',
  'state',
  'spkts',
  'dpkts',
  'sbytes',
  'dbytes',
  'rate',
  'sttl',
  'dttl',
  'sload',
  'dload',
  'sloss',
  'dloss',
  'sinpkt',
  'dinpkt',
  'sjit',
  'djit',
  'swin',
  'stcpb',
  'dtcpb',
  'dwin',
  'tcprtt',
  'synack',
  'ackdat',
  'smean',
  'dmean',
  'trans_depth',
  'response_body_len',
  'ct_srv_src',
  'ct_state_ttl',
  'ct_dst_ltm',
  'ct_src_dport_ltm',
  'ct_dst_sport_ltm',
  'ct_dst_src_ltm',
  'is_ftp_login',
  'ct_ftp_cmd',
  'ct_flw_http_mthd',
  'ct_src_ltm',
  'ct_srv_dst',
  'is_sm_ips_ports',
)
UNSW_NB15_CATEGORICAL = ('proto', 'service', 'state')

DEFAULT_CSV_DIR = 'data/network'

# Text that the C parser may turn into NaN in numeric columns. It already
# reads 'inf', 'Infinity' and '-inf' as floats; anything it leaves as text
# goes through `_parse_floats`.
_MISSING = ['', 'NaN', 'nan']
_FIELD_ERROR = re.compile(r'Expected (\d+) fields in line (\d+), saw (\d+)')


class DataError(ValueError):
  """Bad input data; the message is one line naming the file, column or row."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Raw features and binary labels read from one file."""

  features: pd.DataFrame
  labels: np.ndarray | None
  attack_names: np.ndarray | None
  categorical: tuple[str, ...]
  name: str

  def __len__(self) -> int:
    return len(self.features)


@dataclasses.dataclass(frozen=True)
class _Source:
  """The bytes of a whole file, or of a run of its lines, to be parsed.

  A run of lines from a file with a header starts with a copy of the header
  line. `offset` turns line numbers within `data` into the file's.
  """

  data: bytes
  name: str
  offset: int = 0


@dataclasses.dataclass(frozen=True)
class _Table:
  """A parsed file, kept with its bytes to point errors at file lines."""

  frame: pd.DataFrame
  source: _Source
  header: bool

  @property
  def name(self) -> str:
    return self.source.name

  def error(self, row: int, message: str) -> DataError:
    line = _scan_lines(self.source.data)[0][row + self.header]
    line += self.source.offset
    return DataError(f'{self.name} line {line}: {message}')


def _check_path(path: Path):
  """Raises unless `path` names an existing file."""
  if not path.exists():
    raise DataError(f'{path}: file does not exist')
  if path.is_dir():
    raise DataError(f'{path}: is a directory, expected a file')


def _read_bytes(path: str | os.PathLike) -> tuple[bytes, str]:
  """Returns the contents and display name of a non-empty file."""
  path = Path(path)
  _check_path(path)
  try:
    data = path.read_bytes()
  except OSError as e:
    raise DataError(f'{path}: cannot be read ({e.strerror})') from None
  body = data.removeprefix(codecs.BOM_UTF8)
  if not body or body.isspace():
    raise DataError(f'{path}: file is empty')
  return data, path.name


def _whole_file(path: str | os.PathLike) -> Iterator[_Source]:
  """Yields the whole file as one source, read when first asked for."""
  yield _Source(*_read_bytes(path))


def _file_chunks(
  path: str | os.PathLike, chunk_rows: int, *, header: bool
) -> Iterator[_Source]:
  """Yields a file as runs of `chunk_rows` non-blank data lines.

  Each run after the first starts with a copy of the header line (when the
  file has one), so that it parses on its own. Runs end only where the
  count of double quotes so far is even, which keeps a quoted field that
  spans lines in one run.
  """
  path = Path(path)
  _check_path(path)
  try:
    with path.open('rb') as f:
      if f.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
        f.seek(0)
      yield from _line_runs(f, path, chunk_rows, header)
  except OSError as e:
    raise DataError(f'{path}: cannot be read ({e.strerror})') from None


def _line_runs(
  f: io.BufferedReader, path: Path, chunk_rows: int, header: bool
) -> Iterator[_Source]:
  """Yields the runs of `_file_chunks` from a file open after its BOM."""
  name = path.name
  lead = []  # The lines up to the header: blank ones, then the header.
  head = None
  if header:
    for line in f:
      lead.append(line)
      if not line.isspace():
        head = line if line.endswith(b'\n') else line + b'\n'
        break
  start = len(lead) + 1  # The file line number of the next run's start.
  lines = _Lines(f)
  first = True
  while True:
    data, count, rows = lines.take(chunk_rows)
    if first:
      if head is None and not rows:
        raise DataError(f'{path}: file is empty')
      yield _Source(b''.join(lead) + data, name)
    elif rows and head is None:
      yield _Source(data, name, start - 1)
    elif rows:
      yield _Source(head + data, name, start - 2)
    if lines.ended:
      return
    first, start = False, start + count


class _Lines:
  """Takes runs of whole lines from a binary file read in large blocks.

  Each block is split into lines once, with numpy, so that taking a run
  costs a slice and no Python object per line.
  """

  MIN_READ, MAX_READ = 1 << 16, 1 << 26  # Bytes read at a time.

  def __init__(self, f: io.BufferedReader):
    self._f = f
    self._block = b''
    self._ends = np.zeros(0, np.int64)  # Each line's end in the block.
    self._rows = np.zeros(0, np.int64)  # Non-blank lines up to each line.
    self._next = 0  # The first line of the block not yet taken.
    self._line_bytes = 256.0  # Mean line length, to size the next read.
    self.ended = False

  def _fill(self, lines: int) -> bool:
    """Reads a block of about `lines` lines; False at the end of the file."""
    size = int(self._line_bytes * lines)
    block = self._f.read(min(max(size, self.MIN_READ), self.MAX_READ))
    if not block:
      self.ended = True
      return False
    if not block.endswith(b'\n'):
      block += self._f.readline()
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == ord('\n')) + 1
    if not len(ends) or ends[-1] != len(buf):
      ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1]])
    filled = np.ones(len(ends), bool)
    # Blank lines start with whitespace; few others do.
    for i in np.flatnonzero(np.isin(buf[starts], _WHITESPACE)):
      filled[i] = not block[starts[i] : ends[i]].isspace()
    self._block, self._ends, self._rows = block, ends, np.cumsum(filled)
    self._next, self._line_bytes = 0, len(block) / len(ends)
    return True

  def take(self, rows: int) -> tuple[bytes, int, int]:
    """Takes lines up to the `rows`-th non-blank one, then on to an even
    count of double quotes, or to the end of the file.

    Returns:
      `(data, lines, rows)`: the lines' bytes, their count, and the count
      of those that are not blank.
    """
    parts, lines, taken, quotes = [], 0, 0, 0
    while taken < rows or quotes % 2:
      if self._next == len(self._ends) and not self._fill(rows - taken):
        break
      first = self._next
      before = self._rows[first - 1] if first else 0
      if taken < rows:
        last = int(np.searchsorted(self._rows, before + rows - taken))
        last = min(last, len(self._ends) - 1)
      else:  # Only a quoted field is open: one line more.
        last = first
      begin = self._ends[first - 1] if first else 0
      parts.append(self._block[begin : self._ends[last]])
      lines += last - first + 1
      taken += int(self._rows[last] - before)
      quotes += parts[-1].count(b'"')
      self._next = last + 1
    return b''.join(parts), lines, taken


_WHITESPACE = np.frombuffer(b' \t\n\r\x0b\x0c', np.uint8)


def _scan_lines(data: bytes) -> tuple[np.ndarray, np.ndarray]:
  """Returns the 1-based numbers and field counts of the non-blank lines.

  Fields are counted by commas, so this is exact for unquoted files; for
  quoted fields spanning lines the numbers are approximate.
  """
  buf = np.frombuffer(data, np.uint8)
  ends = np.flatnonzero(buf == ord('\n'))
  if buf[-1] != ord('\n'):
    ends = np.append(ends, len(buf))
  starts = np.concatenate([[0], ends[:-1] + 1])
  # A line's fields are one more than the commas before its end that are
  # not before its start, and those are the commas before the previous end.
  commas = np.searchsorted(np.flatnonzero(buf == ord(',')), ends)
  fields = np.diff(commas, prepend=0) + 1
  # Like pandas, skip lines holding only whitespace; they have no commas.
  blank = np.zeros(len(ends), bool)
  for i in np.flatnonzero(fields == 1):
    blank[i] = not data[starts[i] : ends[i]].strip()
  return np.flatnonzero(~blank) + 1, fields[~blank]


def _header(data: bytes, name: str) -> list[str]:
  """Returns the raw column names, as pandas spells them."""
  return list(_parse_csv(data, name, header=0, nrows=0).columns)


def _parse_csv(
  data: bytes, name: str, offset: int = 0, **options
) -> pd.DataFrame:
  """Runs the pandas C parser, turning its errors into `DataError`.

  `offset` is added to the line numbers that pandas reports.
  """
  try:
    return pd.read_csv(
      io.BytesIO(data),
      keep_default_na=False,
      encoding='utf-8-sig',
      # Some CIC-IDS2017 files hold cp1252 dashes in their labels.
      encoding_errors='replace',
      low_memory=False,
      **options,
    )
  except pd.errors.ParserError as e:
    found = _FIELD_ERROR.search(str(e))
    if found:
      expected, line, saw = found.groups()
      raise DataError(
        f'{name} line {int(line) + offset}: found {saw} columns, expected'
        f' {expected}'
      ) from None
    raise DataError(
      f'{name}: cannot parse ({str(e).splitlines()[0]})'
    ) from None


def _parse(
  source: _Source,
  *,
  names: Sequence[str] | None = None,
  text: Callable[[str], bool] = lambda column: False,
) -> _Table:
  """Parses a file; with `names` it has no header, else names are stripped.

  Columns for which `text(stripped_name)` holds are read as strings, the
  others are left to type inference.
  """
  data, name = source.data, source.name
  header = names is None
  raw = _header(data, name) if header else list(names)
  text_raw = [c for c in raw if text(c.strip())]
  with warnings.catch_warnings():
    # Left to itself, pandas reads a first row with more fields than the
    # header as starting with index columns, shifting every value of the
    # file; with `index_col=False` it warns instead.
    warnings.filterwarnings(
      'error', 'Length of header', category=pd.errors.ParserWarning
    )
    try:
      frame = _parse_csv(
        data,
        name,
        source.offset,
        header=0 if header else None,
        names=None if header else raw,
        index_col=False,
        dtype={c: object for c in text_raw},
        na_values={c: _MISSING for c in raw if c not in text_raw},
      )
    except pd.errors.ParserWarning:
      lines, fields = _scan_lines(data)
      row = 1 if header else 0
      raise DataError(
        f'{name} line {lines[row] + source.offset}: found {fields[row]}'
        f' columns, expected {len(raw)}'
      ) from None
  if frame.empty:
    raise DataError(f'{name}: has a header but no data rows')
  frame.columns = _strip_names(frame.columns)
  return _Table(frame, source, header)


def _strip_names(names: Sequence[str]) -> list[str]:
  """Strips column names, numbering repeats the way pandas does."""
  out = []
  for raw in names:
    base = str(raw).strip()
    column, k = base, 0
    while column in out:
      k += 1
      column = f'{base}.{k}'
    out.append(column)
  return out


def _require(table: _Table, columns: Sequence[str], what: str = 'column'):
  """Raises if any of `columns` is missing from the table."""
  for column in columns:
    if column not in table.frame.columns:
      raise DataError(f'{table.name}: missing {what} {column!r}')


def _strings(column: pd.Series) -> np.ndarray:
  """Returns a column as an object array of stripped str, '' for missing."""
  # Strip each distinct value once: such columns hold few distinct strings.
  # Missing values get code -1, which picks the '' appended last.
  codes, uniques = pd.factorize(column)
  stripped = [str(u).strip() for u in uniques] + ['']
  return np.array(stripped, dtype=object)[codes]


def _is_float(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def _parse_floats(text: np.ndarray) -> tuple[np.ndarray | None, int]:
  """Parses stripped strings as float64; on failure, the first bad index."""
  text = np.where(text == '', 'nan', text)
  try:
    # Like float(), this takes 'Infinity', 'inf' and 'NaN' in any case.
    return text.astype(np.float64), -1
  except ValueError:
    return None, next(i for i, v in enumerate(text) if not _is_float(v))


def _is_number_dtype(column: pd.Series) -> bool:
  """Whether pandas parsed a column as numbers (True/False do not count)."""
  return pd.api.types.is_numeric_dtype(column) and not (
    pd.api.types.is_bool_dtype(column)
  )


def _numbers(table: _Table, column: str) -> np.ndarray:
  """Returns a numeric column as float64, raising on non-numeric text."""
  values = table.frame[column]
  if _is_number_dtype(values):
    return values.to_numpy(np.float64)
  text = _strings(values)
  floats, bad = _parse_floats(text)
  if floats is None:
    raise table.error(
      bad, f'column {column!r} has non-numeric value {text[bad]!r}'
    )
  return floats


def _is_numeric(column: pd.Series) -> bool:
  """Whether every non-empty value of a column reads as a number."""
  return (
    _is_number_dtype(column) or _parse_floats(_strings(column))[0] is not None
  )


def _label_text(table: _Table, column: str) -> np.ndarray:
  """Returns a label column as stripped strings, raising on empty values."""
  text = _strings(table.frame[column])
  empty = np.flatnonzero(text == '')
  if empty.size:
    raise table.error(int(empty[0]), f'column {column!r} is empty')
  return text


def _features(
  table: _Table, columns: Sequence[str], categorical: Sequence[str]
) -> pd.DataFrame:
  """Builds the feature frame: float64 numbers and object strings."""
  out = {}
  for column in columns:
    if column in categorical:
      out[column] = pd.Series(_strings(table.frame[column]), dtype=object)
    else:
      out[column] = _numbers(table, column)
  # The arrays are new or views of the parsed frame, which is dropped:
  # copying them into one block would only cost time.
  return pd.DataFrame(out, copy=False)


def _dataset(
  table: _Table,
  columns: Sequence[str],
  categorical: Sequence[str],
  labels: np.ndarray | None = None,
  attack_names: np.ndarray | None = None,
) -> Dataset:
  """Assembles a `Dataset` from a table and the chosen feature columns."""
  if labels is not None:
    labels = labels.astype(np.int32)
  return Dataset(
    features=_features(table, columns, categorical),
    labels=labels,
    attack_names=attack_names,
    categorical=tuple(c for c in columns if c in categorical),
    name=table.name,
  )


def read_nsl_kdd(
  path: str | os.PathLike, *, require_labels: bool = True
) -> Dataset:
  """Reads an NSL-KDD text file (KDDTrain+.txt, KDDTest+.txt, ...).

  Rows have no header and 43 columns: the 41 features, the attack name
  ('normal' is label 0, any other name 1) and a difficulty score, which is
  dropped. Files without the score (42 columns) are accepted, and without
  labels (41 columns) when `require_labels` is False.

  Args:
    path: the file to read.
    require_labels: whether a file without the attack-name column is an
      error.

  Returns:
    The `Dataset`; labels and attack names are None for 41-column files.
  """
  [ds] = _nsl_kdd(_whole_file(path), require_labels=require_labels)
  return ds


def _nsl_kdd(
  sources: Iterator[_Source], *, require_labels: bool = True
) -> Iterator[Dataset]:
  """Yields a `Dataset` per source; every row has the first row's width."""
  allowed = (42, 43) if require_labels else (41, 42, 43)
  first = None  # File line and column count of the first row.
  for source in sources:
    lines, fields = _scan_lines(source.data)
    lines += source.offset
    if first is None:
      first = int(lines[0]), int(fields[0])
      if first[1] not in allowed:
        hint = ' (no attack-name column)' if first[1] == 41 else ''
        raise DataError(
          f'{source.name} line {first[0]}: found {first[1]} columns{hint},'
          ' expected ' + ' or '.join(map(str, allowed))
        )
    line, count = first
    bad = np.flatnonzero(fields != count)
    if bad.size:
      raise DataError(
        f'{source.name} line {lines[bad[0]]}: found {fields[bad[0]]} columns,'
        f' expected {count} as on line {line}'
      )
    names = NSL_KDD_FEATURES + ('attack', 'difficulty')[: count - 41]
    text = lambda c: c in NSL_KDD_CATEGORICAL or c == 'attack'
    table = _parse(source, names=names, text=text)
    if count == 41:
      yield _dataset(table, NSL_KDD_FEATURES, NSL_KDD_CATEGORICAL)
      continue
    attack = _label_text(table, 'attack')
    labels = attack != 'normal'
    yield _dataset(table, NSL_KDD_FEATURES, NSL_KDD_CATEGORICAL, labels, attack)


def read_unsw_nb15(
  path: str | os.PathLike, *, require_labels: bool = True
) -> Dataset:
  """Reads an official UNSW-NB15 training or testing CSV file.

  The header names `id`, the 42 features, `attack_cat` and `label` (0 for
  normal, 1 for attacks); `id` and `attack_cat` are not features. Attack
  names come from `attack_cat`, with 'Normal' where it is empty.

  Args:
    path: the file to read.
    require_labels: whether a file without a `label` column is an error.

  Returns:
    The `Dataset`; labels and attack names are None without a `label`.
  """
  [ds] = _unsw_nb15(_whole_file(path), require_labels=require_labels)
  return ds


def _unsw_nb15(
  sources: Iterator[_Source], *, require_labels: bool = True
) -> Iterator[Dataset]:
  """Yields a UNSW-NB15 `Dataset` per source."""
  text = lambda c: c in UNSW_NB15_CATEGORICAL or c == 'attack_cat'
  for source in sources:
    table = _parse(source, text=text)
    _require(table, UNSW_NB15_FEATURES)
    if 'label' not in table.frame.columns:
      if require_labels:
        raise DataError(f"{table.name}: missing label column 'label'")
      yield _dataset(table, UNSW_NB15_FEATURES, UNSW_NB15_CATEGORICAL)
      continue
    _require(table, ['attack_cat'])
    labels = _numbers(table, 'label')
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
      raise table.error(
        int(bad[0]),
        f"column 'label' has value {labels[bad[0]]:g}, expected 0 or 1",
      )
    attack = _strings(table.frame['attack_cat'])
    attack[attack == ''] = 'Normal'
    yield _dataset(
      table, UNSW_NB15_FEATURES, UNSW_NB15_CATEGORICAL, labels, attack
    )


def read_cic_ids2017(
  path: str | os.PathLike, *, require_labels: bool = True
) -> Dataset:
  """Reads one CIC-IDS2017 MachineLearningCVE CSV file.

  Column names are stripped of the spaces the files put before them; the
  repeated 'Fwd Header Length' keeps pandas' name 'Fwd Header Length.1'.
  Every column but 'Label' is a numeric feature; infinite and missing rates
  stay inf and NaN. 'BENIGN' (in any letter case) is label 0, anything else
  1.

  Args:
    path: the file to read.
    require_labels: whether a file without a 'Label' column is an error.

  Returns:
    The `Dataset`; labels and attack names are None without a 'Label'.
  """
  [ds] = _cic_ids2017(_whole_file(path), require_labels=require_labels)
  return ds


def _cic_ids2017(
  sources: Iterator[_Source], *, require_labels: bool = True
) -> Iterator[Dataset]:
  """Yields a CIC-IDS2017 `Dataset` per source."""
  for source in sources:
    table = _parse(source, text=lambda c: c == 'Label')
    columns = [c for c in table.frame.columns if c != 'Label']
    if 'Label' not in table.frame.columns:
      if require_labels:
        raise DataError(f"{table.name}: missing label column 'Label'")
      yield _dataset(table, columns, ())
      continue
    attack = _label_text(table, 'Label')
    labels = np.char.upper(attack.astype(str)) != 'BENIGN'
    yield _dataset(table, columns, (), labels, attack)


def read_csv(
  path: str | os.PathLike,
  *,
  label_column: str,
  benign_labels: Sequence[str] | None = None,
  attack_labels: Sequence[str] | None = None,
  categorical_columns: Sequence[str] | None = None,
  drop_columns: Sequence[str] = (),
  require_labels: bool = True,
) -> Dataset:
  """Reads a CSV file with a header row and one label column.

  Labels are compared as stripped strings with exactly one of
  `benign_labels` (those are 0, the rest 1) or `attack_labels` (those are 1,
  the rest 0).

  Args:
    path: the file to read.
    label_column: the name of the label column.
    benign_labels: label values meaning normal traffic.
    attack_labels: label values meaning attacks.
    categorical_columns: the categorical features, or None to take every
      column holding a value that does not read as a number.
    drop_columns: columns that are not features (identifiers, times, ...).
    require_labels: whether a file without the label column is an error.

  Returns:
    The `Dataset`; labels and attack names are None without the label
    column. Attack names are the raw label values.
  """
  [ds] = _csv(
    _whole_file(path),
    label_column=label_column,
    benign_labels=benign_labels,
    attack_labels=attack_labels,
    categorical_columns=categorical_columns,
    drop_columns=drop_columns,
    require_labels=require_labels,
  )
  return ds


def _csv(
  sources: Iterator[_Source],
  *,
  label_column: str,
  benign_labels: Sequence[str] | None = None,
  attack_labels: Sequence[str] | None = None,
  categorical_columns: Sequence[str] | None = None,
  drop_columns: Sequence[str] = (),
  require_labels: bool = True,
) -> Iterator[Dataset]:
  """Yields a `Dataset` per source; see `read_csv`.

  Categorical columns left to detection are those of the first source, so
  that every `Dataset` has the same kinds of columns.
  """
  if (benign_labels is None) == (attack_labels is None):
    raise ValueError('give exactly one of benign_labels and attack_labels')
  listed = _names(benign_labels if attack_labels is None else attack_labels)
  listed = [str(v).strip() for v in listed]
  named = _names(categorical_columns or ())
  drop_columns = _names(drop_columns)
  text = lambda c: c == label_column or c in named
  detected = None
  for source in sources:
    table = _parse(source, text=text)
    _require(table, drop_columns, 'drop column')
    _require(table, named, 'categorical column')
    dropped = {label_column, *drop_columns}
    columns = [c for c in table.frame.columns if c not in dropped]
    categorical = named
    if categorical_columns is None:
      if detected is None:
        frame = table.frame
        detected = [c for c in columns if not _is_numeric(frame[c])]
      categorical = detected
    if label_column not in table.frame.columns:
      if require_labels:
        raise DataError(f'{table.name}: missing label column {label_column!r}')
      yield _dataset(table, columns, categorical)
      continue
    attack = _label_text(table, label_column)
    labels = np.isin(attack, listed) == (attack_labels is not None)
    yield _dataset(table, columns, categorical, labels, attack)


def _names(values: str | Sequence[str]) -> tuple[str, ...]:
  """Returns option values as a tuple, taking a lone string as one name."""
  return (values,) if isinstance(values, str) else tuple(values)


READERS = {
  'nsl_kdd': read_nsl_kdd,
  'unsw_nb15': read_unsw_nb15,
  'cic_ids2017': read_cic_ids2017,
  'csv': read_csv,
}
# The same readers over a stream of sources, and whether files have a header.
_STREAMS = {
  'nsl_kdd': (_nsl_kdd, False),
  'unsw_nb15': (_unsw_nb15, True),
  'cic_ids2017': (_cic_ids2017, True),
  'csv': (_csv, True),
}


def _check_format(format: str):
  if format not in READERS:
    known = ', '.join(sorted(READERS))
    raise DataError(f'unknown data format {format!r}; known formats: {known}')


def read(format: str, path: str | os.PathLike, **options) -> Dataset:
  """Reads `path` with the reader registered under `format` in `READERS`."""
  _check_format(format)
  return READERS[format](path, **options)


def iter_read(
  format: str, path: str | os.PathLike, *, chunk_rows: int, **options
) -> Iterator[Dataset]:
  """Reads `path` like `read`, as `Dataset`s of at most `chunk_rows` rows.

  The file is read a run of lines at a time, so memory use follows
  `chunk_rows`, not the file's size. Errors name the same file lines as
  `read` does. The chunks together hold the rows that `read` returns, with
  one difference: where `read_csv` detects categorical columns, the first
  chunk's values decide them.

  Args:
    format: a key of `READERS`.
    path: the file to read.
    chunk_rows: the most data rows in one `Dataset`.
    **options: keyword arguments of the format's reader.

  Returns:
    An iterator of `Dataset`s, each with a `RangeIndex` from 0; the file is
    opened when the first one is asked for.
  """
  _check_format(format)
  if chunk_rows < 1:
    raise ValueError(f'chunk_rows must be at least 1, not {chunk_rows}')
  stream, header = _STREAMS[format]
  return stream(_file_chunks(path, chunk_rows, header=header), **options)


def read_columns(path: str | os.PathLike) -> list[str]:
  """Returns the column names in a CSV file's header, as the readers strip them.

  Only the start of the file is read.
  """
  source = next(_file_chunks(path, 1, header=True))
  return _strip_names(_header(source.data, source.name))
