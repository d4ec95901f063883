"""What the command-line entry points share: quiet logs, one-line errors."""

import sys

from absl import logging


class _QuietLibraries:
  """Drops INFO records of libraries that log every file they touch."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or '/orbax/' not in (
      record.pathname
    )


def _drop_closed_loop_errors(unraisable):
  """Hides the echoes of a failed checkpoint read; passes on the rest.

  When one read of a damaged checkpoint fails, orbax closes its event loop
  while tensorstore is still finishing the other reads, whose callbacks
  then raise 'Event loop is closed' from a background thread. The real
  error has been reported by then.
  """
  exc = unraisable.exc_value
  if isinstance(exc, RuntimeError) and str(exc) == 'Event loop is closed':
    return
  sys.__unraisablehook__(unraisable)


def setup_logging():
  """INFO logs from netclf, without the per-file chatter of orbax."""
  sys.unraisablehook = _drop_closed_loop_errors
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_QuietLibraries())


def fail(message):
  """Prints `netclf: error: <message>` on one line and exits with 2."""
  message = ' '.join(str(message).split())
  print(f'netclf: error: {message}', file=sys.stderr)
  sys.exit(2)
