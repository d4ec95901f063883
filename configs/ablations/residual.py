"""Ablation: skip connections on or off (off in the NSL-KDD config).

  python -m netclf.main --config configs/ablations/residual.py:on \
    --workdir runs/ablations/residual_on
"""

from configs import nsl_kdd


def get_config(arg='off'):
  config = nsl_kdd.get_config()
  config.name = f'residual_{arg}'
  config.model.residual = {'on': True, 'off': False}[arg]
  return config
