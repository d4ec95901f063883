"""Where compiled programs are kept, as the environment says."""

import json
import os
import subprocess
import sys

from tests import conftest

# Each case runs in a fresh process, as the setting is the process's own.
_CASE = """
import json, sys
import jax
from netclf import compile_cache
path = compile_cache.configure(json.loads(sys.argv[1]))
print(json.dumps([path, jax.config.jax_compilation_cache_dir]))
"""


def _configure(environ, jax_dir=''):
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_COMPILATION_CACHE_DIR=jax_dir)
  proc = subprocess.run(
    [sys.executable, '-c', _CASE, json.dumps(environ)],
    cwd=conftest.REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=120,
    env=env,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_the_cache_goes_under_the_user_cache_directory(tmp_path):
  (path, in_jax), _ = _configure({'XDG_CACHE_HOME': str(tmp_path)})
  assert path == in_jax == str(tmp_path / 'netclf' / 'jax')
  assert (tmp_path / 'netclf' / 'jax').is_dir()


def test_the_cache_directory_can_be_named_or_turned_off(tmp_path):
  named = tmp_path / 'compiled'
  (path, in_jax), _ = _configure({'NETCLF_COMPILATION_CACHE_DIR': str(named)})
  assert path == in_jax == str(named) and named.is_dir()
  (path, in_jax), _ = _configure({'NETCLF_COMPILATION_CACHE_DIR': ''})
  assert path is None and not in_jax


def test_a_directory_given_to_jax_is_kept(tmp_path):
  given = str(tmp_path / 'jax_own')
  environ = {'NETCLF_COMPILATION_CACHE_DIR': str(tmp_path / 'ours')}
  (path, in_jax), _ = _configure(environ, jax_dir=given)
  assert path == in_jax == given
  assert not (tmp_path / 'ours').exists()


def test_an_unusable_directory_leaves_the_cache_off(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  environ = {'NETCLF_COMPILATION_CACHE_DIR': str(blocker / 'jax')}
  (path, in_jax), stderr = _configure(environ)
  assert path is None and not in_jax
  assert 'compilation cache off' in stderr
