"""Ablation: loss weights that even out the attack types.

  python -m netclf.main --config configs/ablations/type_balance.py:0 \
    --workdir runs/ablations/type_balance_0

The argument is `train.type_balance` (0.5 in the NSL-KDD config): 0 weighs
every row the same, 1 makes every attack type count as much in the loss,
whatever its row count.
"""

from configs import nsl_kdd


def get_config(arg='0.5'):
  config = nsl_kdd.get_config()
  config.name = f'type_balance_{arg}'
  config.train.type_balance = float(arg)
  return config
