"""Every config loads, and each ablation changes only what it ablates."""

import importlib

import pytest

from configs import default
from configs import nsl_kdd

ABLATIONS = {
  'loss': {'bce': {'loss.name': 'bce'}},
  'alpha': {
    '0.5': {'loss.alpha': 0.5},
    '0.75': {'loss.alpha': 0.75},
    'none': {'loss.alpha': None},
  },
  'gamma': {
    '0': {'loss.gamma': 0.0},
    '1': {'loss.gamma': 1.0},
    '5': {'loss.gamma': 5.0},
  },
  'warmup': {'off': {'train.warmup_epochs': 0}},
  'residual': {'on': {'model.residual': True}},
  'batch_norm': {'off': {'model.batch_norm': False}},
  'dropout': {
    'flat': {'model.input_dropout': 0.2, 'model.dropouts': (0.2, 0.2, 0.2)},
    'none': {'model.input_dropout': 0.0, 'model.dropouts': (0.0, 0.0, 0.0)},
  },
  'final_model': {
    'refit': {'final.model': 'refit'},
    'all': {'final.model_split': 'all'},
  },
  'log1p': {'off': {'preprocess.log1p': 'none'}},
  'folds': {'stratified': {'cv.stratified': True}},
  'input_noise': {
    '0.1': {'model.input_noise': 0.1},
    '0.3': {'model.input_noise': 0.3},
  },
  'type_balance': {
    '0': {'train.type_balance': 0.0},
    '1': {'train.type_balance': 1.0},
  },
  'novelty': {'0': {'final.novelty': 0.0}},
}


def _flat(config, prefix=''):
  out = {}
  for key, value in config.items():
    if hasattr(value, 'items'):
      out.update(_flat(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


@pytest.mark.parametrize(
  'module,arg,changes',
  [(m, a, c) for m, args in ABLATIONS.items() for a, c in args.items()],
)
def test_ablation_changes_only_its_fields(module, arg, changes):
  get_config = importlib.import_module(f'configs.ablations.{module}').get_config
  base = _flat(nsl_kdd.get_config())
  varied = _flat(get_config(arg))
  differ = {k for k in base if base[k] != varied[k]} - {'name'}
  assert differ == set(changes)
  for key, value in changes.items():
    assert varied[key] == value
  # The default argument is the NSL-KDD config itself.
  assert _flat(get_config()).items() - base.items() <= {
    ('name', get_config().name)
  }


@pytest.mark.parametrize(
  'name', ['default', 'nsl_kdd', 'unsw_nb15', 'cic_ids2017', 'csv', 'test']
)
def test_configs_load_and_pass_validation(name):
  from netclf import pipeline

  config = importlib.import_module(f'configs.{name}').get_config()
  pipeline.validate_config(config)
  assert set(_flat(default.get_config())) <= set(_flat(config))
