"""Ablation: the fold ensemble against a refit on all training rows.

  python -m netclf.main --config configs/ablations/final_model.py:refit \
    --workdir runs/ablations/final_refit

`all` keeps the ensemble but takes the models of every split mode's folds
(ten on NSL-KDD) instead of the random folds' five.
"""

from configs import nsl_kdd


def get_config(arg='ensemble'):
  config = nsl_kdd.get_config()
  config.name = f'final_{arg}'
  if arg == 'all':
    config.final.model_split = 'all'
  else:
    config.final.model = {'ensemble': 'ensemble', 'refit': 'refit'}[arg]
  return config
