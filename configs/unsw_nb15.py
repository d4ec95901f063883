"""UNSW-NB15 from its official training and testing CSVs.

  python -m netclf.main --config configs/unsw_nb15.py \
    --config.data.dir=/path/to/unsw-nb15 --workdir runs/unsw_nb15

`data.dir` defaults to the NETCLF_UNSW_NB15_DIR environment variable.
"""

import os

from configs import default


def get_config():
  config = default.get_config()
  config.name = 'unsw_nb15'
  config.data.format = 'unsw_nb15'
  config.data.dir = os.environ.get('NETCLF_UNSW_NB15_DIR', 'data/unsw-nb15')
  config.data.train = 'UNSW_NB15_training-set.csv'
  config.data.test = ('UNSW_NB15_testing-set.csv',)
  return config
