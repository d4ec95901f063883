"""A tiny run for the tests: small data, small network, few epochs.

python -m netclf.main --config configs/test.py --workdir /tmp/netclf_test
"""

from configs import default


def get_config():
  config = default.get_config()
  config.name = 'test'
  config.data.num_train = 1_200
  config.data.num_test = 400
  config.model.widths = (32, 32)
  config.model.dropouts = (0.2, 0.1)
  config.model.input_dropout = 0.2
  config.train.epochs = 4
  config.train.batch_size = 64
  config.train.eval_batch_size = 256
  config.train.warmup_epochs = 1
  config.train.patience = 2
  config.cv.folds = 3
  config.plots = False
  # Both split modes, so the tests cover the attack-grouped folds too.
  config.cv.splits = ('random', 'attack')
  config.final.threshold_from = 'attack_balanced'
  return config
