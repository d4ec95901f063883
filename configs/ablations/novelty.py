"""Ablation: novelty, how far a row lies from normal training traffic, added
to each model's logit with the given weight (0, off, in the NSL-KDD config).

  python -m netclf.main --config configs/ablations/novelty.py:1 \
    --workdir runs/ablations/novelty_1
"""

from configs import nsl_kdd


def get_config(arg='0'):
  config = nsl_kdd.get_config()
  config.name = f'novelty_{arg}'
  config.final.novelty = float(arg)
  return config
