"""Ablation: focal loss against binary cross-entropy on NSL-KDD.

  python -m netclf.main --config configs/ablations/loss.py:bce \
    --workdir runs/ablations/loss_bce
"""

from configs import nsl_kdd


def get_config(arg='focal'):
  config = nsl_kdd.get_config()
  config.name = f'loss_{arg}'
  config.loss.name = {'focal': 'focal', 'bce': 'bce'}[arg]
  return config
