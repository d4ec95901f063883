"""XLA settings that speed up netclf on the CPU, applied before JAX starts.

XLA reads `XLA_FLAGS` once, when the first backend is created, and aborts
the process on a flag it does not know. So `configure` adds a flag only for
the jaxlib releases it was checked against, and it must run before the
first JAX computation (importing `jax` alone does not create a backend).
Set `NETCLF_XLA_DEFAULTS=0` to leave `XLA_FLAGS` untouched.
"""

import os
from importlib import metadata

# Keeps single matmuls out of YNNPACK library fusions, so that XLA's default
# CPU matmul runs them: faster for the small batched matmuls of a train step
# and for the forward pass of scoring.
CPU_FLAGS = (
  '--xla_cpu_experimental_ynn_fusion_type=-LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT',
)
# jaxlib release series in which every flag above exists.
CHECKED_JAXLIB = ('0.10.',)


def _jaxlib_version():
  try:
    return metadata.version('jaxlib')
  except metadata.PackageNotFoundError:
    return ''


def configure(environ=None):
  """Appends `CPU_FLAGS` to `XLA_FLAGS` where that is known to be safe.

  Args:
    environ: the environment to change, `os.environ` by default.

  Returns:
    The flags added, an empty tuple when nothing was changed.
  """
  environ = os.environ if environ is None else environ
  if environ.get('NETCLF_XLA_DEFAULTS', '1') == '0':
    return ()
  if not _jaxlib_version().startswith(CHECKED_JAXLIB):
    return ()
  present = environ.get('XLA_FLAGS', '').split()
  names = {flag.split('=', 1)[0] for flag in present}
  added = tuple(f for f in CPU_FLAGS if f.split('=', 1)[0] not in names)
  if added:
    environ['XLA_FLAGS'] = ' '.join([*present, *added])
  return added
