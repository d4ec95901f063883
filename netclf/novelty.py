"""How far a row lies from normal training traffic.

A classifier ranks well the attacks whose kind its training rows showed;
an attack of a kind it never saw can look to it like normal traffic. How
far a row lies from the normal training rows does not depend on which
attacks training showed. Each model keeps k-means centroids of its own
normal training rows, in its own standardised feature space, and the
spread of those rows' log distances to their nearest centroid. A row's
novelty is its own log distance in units of that spread, measured from
the mean: about 0 for typical normal traffic, large for rows unlike any.
`Classifier` adds it, times a weight, to the model's logit.
"""

import warnings
from typing import NamedTuple

import numpy as np

from netclf import preprocessing
from netclf.readers import DataError


class Novelty(NamedTuple):
  """One model's reference of normal traffic; a pytree, so it can be vmapped."""

  centroids: np.ndarray  # [num_centroids, num_features] float32
  mean: np.ndarray  # [] mean log1p distance of the fitted rows
  scale: np.ndarray  # [] their standard deviation


def distances(centroids, stats, numeric, codes, xp=np):
  """Distance from each row's model input to its nearest centroid.

  `|x - c|^2 = |x|^2 - 2 x.c + |c|^2`, so that one matmul does the work.
  (Gathering rows of the centroids for the one-hot columns, as
  `preprocessing.first_layer` does for a kernel, took 3.5 times as long
  on XLA:CPU: it gathers from the transposed centroids.)

  Args:
    centroids: `[num_centroids, num_features]`.
    stats, numeric, codes, xp: as for `preprocessing.featurize`.
  """
  x = preprocessing.featurize(stats, numeric, codes, xp=xp)
  rows = (x * x).sum(axis=1)
  squared = rows[:, None] - 2 * x @ centroids.T + (centroids**2).sum(axis=1)
  # Rounding can leave a tiny negative where a row sits on a centroid.
  return xp.sqrt(xp.maximum(squared.min(axis=1), 0.0))


def score(novelty, stats, numeric, codes, xp=np):
  """Each row's novelty: its log distance in units of the fitted spread."""
  d = distances(novelty.centroids, stats, numeric, codes, xp=xp)
  return (xp.log1p(d) - novelty.mean) / novelty.scale


def fit(stats, numeric, codes, *, num_centroids, max_rows, seed):
  """Fits a `Novelty` on the given rows: one model's normal training rows.

  At most `max_rows` rows, drawn at random, place the centroids. With fewer
  distinct rows than `num_centroids`, centroids repeat, which changes no
  distance, so that every model keeps the same number.

  Args:
    stats: the model's `FeatureStats`.
    numeric, codes: the rows, from `encode`.
    num_centroids: k of k-means.
    max_rows: rows that k-means sees at most.
    seed: seed of the row sample and of k-means.
  """
  if len(numeric) == 0:
    raise DataError('no normal training rows to measure novelty against')
  rng = np.random.default_rng(seed)
  if len(numeric) > max_rows:
    pick = np.sort(rng.choice(len(numeric), max_rows, replace=False))
    numeric, codes = numeric[pick], codes[pick]
  # Scoring never fits, and scikit-learn takes over a second to import.
  from sklearn import cluster
  from sklearn import exceptions

  x = preprocessing.featurize(stats, numeric, codes)
  k = min(num_centroids, len(np.unique(x, axis=0)))
  with warnings.catch_warnings():
    # Rows that repeat can leave fewer distinct clusters than asked.
    warnings.simplefilter('ignore', exceptions.ConvergenceWarning)
    kmeans = cluster.KMeans(k, n_init=1, max_iter=50, random_state=seed)
    centroids = kmeans.fit(x).cluster_centers_.astype(np.float32)
  centroids = np.resize(centroids, (num_centroids, x.shape[1]))
  logged = np.log1p(distances(centroids, stats, numeric, codes))
  return Novelty(
    centroids=centroids,
    mean=np.float32(logged.mean()),
    scale=np.float32(max(logged.std(), 1e-6)),
  )


def stack(references):
  """Stacks per-model `Novelty` references along a leading model axis."""
  return Novelty(*(np.stack(parts) for parts in zip(*references, strict=True)))
