"""Ablation: skip connections on or off.

  python -m netclf.main --config configs/ablations/residual.py:off \
    --workdir runs/ablations/residual_off
"""

from configs import nsl_kdd


def get_config(arg='on'):
  config = nsl_kdd.get_config()
  config.name = f'residual_{arg}'
  config.model.residual = {'on': True, 'off': False}[arg]
  return config
