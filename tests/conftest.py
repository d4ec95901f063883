"""Shared test helpers."""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

from netclf import xla_flags

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# Many tests run the same small programs, often in subprocesses: a
# compilation cache shared by the whole session compiles each only once.
os.environ.setdefault(
  'JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='netclf-xla-cache-')
)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
# The tests run the programs the command line runs, with its XLA flags.
xla_flags.configure()


def nsl_kdd_dir():
  """The NSL-KDD directory; in CI a missing one fails instead of skipping."""
  path = pathlib.Path(
    os.environ.get(
      'NETCLF_NSL_KDD_DIR', REPO_ROOT.parent / 'shared' / 'data' / 'nsl-kdd'
    )
  )
  if not (path / 'KDDTrain+.txt').is_file():
    message = f'NSL-KDD files not found in {path}'
    if os.environ.get('CI') == 'true':
      pytest.fail(message)
    pytest.skip(message)
  return path


def run_main(workdir, *overrides, config='configs/test.py', env=None):
  """Runs `python -m netclf.main` on the CPU; returns the finished process."""
  env = dict(os.environ, JAX_PLATFORMS='cpu', **(env or {}))
  return subprocess.run(
    [
      sys.executable,
      '-m',
      'netclf.main',
      f'--config={config}',
      f'--workdir={workdir}',
      *overrides,
    ],
    cwd=REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=600,
    env=env,
  )
