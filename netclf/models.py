"""The residual MLP that scores flow records."""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class Dropout(nn.Module):
  """Inverted dropout that draws 16 random bits a value rather than 32.

  A value is kept when its draw falls below `round(keep * 2**bits)`, so the
  rate is met to within `2**-bits` (1.5e-5 at 16 bits), and kept values are
  scaled by the inverse of that exact keep probability. Random bits are
  most of dropout's cost on a CPU, and Flax's `nn.Dropout` spends 32 on
  each value.

  Attributes:
    rate: the probability of dropping a value.
    bits: random bits per value: 8, 16 or 32.
  """

  rate: float
  bits: int = 16

  @nn.compact
  def __call__(self, x, *, deterministic):
    levels = 2**self.bits
    keep = round((1.0 - self.rate) * levels)
    if deterministic or keep >= levels:
      return x
    if keep <= 0:
      return jnp.zeros_like(x)
    dtype = jnp.dtype(f'uint{self.bits}')
    draws = jax.random.bits(self.make_rng('dropout'), x.shape, dtype)
    kept = draws < np.asarray(keep, dtype)
    return jnp.where(kept, x * (levels / keep), 0).astype(x.dtype)


class DenseBlock(nn.Module):
  """Dense layer, optional batch norm, ReLU and dropout, with a skip path."""

  width: int
  dropout: float
  residual: bool = True
  batch_norm: bool = True
  dtype: Any = jnp.float32
  dropout_bits: int = 16

  @nn.compact
  def __call__(self, x, *, train=False):
    h = nn.Dense(self.width, use_bias=not self.batch_norm, dtype=self.dtype)(x)
    if self.batch_norm:
      h = nn.BatchNorm(
        use_running_average=not train, momentum=0.9, dtype=self.dtype
      )(h)
    h = nn.relu(h)
    h = Dropout(self.dropout, self.dropout_bits)(h, deterministic=not train)
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
    residual: whether blocks add a skip connection.
    batch_norm: whether blocks normalise their pre-activations.
    dtype: compute dtype of the matmuls; parameters stay float32.
    dropout_bits: random bits drawn per dropped-or-kept value.
  """

  widths: Sequence[int] = (256, 256, 128)
  dropouts: Sequence[float] = (0.4, 0.3, 0.2)
  input_dropout: float = 0.7
  residual: bool = True
  batch_norm: bool = True
  dtype: Any = jnp.float32
  dropout_bits: int = 16

  @nn.compact
  def __call__(self, x, *, train=False):
    """Returns one attack logit per row of `x`, shape `[batch]`."""
    if len(self.widths) != len(self.dropouts):
      raise ValueError('widths and dropouts must have the same length')
    x = Dropout(self.input_dropout, self.dropout_bits)(
      x, deterministic=not train
    )
    for width, rate in zip(self.widths, self.dropouts, strict=True):
      x = DenseBlock(
        width,
        rate,
        residual=self.residual,
        batch_norm=self.batch_norm,
        dtype=self.dtype,
        dropout_bits=self.dropout_bits,
      )(x, train=train)
    logits = nn.Dense(1, dtype=self.dtype, name='head')(x)
    return jnp.squeeze(logits, -1).astype(jnp.float32)
