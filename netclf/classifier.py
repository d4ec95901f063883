"""A trained model ready to score raw rows: weights, preprocessing, threshold.

The variables and preprocessing statistics carry a leading model axis: the
fold ensemble keeps one entry per fold (each fold model sees inputs scaled by
its own fold's statistics) and a refit keeps one. Scores are the mean
attack probability over that axis. A model may also carry a reference of
normal traffic (`novelty.Novelty`), whose novelty score, times a weight, is
added to its logit.
"""

import dataclasses
import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from netclf import models
from netclf import novelty as novelty_lib
from netclf import preprocessing

# Rows per compiled call; inputs are padded to a multiple so that any number
# of rows reuses one compiled program.
CHUNK_ROWS = 8192


def build_model(settings):
  """Returns the `ResidualMLP` described by a plain settings dict."""
  settings = dict(settings)
  settings['dtype'] = jnp.dtype(settings.get('dtype', 'float32'))
  return models.ResidualMLP(**settings)


@functools.cache
def _scorer(settings_json, novelty_weight):
  """The jitted scoring function of one kind of model, shared by instances.

  It maps `(variables, stats, novelty, numeric, codes)`, each of the first
  three with a leading model axis (`novelty` may be None), to the mean
  attack probability over the models.
  """
  model = build_model(json.loads(settings_json))
  # In float32 the folded form gives the same scores, in about two thirds
  # of the CPU time; other compute dtypes round differently, so they run
  # the module as trained.
  folded = model.dtype == jnp.float32

  def one(variables, stats, novelty, numeric, codes):
    if folded:
      logits = model.apply(
        variables,
        preprocessing.first_layer(stats, numeric, codes, xp=jnp),
        method=models.ResidualMLP.folded_logits,
      )
    else:
      x = preprocessing.featurize(stats, numeric, codes, xp=jnp)
      logits = model.apply(variables, x, train=False)
    if novelty is not None:
      novel = novelty_lib.score(novelty, stats, numeric, codes, xp=jnp)
      logits = logits + novelty_weight * novel
    return jax.nn.sigmoid(logits)

  def score(variables, stats, novelty, numeric, codes):
    probs = jax.vmap(one, in_axes=(0, 0, 0, None, None))(
      variables, stats, novelty, numeric, codes
    )
    return probs.mean(axis=0)

  return jax.jit(score)


@dataclasses.dataclass
class Classifier:
  """Scores raw rows with a fitted preprocessing and model stack.

  Attributes:
    model_settings: keyword arguments of `ResidualMLP` (plain values).
    variables: `{'params', 'batch_stats'}` with a leading model axis.
    preprocessor: the fitted `Preprocessor`, statistics stacked likewise.
    threshold: probability at or above which a row is called an attack.
    reader: how raw files for this model are read (format and options).
    novelty: a `novelty.Novelty` with a leading model axis, or None.
    novelty_weight: what a unit of novelty adds to a model's logit.
  """

  model_settings: dict
  variables: Any
  preprocessor: preprocessing.Preprocessor
  threshold: float
  reader: dict = dataclasses.field(default_factory=dict)
  novelty: novelty_lib.Novelty | None = None
  novelty_weight: float = 0.0

  def __post_init__(self):
    self.model = build_model(self.model_settings)

  @property
  def num_models(self):
    return int(self.preprocessor.stats.mean.shape[0])

  @property
  def _score(self):
    settings = json.dumps(self.model_settings, sort_keys=True)
    weight = float(self.novelty_weight) if self.novelty is not None else 0.0
    return _scorer(settings, weight)

  def take(self, members):
    """A `Classifier` of the models numbered `members`, in that order."""
    members = np.asarray(members)
    pick = functools.partial(jax.tree.map, lambda x: x[members])
    return dataclasses.replace(
      self,
      variables=pick(self.variables),
      preprocessor=dataclasses.replace(
        self.preprocessor, stats=pick(self.preprocessor.stats)
      ),
      novelty=None if self.novelty is None else pick(self.novelty),
    )

  def predict_encoded(self, numeric, codes):
    """Attack probabilities for rows already passed through `encode`."""
    scores = np.asarray(self._padded_scores(numeric, codes))
    return scores[: len(numeric)].astype(np.float64)

  def scores_on_device(self, numeric, codes):
    """The float32 scores of `predict_encoded`, as a `jax.Array`.

    It returns once the work is dispatched, not when it is done, so the
    caller can do other work while the device scores.
    """
    return self._padded_scores(numeric, codes)[: len(numeric)]

  def _padded_scores(self, numeric, codes):
    """Scores of the rows padded to whole chunks, a power of two in size.

    Padding keeps the programs compiled few: a new row count seldom needs
    one of its own.
    """
    n = len(numeric)
    chunk = min(CHUNK_ROWS, max(8, 1 << max(n - 1, 1).bit_length()))
    padded = -(-n // chunk) * chunk
    numeric = np.pad(numeric, ((0, padded - n), (0, 0)))
    codes = np.pad(codes, ((0, padded - n), (0, 0)))
    # The host arrays go to the jitted call as they are: its own transfer
    # costs a fraction of converting them leaf by leaf, which took most of
    # a one-row call.
    score = functools.partial(
      self._score, self.variables, self.preprocessor.stats, self.novelty
    )
    out = [
      score(numeric[i : i + chunk], codes[i : i + chunk])
      for i in range(0, padded, chunk)
    ]
    return out[0] if len(out) == 1 else jnp.concatenate(out)

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
