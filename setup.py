"""Installs netclf, a JAX/Flax toolkit for network-traffic classifiers."""

import setuptools

setuptools.setup(
  name='netclf',
  version='0.1.0',
  description='Robust binary classifiers for network traffic in JAX/Flax.',
  packages=setuptools.find_packages(include=['netclf', 'netclf.*']),
  python_requires='>=3.10',
  install_requires=[
    'absl-py>=2.0',
    'flax>=0.10',
    'jax>=0.5',
    'matplotlib>=3.8',
    'ml-collections>=0.1.1',
    'numpy>=1.26',
    'optax>=0.2.4',
    'orbax-checkpoint>=0.11',
    'pandas>=2.1',
    'scikit-learn>=1.4',
    'tqdm>=4.66',
  ],
  extras_require={
    'test': ['pytest>=8', 'pytest-xdist>=3.5', 'ruff>=0.6'],
  },
)
