"""Per-example classification losses on logits."""

import dataclasses

import jax.numpy as jnp
import optax


def focal_loss(logits, labels, *, alpha=0.25, gamma=2.0):
  """Sigmoid focal loss of Lin et al. (2017), one value per example.

  FL = -alpha_t * (1 - p_t)**gamma * log(p_t), where p_t is the predicted
  probability of the true class. `alpha` weights the attack class (label 1)
  and `1 - alpha` the normal class (label 0); `alpha=None` weights both by
  one. The computation stays in log space, so logits of any size give finite
  values and gradients.

  Args:
    logits: float array of shape `[...]`.
    labels: array of 0/1 labels, broadcastable to `logits`.
    alpha: weight of label 1 in (0, 1), or None for no class weighting.
    gamma: focusing exponent; 0 gives (weighted) binary cross-entropy.

  Returns:
    The loss of each example, shaped like `logits`.

  References:
    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
  """
  labels = jnp.asarray(labels, logits.dtype)
  return optax.sigmoid_focal_loss(logits, labels, alpha=alpha, gamma=gamma)


def binary_cross_entropy(logits, labels):
  """Sigmoid binary cross-entropy, one value per example."""
  labels = jnp.asarray(labels, logits.dtype)
  return optax.sigmoid_binary_cross_entropy(logits, labels)


@dataclasses.dataclass(frozen=True)
class Loss:
  """A loss chosen by name; hashable, so jitted code can take it statically.

  Attributes:
    name: 'focal' or 'bce'.
    alpha: focal weight of the attack class, or None.
    gamma: focal exponent.
  """

  name: str = 'focal'
  alpha: float | None = 0.25
  gamma: float = 2.0

  def __post_init__(self):
    if self.name not in ('focal', 'bce'):
      raise ValueError(f"unknown loss {self.name!r}: use 'focal' or 'bce'")

  def __call__(self, logits, labels):
    if self.name == 'bce':
      return binary_cross_entropy(logits, labels)
    return focal_loss(logits, labels, alpha=self.alpha, gamma=self.gamma)
