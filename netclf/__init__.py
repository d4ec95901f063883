"""netclf: robust binary classifiers for network traffic in JAX/Flax.

Scoring raw rows with a saved model takes two lines:

  clf = netclf.load('runs/default/checkpoint')
  probs = clf.predict_proba(frame)  # or clf.predict(frame) for 0/1

`frame` is a pandas DataFrame of raw rows with the training features as
columns; other columns are ignored.
"""


def load(path):
  """Returns the `Classifier` saved in the checkpoint directory `path`.

  Args:
    path: a checkpoint directory written by `netclf.main`.

  Returns:
    A `netclf.classifier.Classifier`; its `predict_proba(frame)` gives the
    attack probability of each row and `predict(frame)` 0 or 1 at the saved
    threshold.

  Raises:
    netclf.checkpoints.CheckpointError: if the checkpoint cannot be read.
  """
  # Imported here so that `import netclf` does not start JAX and orbax.
  from netclf import checkpoints

  return checkpoints.load(path)[0]
