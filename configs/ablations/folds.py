"""Ablation: KFold against StratifiedKFold.

  python -m netclf.main --config configs/ablations/folds.py:stratified \
    --workdir runs/ablations/folds_stratified
"""

from configs import nsl_kdd


def get_config(arg='kfold'):
  config = nsl_kdd.get_config()
  config.name = f'folds_{arg}'
  config.cv.stratified = {'kfold': False, 'stratified': True}[arg]
  return config
