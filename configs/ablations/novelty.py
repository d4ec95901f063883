"""Ablation: novelty, how far a row lies from normal training traffic, added
to each model's logit with the given weight (1 in the NSL-KDD config; 0:
none).

  python -m netclf.main --config configs/ablations/novelty.py:0 \
    --workdir runs/ablations/novelty_0
"""

from configs import nsl_kdd


def get_config(arg='1'):
  config = nsl_kdd.get_config()
  config.name = f'novelty_{arg}'
  config.final.novelty = float(arg)
  return config
