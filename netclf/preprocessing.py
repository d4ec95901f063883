"""Feature preprocessing fitted on training rows only.

Raw rows become model inputs in two stages. `encode` turns a frame into a
float matrix of numeric columns (NaN and infinity kept) and a matrix of
integer category codes, using the vocabulary of the training rows.
`fit_stats` then learns, from the rows it is given and nothing else, how to
fill non-finite values, which columns to log-transform, the standardisation
and which categories count as known. `featurize` applies those statistics;
it is written against the NumPy API so that the same code runs under
`jax.jit` (with `xp=jax.numpy`) on device-resident data, one fold at a time.
"""

import dataclasses
import json
from typing import NamedTuple

import numpy as np
import pandas as pd

from netclf.readers import DataError

UNKNOWN = '<unknown>'


@dataclasses.dataclass(frozen=True)
class Schema:
  """Feature columns and the category vocabulary seen in training."""

  numeric: tuple[str, ...]
  categorical: tuple[str, ...]
  vocabularies: tuple[tuple[str, ...], ...]

  @property
  def code_offsets(self):
    """Start of each categorical column in the flat code space."""
    sizes = [len(v) + 1 for v in self.vocabularies]
    return np.cumsum([0] + sizes[:-1]).astype(np.int32)

  @property
  def num_codes(self):
    return sum(len(v) + 1 for v in self.vocabularies)

  @property
  def num_features(self):
    return len(self.numeric) + self.num_codes

  @property
  def feature_names(self):
    names = list(self.numeric)
    for column, vocab in zip(self.categorical, self.vocabularies, strict=True):
      names += [f'{column}={value}' for value in (*vocab, UNKNOWN)]
    return names


class FeatureStats(NamedTuple):
  """Statistics fitted on training rows; a pytree, so it can be vmapped."""

  fill_nan: np.ndarray  # [num_numeric] replaces NaN
  fill_posinf: np.ndarray  # [num_numeric] replaces +inf
  fill_neginf: np.ndarray  # [num_numeric] replaces -inf
  log1p: np.ndarray  # [num_numeric] 1.0 where the column is log-scaled
  mean: np.ndarray  # [num_numeric]
  scale: np.ndarray  # [num_numeric]
  code_map: np.ndarray  # [num_codes] one-hot slot of each category code


def fit_schema(features, categorical):
  """Returns the columns and category vocabularies of training rows."""
  categorical = tuple(categorical)
  numeric = tuple(c for c in features.columns if c not in categorical)
  vocabularies = tuple(
    tuple(sorted(_categories(features[c]).unique())) for c in categorical
  )
  return Schema(numeric, categorical, vocabularies)


def _categories(values):
  """Category values as stripped strings, the way the readers give them."""
  return values.astype(str).str.strip()


def encode(schema, features, *, source='input'):
  """Returns `(numeric, codes)` arrays for the schema's columns of a frame.

  Columns the schema does not name are ignored; a category missing from the
  vocabulary gets its column's unknown code.
  """
  missing = [
    c for c in (*schema.numeric, *schema.categorical) if c not in features
  ]
  if missing:
    raise DataError(f'{source}: missing feature column {missing[0]!r}')
  numeric = _numeric_block(features, schema.numeric, source)
  codes = np.empty((len(features), len(schema.categorical)), np.int32)
  offsets = schema.code_offsets
  for j, (column, vocab) in enumerate(
    zip(schema.categorical, schema.vocabularies, strict=True)
  ):
    index = _vocabulary_index(features[column], vocab).astype(np.int32)
    codes[:, j] = np.where(index < 0, len(vocab), index) + offsets[j]
  return numeric, codes


def _numeric_block(features, columns, source):
  """The named columns as a float32 `[rows, columns]` array."""
  block = features[list(columns)]
  if block.shape[1] == len(columns) and all(
    isinstance(dtype, np.dtype) and dtype.kind in 'iuf'
    for dtype in block.dtypes
  ):
    # Plain numbers throughout: one conversion of the block, which costs a
    # fraction of one per column when there are few rows.
    return block.to_numpy(np.float64).astype(np.float32)
  numeric = np.empty((len(features), len(columns)), np.float32)
  for j, column in enumerate(columns):
    numeric[:, j] = _as_numbers(features[column], column, source)
  return numeric


def _vocabulary_index(values, vocab):
  """Returns the position of each value in `vocab`, or -1 where absent.

  Values are compared as `_categories` gives them, as stripped text.
  """
  text = values.to_numpy(dtype=object)
  if pd.api.types.infer_dtype(text, skipna=False) != 'string':
    return pd.Index(vocab).get_indexer(_categories(values))
  # All values are str, none missing: strip and look up each distinct one
  # once, as category columns hold few.
  rows, uniques = pd.factorize(text)
  position = {value: i for i, value in enumerate(vocab)}
  found = [position.get(value.strip(), -1) for value in uniques]
  return np.array(found, np.intp)[rows]


def _as_numbers(values, column, source):
  """Returns a column as float64, or raises naming its first bad value."""
  if pd.api.types.is_bool_dtype(values) or not (
    pd.api.types.is_numeric_dtype(values)
  ):
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(
      text.str.lower().replace({'infinity': 'inf', '-infinity': '-inf'}),
      errors='coerce',
    )
    bad = numbers.isna() & ~text.str.lower().isin(('', 'nan', 'none'))
    if bad.any():
      row = int(np.argmax(bad.to_numpy()))
      raise DataError(
        f'{source} row {row + 1}: column {column!r} has non-numeric value'
        f' {values.iloc[row]!r}'
      )
    values = numbers
  return values.to_numpy(np.float64)


def resolve_log1p(schema, numeric, option):
  """Returns a 0/1 mask of the numeric columns to log-scale.

  `option` is 'auto' (non-negative columns whose training maximum exceeds 1:
  counts, sizes and durations, not rates or flags), 'none', or a sequence of
  column names.
  """
  if option == 'none':
    return np.zeros(len(schema.numeric), np.float32)
  if option == 'auto':
    finite = np.where(np.isfinite(numeric), numeric, np.nan)
    with np.errstate(all='ignore'):
      low = np.nanmin(finite, axis=0, initial=np.inf)
      high = np.nanmax(finite, axis=0, initial=-np.inf)
    return ((low >= 0) & (high > 1)).astype(np.float32)
  if isinstance(option, str):
    option = [option]
  unknown = sorted(set(option) - set(schema.numeric))
  if unknown:
    raise ValueError(f'log1p names columns that are not numeric: {unknown}')
  return np.array([c in option for c in schema.numeric], np.float32)


def fit_stats(schema, numeric, codes, *, log1p='auto'):
  """Fits `FeatureStats` on the given (training) rows and no others."""
  if len(numeric) == 0:
    raise DataError('cannot fit preprocessing on zero rows')
  finite = np.where(np.isfinite(numeric), numeric, np.nan).astype(np.float64)
  all_missing = np.isnan(finite).all(axis=0)
  finite[:, all_missing] = 0.0
  fill_nan = np.nanmedian(finite, axis=0)
  fill_posinf = np.nanmax(finite, axis=0)
  fill_neginf = np.nanmin(finite, axis=0)
  stats = FeatureStats(
    fill_nan=fill_nan.astype(np.float32),
    fill_posinf=fill_posinf.astype(np.float32),
    fill_neginf=fill_neginf.astype(np.float32),
    log1p=resolve_log1p(schema, numeric, log1p),
    mean=np.zeros(len(schema.numeric), np.float32),
    scale=np.ones(len(schema.numeric), np.float32),
    code_map=_code_map(schema, codes),
  )
  # Standardise what the model will see: values after filling and logs.
  filled = _fill_and_log(stats, numeric, np).astype(np.float64)
  mean = filled.mean(axis=0)
  std = filled.std(axis=0)
  scale = np.where(std > 1e-6, std, 1.0)
  return stats._replace(
    mean=mean.astype(np.float32), scale=scale.astype(np.float32)
  )


def _code_map(schema, codes):
  """Maps each code to itself if training rows hold it, else to unknown."""
  seen = np.zeros(schema.num_codes, bool)
  seen[np.unique(codes)] = True
  code_map = np.arange(schema.num_codes, dtype=np.int32)
  for offset, vocab in zip(
    schema.code_offsets, schema.vocabularies, strict=True
  ):
    unknown = offset + len(vocab)
    span = slice(offset, unknown)
    code_map[span] = np.where(seen[span], code_map[span], unknown)
  return code_map


def _fill_and_log(stats, numeric, xp):
  x = xp.where(xp.isnan(numeric), stats.fill_nan, numeric)
  x = xp.where(x == np.inf, stats.fill_posinf, x)
  x = xp.where(x == -np.inf, stats.fill_neginf, x)
  # A signed log keeps unexpected negative values finite and ordered.
  logged = xp.sign(x) * xp.log1p(xp.abs(x))
  return xp.where(stats.log1p > 0, logged, x)


def _standardized(stats, numeric, xp):
  return (_fill_and_log(stats, numeric, xp) - stats.mean) / stats.scale


def featurize(stats, numeric, codes, xp=np):
  """Returns the `[rows, num_features]` float32 model input.

  Args:
    stats: one fold's `FeatureStats` (no leading fold axis).
    numeric: `[rows, num_numeric]` floats from `encode`.
    codes: `[rows, num_categorical]` codes from `encode`.
    xp: the array module, `numpy` or `jax.numpy`.
  """
  x = _standardized(stats, numeric, xp)
  slots = stats.code_map[codes]
  onehot = (slots[:, :, None] == xp.arange(stats.code_map.shape[0])).any(1)
  return xp.concatenate([x, onehot.astype(x.dtype)], axis=1).astype(xp.float32)


def first_layer(stats, numeric, codes, xp=np):
  """Returns `matmul` with `matmul(kernel) == featurize(...) @ kernel`.

  The one-hot block is never built: each categorical column adds the
  kernel row of its slot, a gather instead of a product with mostly
  zeros (the one-hot columns are 84 of NSL-KDD's 122 inputs).

  Args: as for `featurize`.
  """
  x = _standardized(stats, numeric, xp).astype(xp.float32)
  slots = stats.code_map[codes]
  width = x.shape[1]

  def matmul(kernel):
    out = x @ kernel[:width]
    for column in range(slots.shape[1]):
      out = out + kernel[width:][slots[:, column]]
    return out

  return matmul


def count_nonfinite(schema, numeric):
  """Returns `{column: {'nan': n, 'posinf': n, 'neginf': n}}` where non-zero."""
  counts = {}
  kinds = {
    'nan': np.isnan(numeric),
    'posinf': numeric == np.inf,
    'neginf': numeric == -np.inf,
  }
  totals = {kind: mask.sum(axis=0) for kind, mask in kinds.items()}
  for j, column in enumerate(schema.numeric):
    found = {kind: int(t[j]) for kind, t in totals.items() if t[j]}
    if found:
      counts[column] = found
  return counts


def count_unknown(schema, codes):
  """Returns `{column: rows}` of categories missing from the vocabulary."""
  counts = {}
  unknown = schema.code_offsets + np.array(
    [len(v) for v in schema.vocabularies], np.int32
  )
  for j, column in enumerate(schema.categorical):
    n = int((codes[:, j] == unknown[j]).sum())
    if n:
      counts[column] = n
  return counts


def stack_stats(stats_list):
  """Stacks per-fold statistics along a new leading fold axis."""
  return FeatureStats(
    *(np.stack(field) for field in zip(*stats_list, strict=True))
  )


@dataclasses.dataclass(frozen=True)
class Preprocessor:
  """A schema with fitted statistics, possibly stacked over folds."""

  schema: Schema
  stats: FeatureStats

  def to_json(self):
    return json.dumps(
      {
        'numeric': list(self.schema.numeric),
        'categorical': list(self.schema.categorical),
        'vocabularies': [list(v) for v in self.schema.vocabularies],
        'stats': {k: v.tolist() for k, v in self.stats._asdict().items()},
      }
    )

  @classmethod
  def from_json(cls, text):
    try:
      data = json.loads(text)
      schema = Schema(
        tuple(data['numeric']),
        tuple(data['categorical']),
        tuple(tuple(v) for v in data['vocabularies']),
      )
      stats = FeatureStats(
        **{
          k: np.asarray(
            data['stats'][k], np.int32 if k == 'code_map' else np.float32
          )
          for k in FeatureStats._fields
        }
      )
    except (ValueError, KeyError, TypeError) as e:
      raise DataError(f'preprocessing record is invalid: {e}') from None
    if stats.code_map.shape[-1] != schema.num_codes:
      raise DataError('preprocessing record is invalid: vocabulary mismatch')
    return cls(schema, stats)
