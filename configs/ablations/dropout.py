"""Ablation: falling dropout (0.7 -> 0.4 -> 0.3 -> 0.2), flat 0.2, or none.

  python -m netclf.main --config configs/ablations/dropout.py:flat \
    --workdir runs/ablations/dropout_flat
"""

from configs import nsl_kdd

# (input dropout, dropout after each block)
SCHEDULES = {
  'falling': (0.7, (0.4, 0.3, 0.2)),
  'flat': (0.2, (0.2, 0.2, 0.2)),
  'none': (0.0, (0.0, 0.0, 0.0)),
}


def get_config(arg='falling'):
  config = nsl_kdd.get_config()
  config.name = f'dropout_{arg}'
  config.model.input_dropout, config.model.dropouts = SCHEDULES[arg]
  return config
