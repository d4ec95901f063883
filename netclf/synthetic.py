"""A generated flow-record data set, for when no real data is at hand.

Rows look like connection summaries (protocol, service, TCP flag, byte and
packet counts, error rates over recent connections). Attacks come in
families; the test split adds families absent from training, as NSL-KDD
does, so scores on it fall clearly below cross-validation on training.
"""

import numpy as np
import pandas as pd

from netclf.readers import Dataset

PROTOCOLS = ('tcp', 'udp', 'icmp')
SERVICES = (
  'http', 'dns', 'smtp', 'ftp', 'ftp_data', 'ssh', 'telnet', 'private',
  'ntp', 'irc', 'tftp', 'finger',
)  # fmt: skip
FLAGS = ('SF', 'S0', 'REJ', 'RSTO', 'S1')
CATEGORICAL = ('protocol', 'service', 'flag')
# Heavy-tailed non-negative columns, drawn as rounded lognormals.
_COUNTS = ('duration', 'src_bytes', 'dst_bytes', 'count', 'srv_count')
_RATES = (
  'serror_rate', 'rerror_rate', 'same_srv_rate', 'diff_srv_rate',
  'dst_host_same_srv_rate', 'dst_host_serror_rate',
)  # fmt: skip
_DERIVED = ('src_packets', 'dst_packets', 'num_failed_logins', 'logged_in')
FEATURES = CATEGORICAL + _COUNTS + _DERIVED + _RATES

# Each profile gives category weights, (mu, sigma) of log counts, (a, b) of
# beta-distributed rates, and login behaviour; attacks change a few entries
# of the normal profile, so most of their columns look normal.
_NORMAL = {
  'protocol': (0.75, 0.2, 0.05),
  'service': (40, 15, 8, 3, 6, 5, 1, 12, 3, 0.3, 0.05, 0.02),
  'flag': (90, 3, 4, 2, 1),
  'duration': (0.0, 2.0),
  'src_bytes': (5.5, 1.5),
  'dst_bytes': (7.0, 2.0),
  'count': (1.5, 1.2),
  'srv_count': (1.5, 1.0),
  'serror_rate': (0.3, 8.0),
  'rerror_rate': (0.3, 8.0),
  'same_srv_rate': (6.0, 1.0),
  'diff_srv_rate': (0.5, 8.0),
  'dst_host_same_srv_rate': (4.0, 2.0),
  'dst_host_serror_rate': (0.3, 8.0),
  'logged_in': 0.7,
  'failed_logins': 0.02,
}
_ATTACKS = {
  'flood': {
    'service': (10, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0),
    'flag': (10, 80, 5, 5, 0),
    'count': (4.5, 0.8),
    'serror_rate': (4.0, 1.0),
    'dst_host_serror_rate': (4.0, 1.5),
    'same_srv_rate': (2.0, 4.0),
    'logged_in': 0.05,
  },
  'scan': {
    'protocol': (0.6, 0.3, 0.1),
    'service': (1,) * 12,
    'flag': (20, 20, 50, 10, 0),
    'duration': (-1.0, 1.0),
    'rerror_rate': (3.0, 2.0),
    'diff_srv_rate': (3.0, 2.0),
    'dst_host_same_srv_rate': (0.5, 5.0),
    'logged_in': 0.05,
  },
  'bruteforce': {
    'protocol': (1.0, 0.0, 0.0),
    'service': (0, 0, 0, 30, 0, 50, 20, 0, 0, 0, 0, 0),
    'src_bytes': (5.0, 0.6),
    'dst_bytes': (5.5, 0.8),
    'srv_count': (3.0, 0.8),
    'failed_logins': 1.5,
    'logged_in': 0.2,
  },
  # Novel in test: each shares a trait or two with a training family.
  'exfiltration': {
    'service': (20, 40, 5, 10, 15, 10, 0, 0, 0, 0, 10, 0),
    'duration': (3.0, 1.5),
    'src_bytes': (11.0, 1.5),
    'dst_bytes': (4.0, 1.0),
    'flag': (70, 0, 0, 25, 5),
    'diff_srv_rate': (2.0, 4.0),
    'dst_host_same_srv_rate': (0.7, 4.0),
    'logged_in': 0.9,
  },
  'slowloris': {
    'protocol': (1.0, 0.0, 0.0),
    'service': (1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    'flag': (30, 10, 0, 30, 30),
    'duration': (5.0, 1.0),
    'src_bytes': (4.0, 0.5),
    'dst_bytes': (1.0, 1.0),
    'srv_count': (3.5, 0.7),
    'serror_rate': (2.0, 2.0),
    'dst_host_serror_rate': (1.5, 2.0),
  },
}
# Shares of the rows in each split.
_TRAIN_MIX = {'normal': 0.8, 'flood': 0.09, 'scan': 0.06, 'bruteforce': 0.05}
_TEST_MIX = {
  'normal': 0.6, 'flood': 0.1, 'scan': 0.07, 'bruteforce': 0.07,
  'exfiltration': 0.09, 'slowloris': 0.07,
}  # fmt: skip
# Attacks drawn partly from the normal profile, so they hide among normals.
_HIDDEN = 0.1
# Fraction of rows whose name (and label) is swapped to the other class.
_LABEL_NOISE = 0.01


def _choice(rng, names, weights, n: int) -> np.ndarray:
  """Draws `n` of `names` with probabilities proportional to `weights`."""
  p = np.asarray(weights, np.float64)
  index = rng.choice(len(names), n, p=p / p.sum())
  return np.asarray(names, dtype=object)[index]


def _sample(profile: dict, n: int, rng: np.random.Generator) -> pd.DataFrame:
  """Draws `n` rows from a profile (missing entries come from normal)."""
  p = {**_NORMAL, **profile}
  cols = {
    'protocol': _choice(rng, PROTOCOLS, p['protocol'], n),
    'service': _choice(rng, SERVICES, p['service'], n),
    'flag': _choice(rng, FLAGS, p['flag'], n),
  }
  for name in _COUNTS:
    cols[name] = np.floor(rng.lognormal(*p[name], n))
  # Refused or half-open connections carry no payload.
  failed = np.isin(cols['flag'], ('S0', 'REJ'))
  for name in ('duration', 'src_bytes', 'dst_bytes'):
    cols[name][failed] = 0.0
  for side in ('src', 'dst'):
    size = rng.lognormal(6.0, 0.7, n)
    cols[f'{side}_packets'] = 1.0 + rng.poisson(cols[f'{side}_bytes'] / size)
  cols['num_failed_logins'] = rng.poisson(p['failed_logins'], n).astype(float)
  cols['logged_in'] = (rng.random(n) < p['logged_in']).astype(float)
  for name in _RATES:
    cols[name] = np.round(rng.beta(*p[name], n), 2)
  return pd.DataFrame(cols)[list(FEATURES)]


def _family(name: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
  """Draws rows of one family, hiding some attacks among normal traffic."""
  if name == 'normal':
    return _sample({}, n, rng)
  rows = _sample(_ATTACKS[name], n, rng)
  normal = _sample({}, n, rng)
  hidden = rng.random(n) < _HIDDEN
  swap = hidden[:, None] & (rng.random((n, len(FEATURES))) < 0.5)
  return rows.mask(swap, normal)


def _split(mix: dict, n: int, rng: np.random.Generator, name: str) -> Dataset:
  """Draws one split with family shares `mix`, then adds label noise."""
  families = list(mix)
  shares = np.array(list(mix.values()))
  counts = rng.multinomial(n, shares / shares.sum())
  parts = [_family(f, k, rng) for f, k in zip(families, counts, strict=True)]
  frame = pd.concat(parts, ignore_index=True)
  order = rng.permutation(n)
  frame = frame.iloc[order].reset_index(drop=True)
  names = np.repeat(np.array(families, object), counts)[order]
  # Mislabel as many normal rows as attack rows, so that noise does not
  # swamp the smaller class.
  attacks = families[1:]
  for source, targets in ((['normal'], attacks), (attacks, ['normal'])):
    pool = np.flatnonzero(np.isin(names, source))
    k = min(len(pool), round(_LABEL_NOISE * n / 2))
    flip = rng.choice(pool, k, replace=False)
    names[flip] = _choice(rng, targets, np.ones(len(targets)), k)
  for c in CATEGORICAL:
    frame[c] = frame[c].astype(object)
  return Dataset(
    features=frame,
    labels=(names != 'normal').astype(np.int32),
    attack_names=names,
    categorical=CATEGORICAL,
    name=name,
  )


def make_dataset(
  num_train: int, num_test: int, *, seed: int
) -> tuple[Dataset, Dataset]:
  """Returns generated (train, test) splits, determined by `seed`.

  About 20% of training rows are attacks from three families ('flood',
  'scan', 'bruteforce'); the test split has about 40% attacks, over a third
  of them from families never seen in training ('exfiltration',
  'slowloris'). About 10% of attacks hide half their columns among normal
  traffic and 1% of rows carry the other class's label.

  Args:
    num_train: the number of training rows.
    num_test: the number of test rows.
    seed: seeds the numpy generator; equal seeds give equal data.

  Returns:
    The train and test `Dataset`s, named 'synthetic-train' and
    'synthetic-test'.
  """
  train_rng, test_rng = np.random.default_rng(seed).spawn(2)
  train = _split(_TRAIN_MIX, num_train, train_rng, 'synthetic-train')
  test = _split(_TEST_MIX, num_test, test_rng, 'synthetic-test')
  return train, test
