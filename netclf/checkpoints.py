"""Saving and restoring a `Classifier` with orbax.

A checkpoint directory holds two orbax items: `variables` (the model's
arrays) and `metadata` (JSON: model settings, preprocessing, threshold,
reader options, the run's config and package versions), and a third,
`novelty`, when the models carry a reference of normal traffic. Nothing
else is needed to score with it.
"""

import json
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from netclf import classifier as classifier_lib
from netclf import novelty as novelty_lib
from netclf import preprocessing

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
  """A checkpoint is missing, incomplete or does not fit its own record."""


def _checkpointer():
  return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def save(path, clf, *, config=None, extra=None):
  """Writes `clf` under `path` (an absolute or relative directory)."""
  path = pathlib.Path(path).absolute()
  metadata = {
    'format_version': FORMAT_VERSION,
    'model': clf.model_settings,
    'preprocessing': json.loads(clf.preprocessor.to_json()),
    'threshold': float(clf.threshold),
    'reader': clf.reader,
    'num_models': clf.num_models,
    'config': config or {},
    **(extra or {}),
  }
  items = {}
  if clf.novelty is not None:
    metadata['novelty'] = {
      'weight': float(clf.novelty_weight),
      'centroids': int(clf.novelty.centroids.shape[1]),
    }
    items['novelty'] = ocp.args.StandardSave(
      jax.tree.map(np.asarray, clf.novelty._asdict())
    )
  # An empty collection (batch_stats of a model without batch norm) is not
  # in what `load` expects, so it is left out.
  variables = {
    name: jax.tree.map(np.asarray, tree)
    for name, tree in clf.variables.items()
    if jax.tree.leaves(tree)
  }
  _checkpointer().save(
    path,
    ocp.args.Composite(
      variables=ocp.args.StandardSave(variables),
      metadata=ocp.args.JsonSave(metadata),
      **items,
    ),
    force=True,
  )
  return path


def _abstract_variables(model_settings, num_features, num_models):
  model = classifier_lib.build_model(model_settings)

  def init(key):
    return model.init(key, jax.numpy.zeros((1, num_features)), train=False)

  keys = jax.random.split(jax.random.key(0), num_models)
  return jax.eval_shape(jax.vmap(init), keys)


def load(path):
  """Restores a `Classifier`; raises `CheckpointError` if it cannot."""
  path = pathlib.Path(path).absolute()
  if not path.is_dir():
    raise CheckpointError(f'checkpoint directory {path} does not exist')
  ckptr = _checkpointer()
  try:
    metadata = ckptr.restore(
      path, ocp.args.Composite(metadata=ocp.args.JsonRestore())
    )['metadata']
    preprocessor = preprocessing.Preprocessor.from_json(
      json.dumps(metadata['preprocessing'])
    )
    model_settings = metadata['model']
    abstract = _abstract_variables(
      model_settings,
      preprocessor.schema.num_features,
      int(metadata['num_models']),
    )
    items = {'variables': ocp.args.StandardRestore(abstract)}
    novelty_record = metadata.get('novelty')
    if novelty_record is not None:
      novelty_abstract = _abstract_novelty(
        novelty_record, preprocessor, int(metadata['num_models'])
      )
      abstract = {**abstract, 'novelty': novelty_abstract}
      items['novelty'] = ocp.args.StandardRestore(novelty_abstract)
    restored = ckptr.restore(path, ocp.args.Composite(**items))
    restored = {**restored['variables'], 'novelty': restored.get('novelty')}
  except CheckpointError:
    raise
  except Exception as e:  # orbax raises many types for damaged files.
    reason = str(e).strip().splitlines()[0] if str(e).strip() else ''
    if 'Structure' in reason or 'structure' in reason:
      raise CheckpointError(
        f'checkpoint {path}: its arrays do not match the model its record'
        ' describes (widths, depth or switches were changed)'
      ) from None
    raise CheckpointError(
      f'checkpoint {path} is unreadable or corrupt: '
      f'{type(e).__name__}: {reason[:200]}'
    ) from None
  _check_shapes(path, abstract, restored)
  novelty = restored.pop('novelty')
  return classifier_lib.Classifier(
    model_settings=model_settings,
    variables=restored,
    preprocessor=preprocessor,
    threshold=float(metadata['threshold']),
    reader=metadata.get('reader', {}),
    novelty=None if novelty is None else novelty_lib.Novelty(**novelty),
    novelty_weight=0.0 if novelty is None else novelty_record['weight'],
  ), metadata


def _abstract_novelty(record, preprocessor, num_models):
  shape = (num_models, int(record['centroids']))
  scalar = jax.ShapeDtypeStruct((num_models,), np.float32)
  return {
    'centroids': jax.ShapeDtypeStruct(
      (*shape, preprocessor.schema.num_features), np.float32
    ),
    'mean': scalar,
    'scale': scalar,
  }


def _check_shapes(path, expected, restored):
  want = jax.tree_util.tree_flatten_with_path(expected)[0]
  got = dict(jax.tree_util.tree_flatten_with_path(restored)[0])
  for key, spec in want:
    value = got.get(key)
    if value is None or tuple(value.shape) != tuple(spec.shape):
      name = jax.tree_util.keystr(key)
      shape = None if value is None else tuple(value.shape)
      raise CheckpointError(
        f'checkpoint {path}: {name} has shape {shape}, its record says'
        f' {tuple(spec.shape)}'
      )


class TrainingCheckpoints:
  """Periodic saves of fold-stacked training state, for resuming a run.

  Each save holds a pytree and a small JSON record; the record carries a
  fingerprint of the run's settings so that a workdir is never resumed
  under a different config. A save is restored if its fingerprint is
  `fingerprint` or one of `accepted` (the digests earlier versions wrote
  for the same settings).

  Attributes:
    every: epochs between saves.
  """

  def __init__(self, directory, *, every, keep, fingerprint, accepted=()):
    self.every = every
    self.fingerprint = fingerprint
    self.accepted = {fingerprint, *accepted}
    self.manager = ocp.CheckpointManager(
      pathlib.Path(directory).absolute(),
      options=ocp.CheckpointManagerOptions(
        max_to_keep=keep, enable_async_checkpointing=False
      ),
    )

  def save(self, step, tree, meta):
    meta = {**meta, 'fingerprint': self.fingerprint}
    self.manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(jax.tree.map(np.asarray, tree)),
        meta=ocp.args.JsonSave(meta),
      ),
    )
    self.manager.wait_until_finished()

  def restore(self, abstract_fn):
    """Returns `(meta, tree)` of the newest save, or None if there is none.

    Args:
      abstract_fn: maps a save's record to the abstract pytree to restore.
    """
    step = self.manager.latest_step()
    if step is None:
      return None
    path = self.manager.directory / str(step)
    try:
      meta = self.manager.restore(
        step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
      )['meta']
    except Exception as e:  # orbax raises many types for damaged files.
      raise CheckpointError(
        f'training state {path} is unreadable: {e}'
      ) from None
    if meta.get('fingerprint') not in self.accepted:
      raise CheckpointError(
        f'training state in {path.parent} was saved by a run with other'
        ' settings; use a new workdir or --config.retrain=True'
      )
    try:
      tree = self.manager.restore(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_fn(meta))
        ),
      )['state']
    except Exception as e:  # orbax raises many types for damaged files.
      reason = (str(e).strip().splitlines() or [''])[0][:200]
      raise CheckpointError(
        f'training state {path} is unreadable: {type(e).__name__}: {reason};'
        ' remove it to start again'
      ) from None
    return meta, tree

  def close(self):
    self.manager.close()
