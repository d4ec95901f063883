"""CIC-IDS2017 (MachineLearningCVE CSVs): train on one day, test on others.

  python -m netclf.main --config configs/cic_ids2017.py \
    --config.data.dir=/path/to/MachineLearningCVE --workdir runs/cic

`data.dir` defaults to the NETCLF_CIC_IDS2017_DIR environment variable.
"""

import os

from configs import default


def get_config():
  config = default.get_config()
  config.name = 'cic_ids2017'
  config.data.format = 'cic_ids2017'
  config.data.dir = os.environ.get('NETCLF_CIC_IDS2017_DIR', 'data/cic-ids2017')
  config.data.train = 'Wednesday-workingHours.pcap_ISCX.csv'
  config.data.test = (
    'Tuesday-WorkingHours.pcap_ISCX.csv',
    'Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv',
  )
  return config
