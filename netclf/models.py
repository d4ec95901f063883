"""The residual MLP that scores flow records."""

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class GaussianNoise(nn.Module):
  """Adds zero-mean Gaussian noise in training; the identity otherwise.

  The noise is drawn from the 'dropout' stream, so a model that has it needs
  no key of its own.
  """

  stddev: float

  @nn.compact
  def __call__(self, x, *, deterministic):
    if deterministic or self.stddev == 0:
      return x
    noise = jax.random.normal(self.make_rng('dropout'), x.shape, x.dtype)
    return x + self.stddev * noise


# Dropout draws one random byte per unit, so rates are multiples of 1/256.
DROPOUT_LEVELS = 256


def valid_dropout_rate(rate):
  """Whether `rate` is 0 or in [1/256, 255/256], so that it rounds to
  neither no dropout nor dropping every unit."""
  step = 1 / DROPOUT_LEVELS
  return rate == 0 or step <= rate <= 1 - step


def dropout_levels(rate):
  """The number of the 256 byte values that drop a unit at `rate`."""
  return round(rate * DROPOUT_LEVELS)


class Dropout(nn.Module):
  """Zeroes each unit with probability `rate` in training; scales the rest.

  `nn.Dropout` spends a whole 32-bit random word on each unit; this module
  spends one byte of it, which takes a quarter of the random-bit work (a
  large part of a training step on CPU). The rate is rounded to the nearest
  multiple of 1/256 (0.7 drops 179 of 256 byte values, 0.699), and the kept
  units are scaled by the inverse of the exact kept fraction, so each
  unit's expectation is unchanged.
  """

  rate: float

  @nn.compact
  def __call__(self, x, *, deterministic):
    if deterministic or self.rate == 0:
      return x
    if not valid_dropout_rate(self.rate):
      raise ValueError(
        f'dropout rate {self.rate} is neither 0 nor in [1/256, 255/256]'
      )
    dropped = dropout_levels(self.rate)
    *lead, units = x.shape
    words = jax.random.bits(
      self.make_rng('dropout'), (*lead, -(-units // 4)), jnp.uint32
    )
    levels = jax.lax.bitcast_convert_type(words, jnp.uint8)
    levels = levels.reshape(*lead, -1)[..., :units]
    scale = DROPOUT_LEVELS / (DROPOUT_LEVELS - dropped)
    return jnp.where(levels >= dropped, x * scale, 0).astype(x.dtype)


# Flax's default, named so that inference can fold batch norm exactly.
BATCH_NORM_EPSILON = 1e-5


class DenseBlock(nn.Module):
  """Dense layer, optional batch norm, ReLU and dropout, with a skip path."""

  width: int
  dropout: float
  residual: bool = True
  batch_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train=False):
    h = nn.Dense(self.width, use_bias=not self.batch_norm, dtype=self.dtype)(x)
    if self.batch_norm:
      h = nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=BATCH_NORM_EPSILON,
        dtype=self.dtype,
      )(h)
    h = nn.relu(h)
    h = Dropout(self.dropout)(h, deterministic=not train)
    if not self.residual:
      return h
    if x.shape[-1] != self.width:
      # A linear projection lets the skip path change width.
      x = nn.Dense(self.width, use_bias=False, dtype=self.dtype, name='skip')(x)
    return h + x


class ResidualMLP(nn.Module):
  """Input dropout, then dense blocks with skip connections, then one logit.

  Attributes:
    widths: width of each dense block.
    dropouts: dropout rate after each block, one per width.
    input_dropout: dropout rate on the input features.
    input_noise: standard deviation of the Gaussian noise added to every
      input feature in training, before input dropout.
    residual: whether blocks add a skip connection.
    batch_norm: whether blocks normalise their pre-activations.
    dtype: compute dtype of the matmuls; parameters stay float32.
  """

  widths: Sequence[int] = (256, 256, 128)
  dropouts: Sequence[float] = (0.4, 0.3, 0.2)
  input_dropout: float = 0.7
  input_noise: float = 0.0
  residual: bool = True
  batch_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train=False):
    """Returns one attack logit per row of `x`, shape `[batch]`."""
    if len(self.widths) != len(self.dropouts):
      raise ValueError('widths and dropouts must have the same length')
    x = GaussianNoise(self.input_noise)(x, deterministic=not train)
    x = Dropout(self.input_dropout)(x, deterministic=not train)
    for width, rate in zip(self.widths, self.dropouts, strict=True):
      x = DenseBlock(
        width,
        rate,
        residual=self.residual,
        batch_norm=self.batch_norm,
        dtype=self.dtype,
      )(x, train=train)
    logits = nn.Dense(1, dtype=self.dtype, name='head')(x)
    return jnp.squeeze(logits, -1).astype(jnp.float32)

  def folded_logits(self, first_matmul):
    """The logits of `__call__` at inference, from folded weights.

    At inference batch norm is an affine map, so each block's is folded
    into its dense layer's kernel and bias, and dropout and noise are the
    identity. The first layer's products `x @ kernel` come from
    `first_matmul(kernel)`, so that a caller who knows how `x` is built
    (numeric columns beside one-hot blocks) can form them without building
    `x`. Call it as `model.apply(variables, first_matmul,
    method=ResidualMLP.folded_logits)`; it matches `__call__` up to float
    rounding for float32 models.

    The last block's skip path is linear and so is the head, so they are
    folded as well: the skip adds its input times `skip_kernel @
    head_kernel`, one column, instead of a matmul as wide as the block.
    """
    params = self.variables['params']
    moments = self.variables.get('batch_stats', {})
    head = params['head']
    matmul, x = first_matmul, None
    for i, width in enumerate(self.widths):
      block = params[f'DenseBlock_{i}']
      kernel = block['Dense_0']['kernel']
      if self.batch_norm:
        norm = block['BatchNorm_0']
        stats = moments[f'DenseBlock_{i}']['BatchNorm_0']
        mul = norm['scale'] * jax.lax.rsqrt(stats['var'] + BATCH_NORM_EPSILON)
        kernel, bias = kernel * mul, norm['bias'] - stats['mean'] * mul
      else:
        bias = block['Dense_0']['bias']
      h = nn.relu(matmul(kernel) + bias)
      if self.residual:
        # The skip path as a kernel on the block's input; None is the input.
        skip = block['skip']['kernel'] if 'skip' in block else None
        if i == len(self.widths) - 1:
          to_head = head['kernel'] if skip is None else skip @ head['kernel']
          logits = h @ head['kernel'] + matmul(to_head) + head['bias']
          return jnp.squeeze(logits, -1).astype(jnp.float32)
        if skip is not None:
          h = h + matmul(skip)
        elif x is None:
          h = h + matmul(jnp.eye(width, dtype=kernel.dtype))  # The input.
        else:
          h = h + x
      x = h
      matmul = functools.partial(jnp.matmul, x)
    logits = matmul(head['kernel']) + head['bias']
    return jnp.squeeze(logits, -1).astype(jnp.float32)
