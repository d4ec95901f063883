"""Ablation: Gaussian noise on the model inputs in training.

The inputs are standardised numeric columns and one-hot categories; the
noise falls on both.

  python -m netclf.main --config configs/ablations/input_noise.py:0.1 \
    --workdir runs/ablations/input_noise_0.1
"""

from configs import nsl_kdd


def get_config(arg='0'):
  config = nsl_kdd.get_config()
  config.name = f'input_noise_{arg}'
  config.model.input_noise = float(arg)
  return config
