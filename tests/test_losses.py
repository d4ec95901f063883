"""Tests of the focal and cross-entropy losses."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from netclf import losses

LOGITS = np.array([-6.0, -2.0, -0.3, 0.0, 0.4, 1.5, 7.0], np.float32)


def _focal_by_hand(logits, labels, alpha, gamma):
  p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
  p_t = np.where(labels == 1, p, 1 - p)
  alpha_t = np.where(labels == 1, alpha, 1 - alpha)
  return -alpha_t * (1 - p_t) ** gamma * np.log(p_t)


@pytest.mark.parametrize('label', [0, 1])
@pytest.mark.parametrize('alpha,gamma', [(0.25, 2.0), (0.5, 1.0), (0.9, 5.0)])
def test_focal_matches_formula(label, alpha, gamma):
  labels = np.full_like(LOGITS, label)
  got = losses.focal_loss(jnp.asarray(LOGITS), labels, alpha=alpha, gamma=gamma)
  want = _focal_by_hand(LOGITS, labels, alpha, gamma)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_focal_returns_one_value_per_example():
  labels = np.array([0, 1, 0, 1, 1, 0, 1], np.float32)
  out = losses.focal_loss(jnp.asarray(LOGITS), labels)
  assert out.shape == LOGITS.shape


def test_gamma_zero_without_alpha_is_cross_entropy():
  labels = np.array([0, 1, 0, 1, 1, 0, 1], np.float32)
  focal = losses.focal_loss(jnp.asarray(LOGITS), labels, alpha=None, gamma=0)
  p = 1 / (1 + np.exp(-LOGITS.astype(np.float64)))
  by_hand = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
  np.testing.assert_allclose(focal, by_hand, rtol=1e-5)
  bce = losses.binary_cross_entropy(jnp.asarray(LOGITS), labels)
  np.testing.assert_allclose(focal, bce, rtol=1e-5)


def test_alpha_weights_attacks_and_one_minus_alpha_normal_rows():
  logits = jnp.asarray(LOGITS)
  ones, zeros = np.ones_like(LOGITS), np.zeros_like(LOGITS)
  plain_1 = losses.focal_loss(logits, ones, alpha=None)
  plain_0 = losses.focal_loss(logits, zeros, alpha=None)
  np.testing.assert_allclose(
    losses.focal_loss(logits, ones, alpha=0.25), 0.25 * plain_1, rtol=1e-6
  )
  np.testing.assert_allclose(
    losses.focal_loss(logits, zeros, alpha=0.25), 0.75 * plain_0, rtol=1e-6
  )


@pytest.mark.parametrize('name', ['focal', 'bce'])
def test_gradients_finite_at_extreme_logits(name):
  loss = losses.Loss(name)
  logits = jnp.array([-100.0, 100.0, -100.0, 100.0])
  labels = jnp.array([0.0, 1.0, 1.0, 0.0])
  value, grad = jax.value_and_grad(lambda x: loss(x, labels).sum())(logits)
  assert np.isfinite(value)
  assert np.all(np.isfinite(grad))
  # Confidently wrong rows must still be pushed the right way.
  assert grad[2] < 0 and grad[3] > 0


def test_agrees_with_optax_under_jit():
  labels = np.array([0, 1, 0, 1, 1, 0, 1], np.float32)
  ours = jax.jit(lambda x: losses.focal_loss(x, labels, alpha=0.3, gamma=1.5))
  theirs = optax.sigmoid_focal_loss(
    jnp.asarray(LOGITS), labels, alpha=0.3, gamma=1.5
  )
  np.testing.assert_allclose(ours(jnp.asarray(LOGITS)), theirs, rtol=1e-6)


def test_unknown_loss_name_is_an_error():
  with pytest.raises(ValueError, match='unknown loss'):
    losses.Loss('hinge')


def test_loss_is_hashable_by_value():
  assert hash(losses.Loss('focal', 0.25, 2.0)) == hash(losses.Loss())
