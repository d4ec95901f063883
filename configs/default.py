"""Default netclf run: the generated flow data set, 5 folds, vmapped.

Runs anywhere with no data at hand, in about two minutes on a 2-core CPU:

  python -m netclf.main --config configs/default.py --workdir runs/default
"""

import ml_collections
from ml_collections import config_dict


def get_config():
  """Returns the default configuration."""
  config = ml_collections.ConfigDict()
  config.name = 'default'
  config.seed = 0

  # Resuming: the training state is saved every `checkpoint_every` epochs
  # (0: never) and a rerun in the same workdir continues from the last save.
  # A finished workdir is not retrained unless `retrain` is True.
  config.checkpoint_every = 5
  config.keep_checkpoints = 2
  config.retrain = False
  # PNG figures (ROC and PR curves, learning curves, confusion matrices).
  config.plots = True
  # Set on every host of a multi-host run (e.g. a TPU pod slice).
  config.distributed = False

  # Data. `format` picks the reader; the generated set needs no files.
  config.data = ml_collections.ConfigDict()
  config.data.format = 'synthetic'
  config.data.dir = ''
  config.data.train = ''
  config.data.test = ('test',)
  config.data.num_train = 20_000
  config.data.num_test = 5_000
  config.data.seed = 0

  # Preprocessing, fitted on training rows only. `log1p` is 'auto', 'none'
  # or a tuple of column names.
  config.preprocess = ml_collections.ConfigDict()
  config.preprocess.log1p = 'auto'

  # Model: a residual MLP with falling dropout.
  config.model = ml_collections.ConfigDict()
  config.model.widths = (256, 256, 128)
  config.model.dropouts = (0.4, 0.3, 0.2)
  config.model.input_dropout = 0.7
  # Gaussian noise on every model input in training (0: none): standardised
  # numeric columns and one-hot categories alike.
  config.model.input_noise = 0.0
  config.model.residual = True
  config.model.batch_norm = True
  config.model.dtype = 'float32'

  # Loss: 'focal' or 'bce'. `alpha` weights attacks (None: no weighting).
  config.loss = ml_collections.ConfigDict()
  config.loss.name = 'focal'
  config.loss.alpha = config_dict.placeholder(float)
  config.loss.alpha = 0.25
  config.loss.gamma = 2.0

  # Optimizer: 'adam' or 'adamw'; schedule 'constant' or 'cosine'.
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.0
  config.optimizer.schedule = 'constant'

  # Training: a warm-up with heavy input dropout, then early stopping.
  config.train = ml_collections.ConfigDict()
  config.train.epochs = 40
  config.train.batch_size = 256
  config.train.eval_batch_size = 4096
  config.train.warmup_epochs = 5
  config.train.warmup_input_dropout = 0.9
  config.train.patience = 5
  config.train.min_delta = 1e-5
  # Loss weights by attack type (the label text: with a 0/1 label column
  # there is one type and they change nothing): a type with n rows weighs
  # n ** -type_balance a row, the attacks' total kept. 0: every row weighs
  # the same; 1: every attack type counts the same.
  config.train.type_balance = 0.0

  # Cross-validation: `mode` 'vmap' trains all folds in one program,
  # 'sequential' runs the same single-fold program fold by fold. Each split
  # mode in `splits` adds `folds` folds: 'random' (KFold, or StratifiedKFold
  # if `stratified`) and 'attack' (whole attack types held out per fold).
  config.cv = ml_collections.ConfigDict()
  config.cv.splits = ('random',)
  config.cv.folds = 5
  config.cv.stratified = False
  config.cv.seed = 42
  config.cv.mode = 'vmap'
  # Vmapped folds that have stopped still cost their share of each epoch:
  # 'auto' recompiles the epoch without them when that saves time.
  config.cv.shrink = 'auto'

  # Final model: 'ensemble' of the fold models of `model_split` (a split
  # mode, or 'all') or 'refit' on all rows for those folds' median best
  # epoch. Threshold: 'max_f1' on the out-of-fold predictions of
  # `threshold_from` (a split mode, or 'attack_balanced': the attack folds
  # with every attack type weighted equally), or 'fixed' at
  # `fixed_threshold`.
  config.final = ml_collections.ConfigDict()
  config.final.model = 'ensemble'
  config.final.model_split = 'random'
  config.final.threshold_from = 'random'
  config.final.threshold = 'max_f1'
  config.final.fixed_threshold = 0.5
  # Novelty: each model adds `novelty` times how far a row lies from its
  # normal training rows (in spreads of their own log distances to the
  # nearest of `novelty_centroids` k-means centroids, placed on at most
  # `novelty_rows` rows) to its logit. 0: off.
  config.final.novelty = 0.0
  config.final.novelty_centroids = 256
  config.final.novelty_rows = 50_000
  return config
