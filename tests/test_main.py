"""End-to-end runs of the command line in a temporary directory."""

import importlib.util
import json

import numpy as np
import pytest

from netclf import checkpoints
from netclf import pipeline
from netclf import synthetic
from tests import conftest

_run = conftest.run_main


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('run')
  # A cache of its own, not the session's: with JAX's directory empty,
  # netclf chooses, as it does on a user's machine.
  env = {
    'JAX_COMPILATION_CACHE_DIR': '',
    'NETCLF_COMPILATION_CACHE_DIR': str(_cache_dir(workdir)),
  }
  proc = _run(workdir, '--config.plots=True', env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir, proc


def test_report_has_the_documented_fields(finished_run):
  workdir, _ = finished_run
  report = json.loads((workdir / 'report.json').read_text())
  test = report['test']['test']
  for key in ('accuracy', 'roc_auc', 'f1', 'false_alarm_rate'):
    assert 0 <= test[key] <= 1, key
  cm = np.array(test['confusion_matrix'])
  assert cm.shape == (2, 2) and cm.sum() == test['num_rows'] == 400
  assert len(report['cv']['splits']['random']['folds']) == 3
  for fold in report['cv']['splits']['random']['folds']:
    assert 0.5 < fold['roc_auc'] <= 1
    assert 1 <= fold['best_epoch'] <= fold['epochs_run'] <= 4
  assert 0 < report['threshold'] < 1
  assert report['timing']['total_s'] > 0
  assert report['checkpoint']['verified'] is True
  assert report['checkpoint']['max_abs_diff'] <= 1e-6
  assert test['at_0.5']['threshold'] == 0.5


def _cache_dir(workdir):
  return workdir.parent / f'{workdir.name}_compiled'


def test_compiled_programs_are_kept_for_later_runs(finished_run):
  workdir, _ = finished_run
  report = json.loads((workdir / 'report.json').read_text())
  cache = _cache_dir(workdir)
  assert report['compilation_cache'] == str(cache)
  kept = [f.name for f in cache.iterdir()]
  for program in ('warmup_epoch', 'main_epoch'):
    assert any(program in name for name in kept), kept


def test_both_split_modes_are_reported(finished_run):
  workdir, _ = finished_run
  report = json.loads((workdir / 'report.json').read_text())
  splits = report['cv']['splits']
  assert set(splits) == {'random', 'attack'}
  assert splits['attack']['splitter'] == 'GroupKFold by attack name'
  assert len(splits['attack']['folds']) == 3
  # The threshold comes from the attack folds, every attack type weighted
  # equally; the ensemble members are the random folds' models.
  assert report['threshold_from'] == 'attack_balanced'
  assert report['threshold'] == report['thresholds']['attack_balanced']
  assert report['thresholds']['attack'] == splits['attack']['threshold']
  assert report['model_split'] == 'random'
  assert report['ensemble_members'] == 3
  at = report['test']['test']['at_thresholds']
  assert set(at) == {'random', 'attack', 'attack_balanced'}
  assert at['attack_balanced']['accuracy'] == report['test']['test']['accuracy']
  assert at['random']['threshold'] == splits['random']['threshold']
  for split in splits.values():
    assert split['oof']['num_rows'] == 1200


def test_predictions_file_holds_test_and_out_of_fold_scores(finished_run):
  workdir, _ = finished_run
  report = json.loads((workdir / 'report.json').read_text())
  with np.load(workdir / 'predictions.npz') as arrays:
    probs, labels = arrays['test.test.probs'], arrays['test.test.labels']
    oof = {s: arrays[f'oof.{s}.probs'] for s in ('random', 'attack')}
  assert probs.shape == labels.shape == (400,)
  assert int(labels.sum()) == report['test']['test']['at_0.5']['num_attacks']
  for split, scores in oof.items():
    assert scores.shape == (1200,), split
    assert np.all((scores >= 0) & (scores <= 1))


def test_figures_are_drawn_into_the_workdir(finished_run):
  workdir, proc = finished_run
  for name in ('roc_pr_test', 'confusion_test', 'learning_curves'):
    png = workdir / f'{name}.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', name
  assert 'Could not draw' not in proc.stderr


def test_checkpoint_scores_the_test_set_as_reported(finished_run):
  workdir, _ = finished_run
  report = json.loads((workdir / 'report.json').read_text())
  clf, metadata = checkpoints.load(workdir / 'checkpoint')
  assert metadata['config']['name'] == 'test'
  _, test_set = synthetic.make_dataset(1200, 400, seed=0)
  predicted = clf.predict(test_set.features)
  tn_fp_fn_tp = [
    int(((test_set.labels == t) & (predicted == p)).sum())
    for t in (0, 1)
    for p in (0, 1)
  ]
  assert tn_fp_fn_tp == sum(report['test']['test']['confusion_matrix'], [])


def test_metrics_file_has_a_line_per_epoch_and_fold(finished_run):
  workdir, _ = finished_run
  lines = [
    json.loads(line)
    for line in (workdir / 'metrics.jsonl').read_text().splitlines()
  ]
  warm = [r for r in lines if r['phase'] == 'warmup']
  main = [r for r in lines if r['phase'] == 'train']
  assert len(warm) == 6  # one warm-up epoch, three folds of two splits
  assert {(r['split'], r['fold']) for r in main} == {
    (s, f) for s in ('random', 'attack') for f in range(3)
  }
  assert all(np.isfinite(r['val_loss']) for r in main)


def test_log_shows_devices_compilation_and_epochs(finished_run):
  _, proc = finished_run
  for text in ('Devices:', 'Compiling', 'Compilation done', 'train epoch 1'):
    assert text in proc.stderr, text
  assert 'Test set test' in proc.stdout


def test_test_set_is_broken_down_by_attack_type(finished_run):
  workdir, proc = finished_run
  test = json.loads((workdir / 'report.json').read_text())['test']['test']
  rows = test['by_attack_type']
  assert len(rows) >= 2
  assert sum(r['roc_auc_lost'] for r in rows) == pytest.approx(
    1 - test['roc_auc'], abs=1e-9
  )
  # The generated training split has three attack families; the test split
  # adds novel ones.
  seen = {r['attack'] for r in rows if r['seen_in_training']}
  assert seen == {'flood', 'scan', 'bruteforce'}
  assert len(rows) > len(seen)
  assert 'By attack type' in proc.stdout


def test_attack_types_script_rebuilds_the_reported_breakdown(
  finished_run, capsys, tmp_path
):
  workdir, _ = finished_run
  spec = importlib.util.spec_from_file_location(
    'attack_types', conftest.REPO_ROOT / 'experiments' / 'attack_types.py'
  )
  attack_types = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(attack_types)
  rows = pipeline.attack_type_breakdown(workdir)['test']
  report = json.loads((workdir / 'report.json').read_text())
  reported = report['test']['test']['by_attack_type']
  # The saved predictions are float32; the report's came before rounding.
  assert [r['attack'] for r in rows] == [r['attack'] for r in reported]
  for mine, theirs in zip(rows, reported, strict=True):
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
      assert mine[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
  assert attack_types.main([str(workdir), str(workdir)]) == 0
  out = capsys.readouterr().out
  assert out.startswith(
    f'test: ROC AUC {report["test"]["test"]["roc_auc"]:.4f}'
  )
  assert rows[0]['attack'] in out
  (tmp_path / 'report.json').write_text('{}')
  assert attack_types.main([str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and 'not a finished run' in err


def test_types_even_auc_is_reported_and_rebuilt_from_saved_scores(
  finished_run, tmp_path
):
  workdir, proc = finished_run
  report = json.loads((workdir / 'report.json').read_text())
  splits = report['cv']['splits']
  reported = {
    s: part['oof']['roc_auc_types_even'] for s, part in splits.items()
  }
  assert set(reported) == {'random', 'attack'}
  assert all(0.5 < value <= 1 for value in reported.values())
  assert 'every attack type counting alike' in proc.stdout
  rebuilt = pipeline.oof_types_even_roc_auc(workdir)
  assert rebuilt == pytest.approx(reported, abs=1e-6)
  # Scores saved in another order than the folds the config makes.
  copy = tmp_path / 'copy'
  copy.mkdir()
  (copy / 'report.json').write_text(json.dumps(report))
  with np.load(workdir / 'predictions.npz') as saved:
    arrays = dict(saved)
  arrays['oof.attack.labels'] = np.sort(arrays['oof.attack.labels'])
  np.savez(copy / 'predictions.npz', **arrays)
  with pytest.raises(ValueError, match='not of the folds its config makes'):
    pipeline.oof_types_even_roc_auc(copy)


def test_refit_final_model(tmp_path):
  proc = _run(tmp_path, '--config.final.model=refit')
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads((tmp_path / 'report.json').read_text())
  assert report['final_model'] == 'refit'
  clf, _ = checkpoints.load(tmp_path / 'checkpoint')
  assert clf.num_models == 1


def test_misspelt_config_field_fails_clearly(tmp_path):
  proc = _run(tmp_path, '--config.train.epocs=3')
  assert proc.returncode != 0
  assert 'epocs' in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'report.json').exists()


@pytest.mark.parametrize(
  'override,message',
  [
    ('--config.cv.folds=1', 'cv.folds must be at least 2'),
    ('--config.model.input_dropout=-0.1', 'model.input_dropout'),
    ('--config.model.input_dropout=0.001', 'in [1/256, 255/256]'),
    ('--config.model.input_noise=-1', 'model.input_noise must be >= 0'),
    ('--config.final.novelty=-1', 'final.novelty must be >= 0'),
    (
      '--config.final.novelty_rows=10',
      'final.novelty_rows must be at least final.novelty_centroids',
    ),
    ('--config.data.num_train=4', 'too few'),
    ("--config.cv.splits=('random','atack')", 'cv.splits must name'),
    ('--config.final.threshold_from=other', 'final.threshold_from'),
    ('--config.cv.folds=4', '3 attack types are too few for 4 folds'),
  ],
)
def test_impossible_values_exit_with_status_2(tmp_path, override, message):
  proc = _run(tmp_path, override)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert message in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_nsl_kdd_quick_run(tmp_path):
  data_dir = conftest.nsl_kdd_dir()
  proc = _run(
    tmp_path,
    f'--config.data.dir={data_dir}',
    '--config.data.train=KDDTrain+_20Percent.txt',
    '--config.model.widths=(32, 32)',
    '--config.model.dropouts=(0.2, 0.1)',
    '--config.train.epochs=2',
    '--config.train.warmup_epochs=1',
    '--config.cv.folds=3',
    '--config.final.novelty_centroids=32',
    config='configs/nsl_kdd.py',
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads((tmp_path / 'report.json').read_text())
  assert report['novelty'] == {'weight': 1.0, 'centroids': 32}
  assert set(report['test']) == {'KDDTest+', 'KDDTest-21'}
  assert report['data']['train_rows'] == 25_192
  assert report['test']['KDDTest+']['num_rows'] == 22_544
  assert report['test']['KDDTest-21']['num_rows'] == 11_850
  # Even a short run must rank KDDTest+ far better than chance.
  assert report['test']['KDDTest+']['roc_auc'] > 0.85
  assert report['test']['KDDTest+']['unseen_categories']


def test_folds_sharded_over_four_devices_match_one_device(
  finished_run, tmp_path
):
  workdir, _ = finished_run
  proc = _run(
    tmp_path, env={'XLA_FLAGS': '--xla_force_host_platform_device_count=4'}
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Sharding over 4 devices: 4 along folds, 1 along' in proc.stderr
  one = json.loads((workdir / 'report.json').read_text())
  four = json.loads((tmp_path / 'report.json').read_text())
  pairs = [
    (a, b)
    for split in ('random', 'attack')
    for a, b in zip(
      one['cv']['splits'][split]['folds'],
      four['cv']['splits'][split]['folds'],
      strict=True,
    )
  ]
  assert len(pairs) == 6
  for a, b in pairs:
    assert a['best_epoch'] == b['best_epoch']
    np.testing.assert_allclose(
      a['best_val_loss'], b['best_val_loss'], rtol=1e-4
    )
    np.testing.assert_allclose(a['roc_auc'], b['roc_auc'], atol=1e-4)
  np.testing.assert_allclose(
    one['test']['test']['roc_auc'], four['test']['test']['roc_auc'], atol=1e-4
  )


def test_batches_split_over_a_data_axis_match_one_device(
  finished_run, tmp_path
):
  # Three folds on four devices: two along folds, each batch split in two.
  workdir, _ = finished_run
  proc = _run(
    tmp_path,
    "--config.cv.splits=('random',)",
    '--config.final.threshold_from=random',
    env={'XLA_FLAGS': '--xla_force_host_platform_device_count=4'},
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Sharding over 4 devices: 2 along folds, 2 along' in proc.stderr
  one = json.loads((workdir / 'report.json').read_text())
  four = json.loads((tmp_path / 'report.json').read_text())
  # The random folds come first in both runs, so they share keys and rows.
  pairs = zip(
    one['cv']['splits']['random']['folds'],
    four['cv']['splits']['random']['folds'],
    strict=True,
  )
  for a, b in pairs:
    assert a['best_epoch'] == b['best_epoch']
    np.testing.assert_allclose(
      a['best_val_loss'], b['best_val_loss'], rtol=1e-4
    )
    np.testing.assert_allclose(a['roc_auc'], b['roc_auc'], atol=1e-4)
