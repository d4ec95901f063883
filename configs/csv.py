"""Any CSV of flow records with a header and a label column.

  python -m netclf.main --config configs/csv.py --workdir runs/mine \
    --config.data.label_column=label --config.data.benign_labels="('0',)"

By default the files are data/network/train.csv and data/network/test.csv
under the repository root. Give either `benign_labels` (every other value
is an attack) or `attack_labels` (every other value is normal).
"""

from ml_collections import config_dict

from configs import default


def get_config():
  config = default.get_config()
  config.name = 'csv'
  config.data.format = 'csv'
  config.data.dir = 'data/network'
  config.data.train = 'train.csv'
  config.data.test = ('test.csv',)
  config.data.label_column = 'label'
  config.data.benign_labels = ('0', 'normal', 'BENIGN')
  config.data.attack_labels = ()
  # None detects them: columns that are not numeric are categorical.
  config.data.categorical_columns = config_dict.placeholder(tuple)
  config.data.drop_columns = ()
  return config
