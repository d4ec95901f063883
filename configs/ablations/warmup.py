"""Ablation: the warm-up phase (input dropout 0.9 for 5 epochs) on or off.

  python -m netclf.main --config configs/ablations/warmup.py:off \
    --workdir runs/ablations/warmup_off
"""

from configs import nsl_kdd


def get_config(arg='on'):
  config = nsl_kdd.get_config()
  config.name = f'warmup_{arg}'
  config.train.warmup_epochs = {'on': 5, 'off': 0}[arg]
  return config
