"""Ablation: log1p on counts and sizes on or off.

  python -m netclf.main --config configs/ablations/log1p.py:off \
    --workdir runs/ablations/log1p_off
"""

from configs import nsl_kdd


def get_config(arg='on'):
  config = nsl_kdd.get_config()
  config.name = f'log1p_{arg}'
  config.preprocess.log1p = {'on': 'auto', 'off': 'none'}[arg]
  return config
