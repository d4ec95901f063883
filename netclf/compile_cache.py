"""A cache of compiled programs on disk, shared by every netclf run.

Compiling the training and scoring programs takes a fifth of a run on the
NSL-KDD files and most of a small one. JAX's persistent compilation cache
keeps each compiled program on disk, keyed by the program, its compile
options and XLA flags, the jaxlib version and the device, so that a run
whose programs were compiled before (another seed, a rerun, a resumed run)
loads them instead; a changed model or batch size compiles anew.

The cache lives in `$XDG_CACHE_HOME/netclf/jax` (by default
`~/.cache/netclf/jax`). `NETCLF_COMPILATION_CACHE_DIR` names another
directory, or, set empty, turns the cache off; a directory given to JAX
itself (`JAX_COMPILATION_CACHE_DIR`) is used as it is. Deleting the
directory clears it.
"""

import os

import jax
from absl import logging


def default_dir(environ):
  base = environ.get('XDG_CACHE_HOME') or os.path.join(
    os.path.expanduser('~'), '.cache'
  )
  return os.path.join(base, 'netclf', 'jax')


def configure(environ=None):
  """Turns the cache on; call it before the first program compiles.

  Args:
    environ: the environment to read, `os.environ` by default.

  Returns:
    The cache directory, or None when the cache is off.
  """
  environ = os.environ if environ is None else environ
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  path = environ.get('NETCLF_COMPILATION_CACHE_DIR', default_dir(environ))
  if not path:
    return None
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    # A run does not need the cache: it compiles as it would without one.
    logging.warning('compilation cache off: cannot create %s: %s', path, e)
    return None
  # Only programs that took a second or more to compile are kept (JAX's
  # default): the epochs and the scorers, not each small array operation.
  jax.config.update('jax_compilation_cache_dir', path)
  return path
