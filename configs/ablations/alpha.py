"""Ablation: the focal weight of attacks, 0.25, 0.5, 0.75 or none.

  python -m netclf.main --config configs/ablations/alpha.py:0.75 \
    --workdir runs/ablations/alpha_0.75
"""

from configs import nsl_kdd


def get_config(arg='0.25'):
  config = nsl_kdd.get_config()
  config.name = f'alpha_{arg}'
  config.loss.alpha = None if arg == 'none' else float(arg)
  return config
