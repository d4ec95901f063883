"""Training and evaluation steps for one model (one fold).

Nothing here knows about folds: the fold runner maps these functions over a
leading fold axis where it calls them.
"""

from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax.training import train_state

from netclf.preprocessing import featurize


class TrainState(train_state.TrainState):
  batch_stats: Any = None


class DeviceData(NamedTuple):
  """Encoded rows that stay on the device; folds index into them."""

  numeric: jax.Array  # [rows, num_numeric] float32, raw
  codes: jax.Array  # [rows, num_categorical] int32
  labels: jax.Array  # [rows] float32 0/1


def create_train_state(model, key, num_features, tx, *, prior_logit):
  """Initialises a model whose output bias is the log-odds of the prior."""
  variables = model.init(key, jnp.zeros((1, num_features)), train=False)
  params = dict(variables['params'])
  head = dict(params['head'])
  head['bias'] = jnp.full_like(head['bias'], prior_logit)
  params['head'] = head
  return TrainState.create(
    apply_fn=model.apply,
    params=params,
    tx=tx,
    batch_stats=variables.get('batch_stats', {}),
  )


def restart(state, apply_fn, tx):
  """Starts a new phase from a state's weights with a fresh optimizer."""
  return TrainState.create(
    apply_fn=apply_fn,
    params=state.params,
    tx=tx,
    batch_stats=state.batch_stats,
  )


def train_step(state, batch, key, *, loss):
  """One optimizer step on a batch; rows with weight 0 add nothing.

  Args:
    state: the `TrainState`.
    batch: dict with `x` `[B, F]`, `y` `[B]` and `w` `[B]` row weights.
    key: the dropout key for this step.
    loss: a per-example loss `loss(logits, labels)`.

  Returns:
    `(state, metrics)` with the weighted mean loss and the total weight.
  """

  def loss_fn(params):
    logits, updates = state.apply_fn(
      {'params': params, 'batch_stats': state.batch_stats},
      batch['x'],
      train=True,
      rngs={'dropout': key},
      mutable=['batch_stats'],
    )
    total = jnp.sum(loss(logits, batch['y']) * batch['w'])
    mean = total / jnp.maximum(jnp.sum(batch['w']), 1.0)
    return mean, updates.get('batch_stats', state.batch_stats)

  (value, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
    state.params
  )
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return state, {'loss': value, 'weight': jnp.sum(batch['w'])}


def eval_step(state, x):
  """Returns inference-mode logits for a batch of model inputs."""
  return state.apply_fn(
    {'params': state.params, 'batch_stats': state.batch_stats},
    x,
    train=False,
  )


def gather_batch(data, stats, index):
  """Looks rows up on the device and turns them into model inputs."""
  x = featurize(stats, data.numeric[index], data.codes[index], xp=jnp)
  return x, data.labels[index]


def train_epoch(
  state,
  data,
  stats,
  index,
  weight,
  key,
  *,
  batch_size,
  loss,
  batch_sharding=None,
):
  """One shuffled pass over a fold's training rows as a `lax.scan`.

  Args:
    state: the `TrainState`.
    data: the `DeviceData` of all rows.
    stats: the fold's `FeatureStats`.
    index: `[n]` row numbers, `n` a multiple of `batch_size`.
    weight: `[n]` 1 for real rows, 0 for padding.
    key: this epoch's key.
    batch_size: rows per step.
    loss: per-example loss.
    batch_sharding: optional sharding of each batch's rows (a `data` mesh
      axis): the step then runs data-parallel, the gradients and batch
      statistics reduced over that axis.

  Returns:
    `(state, mean_loss)` over the epoch's real rows.
  """
  perm_key, step_key = jax.random.split(key)
  perm = jax.random.permutation(perm_key, index.shape[0])
  index = index[perm].reshape(-1, batch_size)
  weight = weight[perm].reshape(-1, batch_size)

  def body(state, xs):
    step, idx, w = xs
    x, y = gather_batch(data, stats, idx)
    batch = {'x': x, 'y': y, 'w': w}
    if batch_sharding is not None:
      batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
    dropout_key = jax.random.fold_in(step_key, step)
    state, metrics = train_step(state, batch, dropout_key, loss=loss)
    return state, metrics['loss'] * metrics['weight']

  steps = jnp.arange(index.shape[0])
  state, totals = jax.lax.scan(body, state, (steps, index, weight))
  return state, jnp.sum(totals) / jnp.maximum(jnp.sum(weight), 1.0)


def evaluate(state, data, stats, index, weight, *, batch_size, loss):
  """Returns `(mean_loss, probabilities)` on rows `index` in chunks.

  `index` and `weight` have a length that is a multiple of `batch_size`;
  probabilities come back in the same order.
  """

  def body(xs):
    idx, w = xs
    x, y = gather_batch(data, stats, idx)
    logits = eval_step(state, x)
    return jnp.sum(loss(logits, y) * w), jax.nn.sigmoid(logits)

  chunks = (index.reshape(-1, batch_size), weight.reshape(-1, batch_size))
  totals, probs = jax.lax.map(body, chunks)
  mean = jnp.sum(totals) / jnp.maximum(jnp.sum(weight), 1.0)
  return mean, probs.reshape(-1)
