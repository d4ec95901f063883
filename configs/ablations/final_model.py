"""Ablation: the fold ensemble against a refit on all training rows.

  python -m netclf.main --config configs/ablations/final_model.py:refit \
    --workdir runs/ablations/final_refit
"""

from configs import nsl_kdd


def get_config(arg='ensemble'):
  config = nsl_kdd.get_config()
  config.name = f'final_{arg}'
  config.final.model = {'ensemble': 'ensemble', 'refit': 'refit'}[arg]
  return config
