"""Tests for the data readers, on small files in the official layouts."""

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from netclf import readers
from netclf.readers import DataError

_KDD_TAIL = ['0'] * 17 + ['2', '2', '0.50', '0.00'] + ['1'] * 15


def _kdd_row(protocol='tcp', service='http', flag='SF', src_bytes='491'):
  """Returns the 41 NSL-KDD feature fields of one connection."""
  return ['0', protocol, service, flag, src_bytes] + _KDD_TAIL


def _kdd_file(tmp_path, rows, name='KDDTrain+.txt'):
  path = tmp_path / name
  path.write_text(''.join(','.join(row) + '\n' for row in rows))
  return path


def _kdd_rows():
  return [
    _kdd_row() + ['normal', '20'],
    _kdd_row('udp', 'private', 'S0', '0') + ['neptune', '19'],
    _kdd_row('icmp', 'ecr_i', 'SF', '1032') + ['smurf', '21'],
  ]


def test_nsl_kdd_reads_features_labels_and_names(tmp_path):
  ds = readers.read_nsl_kdd(_kdd_file(tmp_path, _kdd_rows()))
  assert len(ds) == 3
  assert ds.name == 'KDDTrain+.txt'
  assert tuple(ds.features.columns) == readers.NSL_KDD_FEATURES
  assert len(readers.NSL_KDD_FEATURES) == 41
  assert ds.categorical == ('protocol_type', 'service', 'flag')
  assert isinstance(ds.features.index, pd.RangeIndex)
  for column, dtype in ds.features.dtypes.items():
    expected = object if column in ds.categorical else np.float64
    assert dtype == expected, column
  assert ds.features['protocol_type'].tolist() == ['tcp', 'udp', 'icmp']
  assert ds.features['src_bytes'].tolist() == [491.0, 0.0, 1032.0]
  assert ds.features['serror_rate'].tolist() == [0.5] * 3
  assert ds.labels.dtype == np.int32
  assert ds.labels.tolist() == [0, 1, 1]
  assert ds.attack_names.dtype == object
  assert ds.attack_names.tolist() == ['normal', 'neptune', 'smurf']


def test_nsl_kdd_accepts_rows_without_difficulty(tmp_path):
  rows = [row[:42] for row in _kdd_rows()]
  ds = readers.read_nsl_kdd(_kdd_file(tmp_path, rows))
  assert tuple(ds.features.columns) == readers.NSL_KDD_FEATURES
  assert ds.labels.tolist() == [0, 1, 1]


def test_nsl_kdd_features_only_needs_require_labels_false(tmp_path):
  path = _kdd_file(tmp_path, [row[:41] for row in _kdd_rows()])
  ds = readers.read_nsl_kdd(path, require_labels=False)
  assert ds.labels is None and ds.attack_names is None
  assert ds.features.shape == (3, 41)
  with pytest.raises(DataError, match='line 1: found 41 columns.*42 or 43'):
    readers.read_nsl_kdd(path)


def test_nsl_kdd_keeps_inf_and_nan_and_strips_text(tmp_path):
  rows = _kdd_rows()
  rows[0][4], rows[1][4], rows[2][4] = 'Infinity', 'NaN', ''
  rows[0][5], rows[1][5] = '-inf', 'inf'
  rows[0][1], rows[1][2] = ' tcp ', ''
  ds = readers.read_nsl_kdd(_kdd_file(tmp_path, rows))
  src, dst = ds.features['src_bytes'], ds.features['dst_bytes']
  assert src[0] == np.inf and np.isnan(src[1]) and np.isnan(src[2])
  assert dst[0] == -np.inf and dst[1] == np.inf
  assert ds.features['protocol_type'][0] == 'tcp'
  assert ds.features['service'].tolist() == ['http', '', 'ecr_i']


@pytest.mark.parametrize('width', [40, 44])
def test_nsl_kdd_wrong_column_count_names_line(tmp_path, width):
  rows = _kdd_rows()
  rows[2] = (rows[2] + ['0'])[:width]
  with pytest.raises(DataError, match=f'line 3: found {width} columns.*43'):
    readers.read_nsl_kdd(_kdd_file(tmp_path, rows))


def test_nsl_kdd_first_line_with_bad_width(tmp_path):
  rows = [row[:39] for row in _kdd_rows()]
  with pytest.raises(DataError, match='found 39 columns, expected 42 or 43'):
    readers.read_nsl_kdd(_kdd_file(tmp_path, rows))


def test_nsl_kdd_non_numeric_value_names_file_line_column(tmp_path):
  rows = _kdd_rows() + _kdd_rows() + _kdd_rows()
  rows[6][4] = 'abc'
  message = (
    "KDDTrain+.txt line 7: column 'src_bytes' has non-numeric value 'abc'"
  )
  with pytest.raises(DataError, match=re.escape(message)):
    readers.read_nsl_kdd(_kdd_file(tmp_path, rows))


def test_line_numbers_count_blank_lines(tmp_path):
  rows = _kdd_rows()
  rows[2][22] = 'x1'
  path = tmp_path / 'KDDTest+.txt'
  lines = [','.join(row) for row in rows]
  path.write_text(lines[0] + '\n\n  \n' + lines[1] + '\n' + lines[2] + '\n')
  with pytest.raises(DataError, match="line 5: column 'count' has .*'x1'"):
    readers.read_nsl_kdd(path)


def test_nsl_kdd_empty_attack_name(tmp_path):
  rows = _kdd_rows()
  rows[1][41] = ''
  with pytest.raises(DataError, match="line 2: column 'attack' is empty"):
    readers.read_nsl_kdd(_kdd_file(tmp_path, rows))


def _unsw_file(tmp_path, header, rows, name='UNSW_NB15_training-set.csv'):
  """Writes a UNSW-NB15 CSV the way the official files are: BOM and CRLF."""
  lines = [','.join(header)] + [','.join(row) for row in rows]
  path = tmp_path / name
  path.write_bytes(b'\xef\xbb\xbf' + '\r\n'.join(lines).encode() + b'\r\n')
  return path


def _unsw_row(i, proto, service, state, attack_cat, label):
  numbers = [str(0.5 * i + k) for k in range(38)]
  fields = [str(i), '0.12', proto, service, state] + numbers
  return fields + [attack_cat, label]


_UNSW_HEADER = ['id', *readers.UNSW_NB15_FEATURES, 'attack_cat', 'label']
_UNSW_ROWS = [
  _unsw_row(1, 'tcp', '-', 'FIN', 'Normal', '0'),
  _unsw_row(2, 'udp', 'dns', 'INT', ' Exploits ', '1'),
  _unsw_row(3, 'tcp', 'http', 'CON', '', '0'),
  _unsw_row(4, 'arp', '-', 'INT', 'Fuzzers', '1'),
]


def test_unsw_nb15_reads_bom_crlf_file(tmp_path):
  ds = readers.read_unsw_nb15(_unsw_file(tmp_path, _UNSW_HEADER, _UNSW_ROWS))
  assert tuple(ds.features.columns) == readers.UNSW_NB15_FEATURES
  assert len(readers.UNSW_NB15_FEATURES) == 42
  assert ds.categorical == ('proto', 'service', 'state')
  for column, dtype in ds.features.dtypes.items():
    expected = object if column in ds.categorical else np.float64
    assert dtype == expected, column
  assert ds.features['service'].tolist() == ['-', 'dns', 'http', '-']
  assert ds.features['dur'].tolist() == [0.12] * 4
  assert ds.features['spkts'].tolist() == [0.5, 1.0, 1.5, 2.0]
  assert ds.labels.tolist() == [0, 1, 0, 1]
  assert ds.attack_names.tolist() == ['Normal', 'Exploits', 'Normal', 'Fuzzers']


def test_unsw_nb15_missing_feature_column(tmp_path):
  header = [c for c in _UNSW_HEADER if c != 'sbytes']
  rows = [row[:8] + row[9:] for row in _UNSW_ROWS]
  with pytest.raises(DataError, match="missing column 'sbytes'"):
    readers.read_unsw_nb15(_unsw_file(tmp_path, header, rows))


def test_unsw_nb15_without_labels(tmp_path):
  path = _unsw_file(
    tmp_path, _UNSW_HEADER[:-2], [row[:-2] for row in _UNSW_ROWS]
  )
  with pytest.raises(DataError, match="missing label column 'label'"):
    readers.read_unsw_nb15(path)
  ds = readers.read_unsw_nb15(path, require_labels=False)
  assert ds.labels is None and ds.attack_names is None
  assert ds.features.shape == (4, 42)


def test_unsw_nb15_label_must_be_binary(tmp_path):
  rows = [list(row) for row in _UNSW_ROWS]
  rows[2][-1] = '2'
  with pytest.raises(
    DataError, match="line 4: column 'label' has value 2, expected 0 or 1"
  ):
    readers.read_unsw_nb15(_unsw_file(tmp_path, _UNSW_HEADER, rows))


_CIC_HEADER = [
  ' Destination Port',
  ' Flow Duration',
  'Flow Bytes/s',
  ' Flow Packets/s',
  ' Fwd Header Length',
  ' Fwd Header Length',
  ' Label',
]
_CIC_ROWS = [
  ['80', '3', 'Infinity', 'Infinity', '40', '40', 'BENIGN'],
  ['443', '0', 'NaN', 'NaN', '20', '32', 'DDoS'],
  ['22', '7', '', ' inf', '64', '64', 'PortScan'],
  ['53', '9', '12.5', '0.25', '8', '8', 'BENIGN'],
]


def _cic_file(tmp_path, header=_CIC_HEADER, rows=_CIC_ROWS, extra=b''):
  path = tmp_path / 'Wednesday-workingHours.pcap_ISCX.csv'
  lines = [','.join(header)] + [','.join(row) for row in rows]
  path.write_bytes('\r\n'.join(lines).encode() + b'\r\n' + extra)
  return path


def test_cic_ids2017_strips_names_and_keeps_inf(tmp_path):
  ds = readers.read_cic_ids2017(_cic_file(tmp_path))
  assert list(ds.features.columns) == [
    'Destination Port',
    'Flow Duration',
    'Flow Bytes/s',
    'Flow Packets/s',
    'Fwd Header Length',
    'Fwd Header Length.1',
  ]
  assert ds.categorical == ()
  assert (ds.features.dtypes == np.float64).all()
  rate, packets = ds.features['Flow Bytes/s'], ds.features['Flow Packets/s']
  assert rate[0] == np.inf and np.isnan(rate[1]) and np.isnan(rate[2])
  assert packets[0] == np.inf and np.isnan(packets[1]) and packets[2] == np.inf
  assert rate[3] == 12.5 and packets[3] == 0.25
  assert ds.features['Fwd Header Length.1'].tolist() == [40, 32, 64, 8]
  assert ds.labels.tolist() == [0, 1, 1, 0]
  assert ds.attack_names.tolist() == ['BENIGN', 'DDoS', 'PortScan', 'BENIGN']


def test_cic_ids2017_tolerates_non_utf8_label(tmp_path):
  row = b'21,1,2.0,3.0,4,4,Web Attack \x96 Brute Force\r\n'
  ds = readers.read_cic_ids2017(_cic_file(tmp_path, extra=row))
  assert ds.labels.tolist() == [0, 1, 1, 0, 1]
  assert ds.attack_names[-1].startswith('Web Attack')


def test_cic_ids2017_non_numeric_value_counts_header_line(tmp_path):
  rows = [list(row) for row in _CIC_ROWS]
  rows[1][1] = '12ms'
  with pytest.raises(
    DataError, match="line 3: column 'Flow Duration' has non-numeric.*'12ms'"
  ):
    readers.read_cic_ids2017(_cic_file(tmp_path, rows=rows))


def test_cic_ids2017_missing_label(tmp_path):
  path = _cic_file(tmp_path, _CIC_HEADER[:-1], [r[:-1] for r in _CIC_ROWS])
  with pytest.raises(DataError, match="missing label column 'Label'"):
    readers.read_cic_ids2017(path)
  assert readers.read_cic_ids2017(path, require_labels=False).labels is None


def _csv_file(tmp_path, text, name='flows.csv'):
  path = tmp_path / name
  path.write_bytes(b'\xef\xbb\xbf' + text.replace('\n', '\r\n').encode())
  return path


_CSV = """\
 host , proto ,bytes,rate,port, label
a,tcp,10,0.5,80,normal
b,udp,inf,,443,0
c, tcp ,,1.0,22,attack
d,,7,NaN,80,1
"""


def test_csv_detects_categorical_and_drops_columns(tmp_path):
  ds = readers.read_csv(
    _csv_file(tmp_path, _CSV),
    label_column='label',
    benign_labels=('normal', '0'),
    drop_columns=('host',),
  )
  assert list(ds.features.columns) == ['proto', 'bytes', 'rate', 'port']
  assert ds.categorical == ('proto',)
  assert ds.features['proto'].tolist() == ['tcp', 'udp', 'tcp', '']
  assert ds.features['proto'].dtype == object
  bytes_ = ds.features['bytes']
  assert bytes_[0] == 10 and bytes_[1] == np.inf and np.isnan(bytes_[2])
  assert ds.features['port'].dtype == np.float64
  assert ds.labels.tolist() == [0, 0, 1, 1]
  assert ds.attack_names.tolist() == ['normal', '0', 'attack', '1']


def test_csv_named_categorical_and_attack_labels(tmp_path):
  ds = readers.read_csv(
    _csv_file(tmp_path, _CSV),
    label_column='label',
    attack_labels=('attack', '1'),
    categorical_columns=('proto', 'port'),
    drop_columns=('host',),
  )
  assert ds.categorical == ('proto', 'port')
  assert list(ds.features.columns) == ['proto', 'bytes', 'rate', 'port']
  assert ds.features['port'].tolist() == ['80', '443', '22', '80']
  assert ds.labels.tolist() == [0, 0, 1, 1]


def test_csv_option_errors(tmp_path):
  path = _csv_file(tmp_path, _CSV)
  # Named categorical columns turn detection off: 'host' must be numeric.
  with pytest.raises(DataError, match="line 2: column 'host' has non-numeric"):
    readers.read_csv(
      path, label_column='label', benign_labels='0', categorical_columns=[]
    )
  with pytest.raises(DataError, match="missing drop column 'time'"):
    readers.read_csv(
      path, label_column='label', benign_labels='0', drop_columns=['time']
    )
  with pytest.raises(DataError, match="missing categorical column 'flag'"):
    readers.read_csv(
      path,
      label_column='label',
      benign_labels='0',
      categorical_columns=['flag'],
    )
  with pytest.raises(ValueError, match='exactly one'):
    readers.read_csv(path, label_column='label')
  with pytest.raises(ValueError, match='exactly one'):
    readers.read_csv(
      path, label_column='label', benign_labels='0', attack_labels='1'
    )


def test_csv_label_column(tmp_path):
  path = _csv_file(tmp_path, _CSV)
  with pytest.raises(DataError, match="missing label column 'class'"):
    readers.read_csv(path, label_column='class', attack_labels=['1'])
  ds = readers.read_csv(
    path, label_column='class', attack_labels=['1'], require_labels=False
  )
  assert ds.labels is None
  assert 'label' in ds.features.columns


def test_csv_too_many_fields_names_line(tmp_path):
  path = _csv_file(tmp_path, 'a,b,label\n1,2,0\n3,4,1,5\n')
  with pytest.raises(DataError, match='line 3: found 4 columns, expected 3'):
    readers.read_csv(path, label_column='label', benign_labels=['0'])


@pytest.mark.parametrize(
  'format, options',
  [
    ('nsl_kdd', {}),
    ('unsw_nb15', {}),
    ('cic_ids2017', {}),
    ('csv', {'label_column': 'label', 'benign_labels': ['0']}),
  ],
)
def test_file_errors(tmp_path, format, options):
  read = lambda path: readers.read(format, path, **options)
  with pytest.raises(DataError, match='nope.csv: file does not exist'):
    read(tmp_path / 'nope.csv')
  with pytest.raises(DataError, match='is a directory'):
    read(tmp_path)
  (tmp_path / 'empty.csv').write_text('')
  with pytest.raises(DataError, match='empty.csv: file is empty'):
    read(tmp_path / 'empty.csv')
  (tmp_path / 'blank.csv').write_bytes(b'\xef\xbb\xbf\r\n \r\n')
  with pytest.raises(DataError, match='blank.csv: file is empty'):
    read(tmp_path / 'blank.csv')


@pytest.mark.parametrize(
  'format, header, options',
  [
    ('unsw_nb15', ','.join(_UNSW_HEADER), {}),
    ('cic_ids2017', ','.join(_CIC_HEADER), {}),
    ('csv', 'a,label', {'label_column': 'label', 'benign_labels': ['0']}),
  ],
)
def test_header_only_file(tmp_path, format, header, options):
  path = tmp_path / 'header.csv'
  path.write_text(header + '\n')
  with pytest.raises(DataError, match='header.csv: has a header but no data'):
    readers.read(format, path, **options)


def test_unreadable_file(tmp_path, monkeypatch):
  path = _kdd_file(tmp_path, _kdd_rows())

  def refuse(self):
    raise PermissionError(13, 'Permission denied')

  monkeypatch.setattr(Path, 'read_bytes', refuse)
  with pytest.raises(DataError, match='KDDTrain.*cannot be read'):
    readers.read_nsl_kdd(path)


def test_read_dispatches_by_format(tmp_path):
  path = _kdd_file(tmp_path, _kdd_rows())
  ds = readers.read('nsl_kdd', path)
  pd.testing.assert_frame_equal(
    ds.features, readers.read_nsl_kdd(path).features
  )
  assert set(readers.READERS) == {'nsl_kdd', 'unsw_nb15', 'cic_ids2017', 'csv'}
  with pytest.raises(DataError, match="unknown data format 'arff'.*nsl_kdd"):
    readers.read('arff', path)


def _nsl_kdd_dir() -> Path:
  """Returns the directory of the real NSL-KDD files, or skips the test.

  Under CI (CI=true) missing files fail the test instead, so that the
  real-data checks cannot silently stop running.
  """
  default = Path(__file__).resolve().parents[1] / '..' / 'shared' / 'data'
  path = Path(os.environ.get('NETCLF_NSL_KDD_DIR') or default / 'nsl-kdd')
  if not path.is_dir():
    message = f'NSL-KDD files not found in {path}; set NETCLF_NSL_KDD_DIR'
    if os.environ.get('CI') == 'true':
      pytest.fail(message)
    pytest.skip(message)
  return path


@pytest.mark.parametrize(
  'file, normal, attack',
  [
    ('KDDTrain+.txt', 67_343, 58_630),
    ('KDDTrain+_20Percent.txt', 13_449, 11_743),
    ('KDDTest+.txt', 9_711, 12_833),
    ('KDDTest-21.txt', 2_152, 9_698),
  ],
)
def test_real_nsl_kdd_counts(file, normal, attack):
  ds = readers.read_nsl_kdd(_nsl_kdd_dir() / file)
  assert len(ds) == normal + attack
  assert np.bincount(ds.labels).tolist() == [normal, attack]
  assert ds.features.shape[1] == 41
  assert ds.categorical == ('protocol_type', 'service', 'flag')
  numeric = ds.features.drop(columns=list(ds.categorical))
  assert np.isfinite(numeric.to_numpy()).all()
  assert ((ds.attack_names == 'normal') == (ds.labels == 0)).all()


def _concat(datasets):
  """Joins chunks back into one frame and one label array (or None)."""
  features = pd.concat([ds.features for ds in datasets], ignore_index=True)
  labels = [ds.labels for ds in datasets]
  return features, None if labels[0] is None else np.concatenate(labels)


def _chunked_cases(tmp_path):
  """Files of every format, with blank lines, a BOM and CRLF line ends."""
  kdd = tmp_path / 'KDDTest+.txt'
  lines = [','.join(row) for row in _kdd_rows() * 3]
  kdd.write_text('\n'.join(lines[:4]) + '\n\n \n' + '\n'.join(lines[4:]))
  csv_options = {'label_column': 'label', 'benign_labels': ('normal', '0')}
  return [
    ('nsl_kdd', kdd, {}),
    ('unsw_nb15', _unsw_file(tmp_path, _UNSW_HEADER, _UNSW_ROWS * 2), {}),
    ('cic_ids2017', _cic_file(tmp_path), {}),
    (
      'csv',
      _csv_file(tmp_path, _CSV + '\n' + _CSV[_CSV.index('a,') :]),
      {
        **csv_options,
        'drop_columns': ('host',),
      },
    ),
  ]


@pytest.mark.parametrize('chunk_rows', [1, 2, 3, 1000])
@pytest.mark.parametrize('read_bytes', [1, 7, readers._Lines.MIN_READ])
def test_iter_read_chunks_join_to_the_whole_file(
  tmp_path, monkeypatch, chunk_rows, read_bytes
):
  # Small reads end blocks inside lines and runs across several blocks.
  monkeypatch.setattr(readers._Lines, 'MIN_READ', read_bytes)
  for format, path, options in _chunked_cases(tmp_path):
    whole = readers.read(format, path, **options)
    chunks = list(
      readers.iter_read(format, path, chunk_rows=chunk_rows, **options)
    )
    assert all(0 < len(ds) <= chunk_rows for ds in chunks), format
    assert len(chunks) == -(-len(whole) // chunk_rows), format
    features, labels = _concat(chunks)
    pd.testing.assert_frame_equal(features, whole.features, obj=format)
    np.testing.assert_array_equal(labels, whole.labels)
    for ds in chunks:
      assert isinstance(ds.features.index, pd.RangeIndex)
      assert ds.categorical == whole.categorical
      assert ds.name == whole.name


def test_iter_read_without_labels(tmp_path):
  path = _kdd_file(tmp_path, [row[:41] for row in _kdd_rows()])
  chunks = list(
    readers.iter_read('nsl_kdd', path, chunk_rows=2, require_labels=False)
  )
  assert [len(ds) for ds in chunks] == [2, 1]
  assert all(ds.labels is None for ds in chunks)


def test_iter_read_errors_name_the_file_line(tmp_path):
  rows = [list(row) for row in _kdd_rows() * 3]
  rows[7][4] = 'abc'
  path = tmp_path / 'KDDTest+.txt'
  lines = [','.join(row) for row in rows]
  path.write_text('\n'.join(lines[:3]) + '\n\n' + '\n'.join(lines[3:]) + '\n')
  message = "KDDTest+.txt line 9: column 'src_bytes' has non-numeric value"
  with pytest.raises(DataError, match=re.escape(message)):
    readers.read_nsl_kdd(path)
  for chunk_rows in (1, 2, 4):
    with pytest.raises(DataError, match=re.escape(message)):
      list(readers.iter_read('nsl_kdd', path, chunk_rows=chunk_rows))


def test_iter_read_header_file_errors_name_the_file_line(tmp_path):
  rows = [list(row) for row in _CIC_ROWS * 2]
  rows[6][1] = '12ms'
  path = _cic_file(tmp_path, rows=rows)
  for chunk_rows in (1, 3, 100):
    with pytest.raises(DataError, match="line 8: column 'Flow Duration'"):
      list(readers.iter_read('cic_ids2017', path, chunk_rows=chunk_rows))
  path = _csv_file(tmp_path, 'a,b,label\n1,2,0\n3,4,1\n\n5,6,0,7\n')
  with pytest.raises(DataError, match='line 5: found 4 columns, expected 3'):
    list(
      readers.iter_read(
        'csv', path, chunk_rows=1, label_column='label', benign_labels='0'
      )
    )


def test_iter_read_width_must_match_the_first_row(tmp_path):
  rows = _kdd_rows() * 2
  rows[4] = rows[4][:42]
  path = _kdd_file(tmp_path, rows)
  with pytest.raises(DataError, match='line 5: found 42 columns, expected 43'):
    list(readers.iter_read('nsl_kdd', path, chunk_rows=2))


@pytest.mark.parametrize('read_bytes', [1, readers._Lines.MIN_READ])
def test_iter_read_keeps_a_quoted_field_in_one_chunk(
  tmp_path, monkeypatch, read_bytes
):
  monkeypatch.setattr(readers._Lines, 'MIN_READ', read_bytes)
  path = tmp_path / 'flows.csv'
  path.write_text('note,bytes,label\n"two\nlines",1,0\nx,2,1\n"y",3,0\n')
  options = {'label_column': 'label', 'benign_labels': ['0']}
  chunks = list(readers.iter_read('csv', path, chunk_rows=1, **options))
  features, labels = _concat(chunks)
  assert features['note'].tolist() == ['two\nlines', 'x', 'y']
  assert features['bytes'].tolist() == [1, 2, 3]
  assert labels.tolist() == [0, 1, 0]


def test_iter_read_counts_rows_that_start_with_whitespace(tmp_path):
  path = tmp_path / 'flows.csv'
  path.write_text('note,bytes,label\n  a,1,0\n \t\n\tb,2,1\n\n c,3,0\n')
  options = {'label_column': 'label', 'benign_labels': ['0']}
  chunks = list(readers.iter_read('csv', path, chunk_rows=2, **options))
  assert [len(ds) for ds in chunks] == [2, 1]
  assert _concat(chunks)[0]['bytes'].tolist() == [1, 2, 3]


def test_iter_read_file_errors(tmp_path):
  read = lambda path: list(readers.iter_read('cic_ids2017', path, chunk_rows=2))
  with pytest.raises(DataError, match='nope.csv: file does not exist'):
    read(tmp_path / 'nope.csv')
  with pytest.raises(DataError, match='is a directory'):
    read(tmp_path)
  (tmp_path / 'blank.csv').write_bytes(b'\xef\xbb\xbf\r\n \r\n')
  with pytest.raises(DataError, match='blank.csv: file is empty'):
    read(tmp_path / 'blank.csv')
  (tmp_path / 'header.csv').write_text(','.join(_CIC_HEADER) + '\n\n')
  with pytest.raises(DataError, match='header.csv: has a header but no data'):
    read(tmp_path / 'header.csv')
  with pytest.raises(DataError, match="unknown data format 'arff'"):
    readers.iter_read('arff', tmp_path / 'header.csv', chunk_rows=2)
  with pytest.raises(ValueError, match='chunk_rows'):
    readers.iter_read('csv', tmp_path / 'header.csv', chunk_rows=0)


def test_read_columns_strips_names_like_the_readers(tmp_path):
  assert readers.read_columns(_cic_file(tmp_path)) == list(
    readers.read_cic_ids2017(_cic_file(tmp_path)).features.columns
  ) + ['Label']
  with pytest.raises(DataError, match='file is empty'):
    (tmp_path / 'empty.csv').write_text('')
    readers.read_columns(tmp_path / 'empty.csv')


def test_first_row_wider_than_the_header_is_an_error(tmp_path):
  # pandas would take the extra field as an index and shift every column.
  path = _csv_file(tmp_path, 'a,b,label\n1,2,0,9\n3,4,1\n')
  with pytest.raises(DataError, match='line 2: found 4 columns, expected 3'):
    readers.read_csv(path, label_column='label', benign_labels=['0'])


def test_iter_read_unreadable_file(tmp_path, monkeypatch):
  path = _kdd_file(tmp_path, _kdd_rows())

  def refuse(self, *args, **kwargs):
    raise PermissionError(13, 'Permission denied')

  monkeypatch.setattr(Path, 'open', refuse)
  with pytest.raises(DataError, match='KDDTrain.*cannot be read'):
    list(readers.iter_read('nsl_kdd', path, chunk_rows=2))
