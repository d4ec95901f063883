"""Ablation: batch normalisation on or off.

  python -m netclf.main --config configs/ablations/batch_norm.py:off \
    --workdir runs/ablations/batch_norm_off
"""

from configs import nsl_kdd


def get_config(arg='on'):
  config = nsl_kdd.get_config()
  config.name = f'batch_norm_{arg}'
  config.model.batch_norm = {'on': True, 'off': False}[arg]
  return config
