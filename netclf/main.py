"""Command line: `python -m netclf.main --config configs/default.py`.

Flags:
  --config: a config file; fields can be overridden as --config.x.y=value.
  --workdir: where metrics, the checkpoint and report.json go.
"""

import jax
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from netclf import checkpoints
from netclf import cli
from netclf import compile_cache
from netclf import cross_validation
from netclf import pipeline
from netclf import readers
from netclf import xla_flags

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', 'runs/default', 'Directory for the outputs.')
config_flags.DEFINE_config_file(
  'config', None, 'Config file.', lock_config=True
)
flags.mark_flags_as_required(['config'])

# Errors that come from what the user gave: one line and exit status 2.
USER_ERRORS = (
  readers.DataError,
  pipeline.ConfigError,
  checkpoints.CheckpointError,
  cross_validation.TrainingError,
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.setup_logging()
  compile_cache.configure()
  if FLAGS.config.distributed:
    # Every host runs this same command; JAX finds its peers from the
    # cluster environment (TPU pods, SLURM, or the JAX_COORDINATOR_* vars).
    jax.distributed.initialize()
  try:
    pipeline.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except USER_ERRORS as e:
    logging.error('%s', e)
    cli.fail(e)


def parse_flags(argv):
  """Parses flags; a bad config file or field is one line and status 2."""
  try:
    argv = FLAGS(argv)
    FLAGS.config.keys()  # Loads the config file, so a bad one fails here.
    return argv
  except OSError as e:
    # The loader's last line holds the reason, e.g. "No such file ...".
    message = str(e).strip().splitlines()[-1]
  except flags.Error as e:
    message = str(e)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    message = str(e.args[0] if e.args else e)
  message = message.replace('\\n', ' ').replace("\\'", "'")
  message = ' '.join(message.split())
  if len(message) > 1 and message[0] == message[-1] == "'":
    message = message[1:-1]  # KeyError quotes its whole message.
  cli.fail(message[:300])


if __name__ == '__main__':
  xla_flags.configure()  # Before the first computation creates a backend.
  app.run(main, flags_parser=parse_flags)
