"""Resuming after a kill, refusing to redo finished runs, determinism."""

import json
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import test as test_config
from netclf import checkpoints
from netclf import pipeline
from tests import conftest
from tests import test_cross_validation as cv_test

LONG = (
  '--config.train.epochs=8',
  '--config.train.patience=8',
  '--config.checkpoint_every=1',
)


def _command(workdir, *overrides):
  return [
    sys.executable,
    '-m',
    'netclf.main',
    '--config=configs/test.py',
    f'--workdir={workdir}',
    *LONG,
    *overrides,
  ]


def _run(workdir, *overrides):
  proc = subprocess.run(
    _command(workdir, *overrides),
    cwd=conftest.REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _saved_steps(workdir):
  directory = workdir / 'train_state' / 'cv'
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def _headline(report):
  return {
    'folds': [
      (f['best_epoch'], f['best_val_loss'])
      for split in report['cv']['splits'].values()
      for f in split['folds']
    ],
    'threshold': report['threshold'],
    'test': {
      k: report['test']['test'][k]
      for k in (
        'accuracy',
        'roc_auc',
        'f1',
        'false_alarm_rate',
        'confusion_matrix',
      )
    },
  }


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('whole')
  _run(workdir)
  return json.loads((workdir / 'report.json').read_text())


def test_a_killed_run_resumes_to_the_same_report(tmp_path, uninterrupted):
  proc = subprocess.Popen(
    _command(tmp_path),
    cwd=conftest.REPO_ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.time() + 300
  # Kill in the main phase: after the warm-up epoch and three more.
  while time.time() < deadline and max(_saved_steps(tmp_path), default=0) < 4:
    if proc.poll() is not None:
      pytest.fail('the run finished before it could be killed')
    time.sleep(0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (tmp_path / 'report.json').exists()
  killed_at = max(_saved_steps(tmp_path))
  assert 4 <= killed_at < 9
  resumed = _run(tmp_path)
  assert 'Resuming from the saved training state' in resumed.stderr
  report = json.loads((tmp_path / 'report.json').read_text())
  assert _headline(report) == _headline(uninterrupted)
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
  keys = [
    (r['phase'], r['epoch'], r['split'], r['fold'])
    for r in map(json.loads, lines)
  ]
  assert len(keys) == len(set(keys))


def test_same_config_same_report_and_finished_runs_are_kept(
  tmp_path, uninterrupted
):
  _run(tmp_path)
  report = tmp_path / 'report.json'
  assert _headline(json.loads(report.read_text())) == _headline(uninterrupted)
  stamp = report.stat().st_mtime_ns

  proc = _run(tmp_path)
  assert 'already holds a finished run' in proc.stderr
  assert report.stat().st_mtime_ns == stamp

  proc = subprocess.run(
    _command(tmp_path, '--config.seed=1'),
    cwd=conftest.REPO_ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 2
  assert 'other settings' in proc.stderr

  proc = _run(tmp_path, '--config.retrain=True')
  assert 'already holds' not in proc.stderr
  assert report.stat().st_mtime_ns != stamp
  assert _headline(json.loads(report.read_text())) == _headline(uninterrupted)


class _Interrupt(Exception):
  pass


def _interrupt_and_resume(tmp_path, data, plan, stop_at, **kwargs):
  """Stops the fold runner at its `stop_at`-th epoch, then runs it again."""
  saver = checkpoints.TrainingCheckpoints(
    tmp_path, every=2, keep=2, fingerprint='x'
  )
  calls = []

  def stop_midway(phase, epoch, *args):
    calls.append((phase, epoch))
    if len(calls) == stop_at:
      raise _Interrupt

  def train(**more):
    return cv_test.cv.train_folds(
      cv_test.MODEL,
      cv_test.optax.adam(3e-3),
      cv_test.losses.Loss(),
      data,
      plan,
      jax.random.key(0),
      cv_test.SETTINGS,
      checkpointer=saver,
      **kwargs,
      **more,
    )

  with pytest.raises(_Interrupt):
    train(on_epoch=stop_midway)
  return train()


def _assert_resumed_as_whole(resumed, whole):
  np.testing.assert_array_equal(resumed.best_epoch, whole.best_epoch)
  np.testing.assert_array_equal(resumed.epochs_run, whole.epochs_run)
  np.testing.assert_allclose(resumed.best_val_loss, whole.best_val_loss)
  for a, b in zip(resumed.oof_probs, whole.oof_probs, strict=True):
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize('mode', ['vmap', 'sequential'])
def test_fold_runner_resumes_in_either_mode(tmp_path, mode):
  data, plan, _ = cv_test._problem()
  whole = cv_test._run(mode, data, plan)
  # Stop in the fourth epoch (after a save) of the last group of folds:
  # the only group when vmapped, the second fold when sequential.
  stop_at = 4 if mode == 'vmap' else 1 + int(whole.epochs_run[0]) + 4
  resumed = _interrupt_and_resume(tmp_path, data, plan, stop_at, mode=mode)
  _assert_resumed_as_whole(resumed, whole)


def test_damaged_training_state_is_a_checkpoint_error(tmp_path):
  saver = checkpoints.TrainingCheckpoints(
    tmp_path, every=1, keep=1, fingerprint='x'
  )
  tree = {'w': np.arange(6.0).reshape(2, 3)}
  saver.save(3, tree, {'group': 0})
  _, again = saver.restore(lambda meta: tree)
  np.testing.assert_array_equal(again['w'], tree['w'])
  for f in (tmp_path / '3' / 'state').rglob('*'):
    if f.is_file():
      f.write_bytes(b'garbage')
  with pytest.raises(checkpoints.CheckpointError, match='unreadable'):
    saver.restore(lambda meta: tree)
  other = checkpoints.TrainingCheckpoints(
    tmp_path, every=1, keep=1, fingerprint='y'
  )
  with pytest.raises(checkpoints.CheckpointError, match='other settings'):
    other.restore(lambda meta: tree)


def test_training_state_under_an_accepted_older_digest_restores(tmp_path):
  tree = {'w': np.arange(4.0)}
  checkpoints.TrainingCheckpoints(
    tmp_path, every=1, keep=1, fingerprint='old'
  ).save(2, tree, {'group': 0})
  newer = checkpoints.TrainingCheckpoints(
    tmp_path, every=1, keep=1, fingerprint='new', accepted=('old',)
  )
  meta, again = newer.restore(lambda meta: tree)
  assert meta['group'] == 0
  np.testing.assert_array_equal(again['w'], tree['w'])


def _without(config, path):
  """`config` as a version from before the field at `path` would hold it."""
  older = config.copy_and_resolve_references()
  group, name = path.split('.')
  del older[group][name]
  return older


@pytest.mark.parametrize('path', sorted(pipeline.ADDED_FIELDS))
def test_a_field_added_at_its_neutral_value_keeps_the_digest(path):
  config = test_config.get_config()
  group, name = path.split('.')
  assert config[group][name] == pipeline.ADDED_FIELDS[path]
  assert pipeline.fingerprint(config) == pipeline.fingerprint(
    _without(config, path)
  )
  with config.unlocked():
    # Another value of the field's own type.
    config[group][name] = pipeline.ADDED_FIELDS[path] + 1
  assert pipeline.fingerprint(config) != pipeline.fingerprint(
    _without(config, path)
  )


def test_a_finished_run_under_the_whole_config_digest_is_kept(tmp_path):
  config = test_config.get_config()
  whole = pipeline.accepted_fingerprints(config)[1]
  assert whole != pipeline.fingerprint(config)
  (tmp_path / 'report.json').write_text(json.dumps({'fingerprint': whole}))
  assert pipeline.finished_report(config, tmp_path) == {'fingerprint': whole}
  config.seed += 1
  with pytest.raises(pipeline.ConfigError, match='other settings'):
    pipeline.finished_report(config, tmp_path)


def test_a_run_resumes_after_stopped_folds_were_dropped(tmp_path):
  data, plan, _ = cv_test._problem()
  whole = cv_test._run('vmap', data, plan, shrink='always')
  # After the second fold stops, the last trains alone. Stop it in its
  # final epoch: the run resumes from a save made after the drop.
  ends = np.sort(whole.epochs_run)
  saves = [e for e in range(ends[-2] + 1, ends[-1]) if e % 2 == 0]
  assert saves, f'no save between the last two stops {ends[-2:]}'
  stop_at = cv_test.SETTINGS.warmup_epochs + int(ends[-1])
  resumed = _interrupt_and_resume(
    tmp_path, data, plan, stop_at, shrink='always'
  )
  _assert_resumed_as_whole(resumed, whole)
