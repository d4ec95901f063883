"""A trained model ready to score raw rows: weights, preprocessing, threshold.

The variables and preprocessing statistics carry a leading model axis: the
fold ensemble keeps one entry per fold (each fold model sees inputs scaled by
its own fold's statistics) and a refit keeps one. Scores are the mean
attack probability over that axis.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from netclf import models
from netclf import preprocessing

# Rows per compiled call; inputs are padded to a multiple so that any number
# of rows reuses one compiled program.
CHUNK_ROWS = 8192


def build_model(settings):
  """Returns the `ResidualMLP` described by a plain settings dict."""
  settings = dict(settings)
  settings['dtype'] = jnp.dtype(settings.get('dtype', 'float32'))
  return models.ResidualMLP(**settings)


@dataclasses.dataclass
class Classifier:
  """Scores raw rows with a fitted preprocessing and model stack.

  Attributes:
    model_settings: keyword arguments of `ResidualMLP` (plain values).
    variables: `{'params', 'batch_stats'}` with a leading model axis.
    preprocessor: the fitted `Preprocessor`, statistics stacked likewise.
    threshold: probability at or above which a row is called an attack.
    reader: how raw files for this model are read (format and options).
  """

  model_settings: dict
  variables: Any
  preprocessor: preprocessing.Preprocessor
  threshold: float
  reader: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    self.model = build_model(self.model_settings)

  @property
  def num_models(self):
    return int(self.preprocessor.stats.mean.shape[0])

  @functools.cached_property
  def _score(self):
    # In float32 the folded form gives the same scores, in about two thirds
    # of the CPU time; other compute dtypes round differently, so they run
    # the module as trained.
    folded = self.model.dtype == jnp.float32

    def one(variables, stats, numeric, codes):
      if folded:
        logits = self.model.apply(
          variables,
          preprocessing.first_layer(stats, numeric, codes, xp=jnp),
          method=models.ResidualMLP.folded_logits,
        )
      else:
        x = preprocessing.featurize(stats, numeric, codes, xp=jnp)
        logits = self.model.apply(variables, x, train=False)
      return jax.nn.sigmoid(logits)

    def score(variables, stats, numeric, codes):
      probs = jax.vmap(one, in_axes=(0, 0, None, None))(
        variables, stats, numeric, codes
      )
      return probs.mean(axis=0)

    return jax.jit(score)

  def predict_encoded(self, numeric, codes):
    """Attack probabilities for rows already passed through `encode`."""
    return np.asarray(self.scores_on_device(numeric, codes)).astype(np.float64)

  def scores_on_device(self, numeric, codes):
    """The float32 scores of `predict_encoded`, as a `jax.Array`.

    It returns once the work is dispatched, not when it is done, so the
    caller can do other work while the device scores.
    """
    n = len(numeric)
    chunk = min(CHUNK_ROWS, max(8, 1 << max(n - 1, 1).bit_length()))
    padded = -(-n // chunk) * chunk
    numeric = np.pad(numeric, ((0, padded - n), (0, 0)))
    codes = np.pad(codes, ((0, padded - n), (0, 0)))
    stats = jax.tree.map(jnp.asarray, self.preprocessor.stats)
    out = [
      self._score(
        self.variables, stats, numeric[i : i + chunk], codes[i : i + chunk]
      )
      for i in range(0, padded, chunk)
    ]
    return jnp.concatenate(out)[:n]

  def encode(self, features, *, source='input'):
    return preprocessing.encode(
      self.preprocessor.schema, features, source=source
    )

  def predict_proba(self, features):
    """Attack probability of each row of a DataFrame of raw features."""
    return self.predict_encoded(*self.encode(features))

  def predict(self, features):
    """1 for rows scored as attacks at the saved threshold, else 0."""
    return (self.predict_proba(features) >= self.threshold).astype(np.int32)
