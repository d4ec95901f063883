"""Ablation: the focal exponent gamma, 0, 1, 2 or 5.

  python -m netclf.main --config configs/ablations/gamma.py:5 \
    --workdir runs/ablations/gamma_5
"""

from configs import nsl_kdd


def get_config(arg='2'):
  config = nsl_kdd.get_config()
  config.name = f'gamma_{arg}'
  config.loss.gamma = float(arg)
  return config
