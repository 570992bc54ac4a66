"""gs:// run directories against a real GCS JSON API (a local emulator; no client is mocked).

The `gcs` fixture (conftest) starts gcp-storage-emulator on 127.0.0.1 and points
gcsfs (etils.epath's gs:// backend) and TensorStore (Orbax's arrays) at it.
"""
import base64
import hashlib
import json
import random
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bluediff import storage
from bluediff.checkpoint import Checkpointer, abstract_like


def _local_sharding():
  return jax.sharding.SingleDeviceSharding(jax.devices()[0])


def test_orbax_round_trips_through_the_emulator(gcs):
  """The foundation: Orbax (TensorStore for the arrays, epath for its metadata) saves
  and restores a pytree on gs://, and the objects are really in the bucket."""
  import orbax.checkpoint as ocp
  root = gcs.path("orbax")
  tree = {"w": jnp.arange(12.0).reshape(3, 4), "b": jnp.full((5,), 7, jnp.int32)}
  with ocp.CheckpointManager(storage.run_path(root)) as mngr:
    mngr.save(1, args=ocp.args.StandardSave(tree))
    mngr.wait_until_finished()
    back = mngr.restore(1, args=ocp.args.StandardRestore(abstract_like(tree, _local_sharding())))
  np.testing.assert_array_equal(back["w"], tree["w"])
  np.testing.assert_array_equal(back["b"], tree["b"])
  assert any(k.startswith("1/") for k in storage.listing(root))


def test_storage_layer_on_gs(gcs):
  root = gcs.path("layer")
  data = bytes(range(256)) * 7
  storage.write_bytes(storage.join(root, "a", "b.bin"), data)
  assert storage.read_bytes(storage.join(root, "a", "b.bin")) == data
  storage.write_json(storage.join(root, "c.json"), {"x": [1, 2]})
  assert storage.read_json(storage.join(root, "c.json")) == {"x": [1, 2]}
  storage.save_npz(storage.join(root, "d.npz"), images=np.arange(6, dtype=np.uint8).reshape(1, 2, 3, 1))
  np.testing.assert_array_equal(storage.load_npz(storage.join(root, "d.npz"))["images"].ravel(),
                                np.arange(6))
  storage.append_line(storage.join(root, "e.jsonl"), '{"i": 1}')
  storage.append_line(storage.join(root, "e.jsonl"), '{"i": 2}')
  assert storage.read_text(storage.join(root, "e.jsonl")) == '{"i": 1}\n{"i": 2}\n'
  # the listing's size and MD5 are the object's own (oracle: hashlib on the bytes we wrote)
  info = storage.listing(root)["a/b.bin"]
  assert info["size"] == len(data)
  assert info["md5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
  assert storage.listdir(root) == ["a", "c.json", "d.npz", "e.jsonl"]
  storage.remove(storage.join(root, "a"))
  assert not storage.exists(storage.join(root, "a", "b.bin"))
  with pytest.raises(storage.StorageError, match="only local paths and gs://"):
    storage.run_path("s3://bucket/run")


def test_storage_layer_locally(tmp_path):
  """The same calls on local disk: whole writes (what a reader sees is all or nothing),
  no temporary file left behind, reads and listings."""
  p = tmp_path / "a" / "b.bin"
  data = bytes(range(256)) * 4
  storage.write_bytes(str(p), data)
  assert p.read_bytes() == data and sorted(x.name for x in p.parent.iterdir()) == ["b.bin"]
  storage.write_bytes(str(p), b"new")
  assert p.read_bytes() == b"new"
  assert storage.listing(str(tmp_path)) == {"a/b.bin": {"size": 3, "md5": None, "crc32c": None}}
  assert storage.sha256(str(p)) == hashlib.sha256(b"new").hexdigest()
  storage.append_line(str(tmp_path / "l.jsonl"), "x")
  storage.append_line(str(tmp_path / "l.jsonl"), "y\n")
  assert (tmp_path / "l.jsonl").read_text() == "x\ny\n"
  assert storage.join(str(tmp_path), "c") == str(tmp_path / "c")


def test_remote_damaged_step_is_marked_skipped_then_rewritten(gcs, capsys):
  """No rename on object storage: a damaged step gets a marker object, is never loaded,
  keeps its objects until the step is written anew, and the manifest holds the listing's
  hashes (nothing is downloaded to seal it)."""
  d = storage.join(gcs.path("ckpt"), "checkpoints")
  tree = {"w": jnp.arange(64.0)}
  with Checkpointer(d) as c:
    c.save(1, tree, {"it": 1}, {"m": 1})
    c.save(2, jax.tree.map(lambda x: x + 1, tree), {"it": 2}, {"m": 1})
    c.wait()
  manifest = storage.read_json(storage.join(d, "2", "bluediff_manifest.json"))["files"]
  assert manifest and all(v["md5"] and "sha256" not in v for v in manifest.values())
  victim = max((k for k in storage.listing(storage.join(d, "2")) if "/d/" in k),
               key=lambda k: storage.listing(storage.join(d, "2"))[k]["size"])
  blob = bytearray(storage.read_bytes(storage.join(d, "2", victim)))
  blob[len(blob) // 2] ^= 0xFF                                   # same size, other bytes
  storage.write_bytes(storage.join(d, "2", victim), bytes(blob))
  with Checkpointer(d) as c:
    assert c.latest_step() == 1
    assert "is skipped" in capsys.readouterr().out
    assert storage.exists(storage.join(d, "2.damaged")) and storage.exists(storage.join(d, "2", victim))
    _, data, _ = c.restore(abstract_like(tree, _local_sharding()))
    assert data == {"it": 1}
    c.save(2, jax.tree.map(lambda x: x * 3, tree), {"it": 22}, {"m": 1})
    c.wait()
  assert not storage.exists(storage.join(d, "2.damaged"))
  with Checkpointer(d, read_only=True) as c:
    state, data, _ = c.restore(abstract_like(tree, _local_sharding()))
  assert c.latest_step() == 2 and data == {"it": 22}
  np.testing.assert_array_equal(state["w"], np.arange(64.0) * 3)


def _delete_behind_our_back(gcs, prefix: str) -> None:
  """Deletes every object under `prefix` through the emulator's JSON API directly: another
  client, as a killed run's late request or a peer host would be."""
  import json
  import urllib.parse
  import urllib.request
  host, bucket = gcs.env["STORAGE_EMULATOR_HOST"], gcs.bucket
  name = prefix[len(f"gs://{bucket}/"):]
  url = f"{host}/storage/v1/b/{bucket}/o?prefix={urllib.parse.quote(name)}"
  items = json.loads(urllib.request.urlopen(url).read()).get("items", [])
  assert items
  for item in items:
    obj = urllib.parse.quote(item["name"], safe="")
    urllib.request.urlopen(urllib.request.Request(f"{host}/storage/v1/b/{bucket}/o/{obj}",
                                                  method="DELETE")).read()


def test_a_checkpointer_sees_what_another_client_changed(gcs):
  """gcsfs caches listings for the life of a process; a Checkpointer opened later must
  see steps that another process deleted meanwhile (a stale listing once made a reader
  find no sealed step at all, in the preemption test)."""
  d = storage.join(gcs.path("stale"), "checkpoints")
  tree = {"w": jnp.arange(8.0)}
  with Checkpointer(d, max_to_keep=5) as c:
    for step in (1, 2):
      c.save(step, tree, {"it": step}, {"m": 1})
  with Checkpointer(d, read_only=True) as c:
    assert c.all_steps() == [1, 2] and c.latest_step() == 2
  _delete_behind_our_back(gcs, storage.join(d, "2") + "/")
  with Checkpointer(d, read_only=True) as c:
    assert c.all_steps() == [1] and c.latest_step() == 1


KILL_STEPS = ["--config.training.num_steps=8", "--config.training.checkpoint_every=2",
              "--config.training.log_every=1"]


def _metrics(path):
  return {r["step"]: r["loss"] for r in map(json.loads, storage.read_text(path).splitlines())}


def test_logs_upload_only_what_changed_and_at_most_every_interval(gcs):
  """Object storage has no append, so a log is re-sent whole: only when it changed, and
  by the training loop at most every sync_every_s unless forced (at a checkpoint)."""
  from bluediff.train import MetricWriter
  wd = gcs.path("logs")
  staging = storage.Staging(wd)
  log = staging.open_log("metrics.jsonl", lambda r: True)
  log.write('{"step": 1}\n')
  log.flush()
  assert staging.sync() == ["metrics.jsonl"]
  assert staging.sync() == []                      # unchanged: nothing sent
  log.write('{"step": 2}\n')
  log.flush()
  assert staging.sync() == ["metrics.jsonl"]       # grown: sent whole
  assert storage.read_text(storage.join(wd, "metrics.jsonl")) == '{"step": 1}\n{"step": 2}\n'
  log.close()
  staging.close()

  def steps():
    return [r["step"] for r in map(json.loads, storage.read_text(
        storage.join(wd, "metrics.jsonl")).splitlines())]

  writer = MetricWriter(wd, True, resume_step=2, sync_every_s=3600.0)
  writer.write(3, {"loss": 1.0})
  writer.sync()                                    # the first upload is never held back
  writer.write(4, {"loss": 1.0})
  writer.sync()                                    # within the interval: held back
  assert steps() == [1, 2, 3]
  writer.write(5, {"loss": 1.0})
  writer.sync(force=True)                          # a checkpoint's: sent at once
  assert steps() == [1, 2, 3, 4, 5]
  writer.close()


def test_train_and_resume_in_process_on_gs(gcs, tiny_config):
  """The fast suite's whole-run check: the training loop writes everything to gs:// (none
  of it to a local `gs:` folder), a rerun with more steps resumes from gs://, and the log
  is one whole object that ends at the last step."""
  import os
  from bluediff.sampling import load_params
  from bluediff.experiment import build_experiment
  from bluediff.train import train
  wd = gcs.path("inproc")
  c = tiny_config()
  c.training.num_steps, c.training.checkpoint_every, c.training.log_every = 4, 2, 2
  train(c, wd)
  assert not os.path.exists("gs:")
  names = storage.listdir(wd)
  assert {"checkpoints", "config.json", "metrics.jsonl", "samples.png", "tb"} <= set(names)
  assert [r["step"] for r in map(json.loads, storage.read_text(storage.join(wd, "metrics.jsonl"))
                                 .splitlines())] == [2, 4]
  # a killed run's log can run past its last checkpoint: those lines must go on resume
  storage.append_line(storage.join(wd, "metrics.jsonl"), json.dumps({"step": 5, "loss": 9.0}))
  c.training.num_steps = 6
  train(c, wd)
  assert [r["step"] for r in map(json.loads, storage.read_text(storage.join(wd, "metrics.jsonl"))
                                 .splitlines())] == [2, 4, 6]
  _, step = load_params(build_experiment(c), wd)
  assert step == 6


@pytest.mark.slow   # four subprocess runs (~2 min): CI's slow step
def test_a_run_lives_entirely_on_gs(gcs, tiny_config, subprocess_env, tmp_path):
  """Train to gs://, SIGKILL mid-run, resume from gs:// with the uninterrupted run's losses,
  skip a damaged object with a warning, evaluate, export to gs:// and load_pretrained it."""
  from bluediff.export import load_pretrained
  from bluediff.train import train
  env = gcs.subprocess_env(subprocess_env)
  ref = tmp_path / "ref"                                   # the uninterrupted run, on local disk
  c = tiny_config()
  c.training.num_steps, c.training.checkpoint_every, c.training.log_every = 8, 2, 1
  train(c, str(ref))
  want = {r["step"]: r["loss"] for r in map(json.loads, open(ref / "metrics.jsonl"))}

  wd = gcs.path("e2e")
  cmd = [sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
         f"--workdir={wd}", *KILL_STEPS]
  p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  ckpts = storage.join(wd, "checkpoints")
  while time.time() < deadline and p.poll() is None and not storage.exists(
      storage.join(ckpts, "2", "bluediff_manifest.json")):
    time.sleep(0.05)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert storage.exists(storage.join(ckpts, "2", "bluediff_manifest.json")), "killed too early"
  r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"resumed from {ckpts}/" in r.stdout
  got = _metrics(storage.join(wd, "metrics.jsonl"))
  assert sorted(got) == sorted(want)                       # cut back to the restored step
  np.testing.assert_allclose([got[s] for s in sorted(want)], [want[s] for s in sorted(want)],
                             rtol=1e-6)
  assert storage.exists(storage.join(wd, "samples.png")) and storage.exists(storage.join(wd, "config.json"))
  assert any(n.startswith("events.out.tfevents") for n in storage.listdir(storage.join(wd, "tb")))

  # a damaged object in the newest step: skipped with a warning, the step before is used
  step8 = storage.join(ckpts, "8")
  victim = next(k for k in storage.listing(step8) if k.endswith("_CHECKPOINT_METADATA"))
  storage.write_bytes(storage.join(step8, victim), b"{}")
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={wd}", "--mode=evaluate",
                      "--config.eval.metrics=('digits',)"], env=env, capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"checkpoint {ckpts}/8 is skipped" in r.stdout
  assert storage.read_json(storage.join(wd, "metrics.json"))["protocol"]["checkpoint_step"] == 6
  assert storage.exists(storage.join(wd, "evaluations.jsonl"))

  out = gcs.path("export")
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={wd}", "--mode=export", f"--export_dir={out}"], env=env,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  model = load_pretrained(out)
  assert model.meta["checkpoint_step"] == 6
  x = np.asarray(model.sample(4, seed=0))
  assert x.shape == (4, 16, 16, 1) and np.isfinite(x).all()


def test_a_gs_data_dir_is_refused_in_one_line():
  """Measured: the ArrayRecord reader hangs on a gs:// dataset; it is refused up front."""
  from bluediff.data.sources import DatasetNotPreparedError, check_prepared
  with pytest.raises(DatasetNotPreparedError, match="copy the prepared dataset to local disk"):
    check_prepared("cifar10", "gs://bucket/tensorflow_datasets")


def test_no_run_path_touches_os_path_or_open():
  """Every run path goes through bluediff.storage: a stray os.path/open()/shutil call on
  one would write `gs://...` into a local folder. Lines marked `# local:` are paths that
  are local by nature (package data, a config file, a local staging directory)."""
  import pathlib
  import re
  root = pathlib.Path(storage.__file__).parent
  pattern = re.compile(r"\bos\.path\.|(?<![\w.])open\(|\bshutil\.|\bos\.(makedirs|replace|rename|"
                       r"remove|listdir|walk)\b|\bnp\.(save|savez|savez_compressed|load)\(|"
                       r"\.savefig\(")
  allowed = {"storage.py", "cache.py"}
  found = []
  for path in sorted(root.rglob("*.py")):
    if path.name in allowed:
      continue
    for i, line in enumerate(path.read_text().splitlines(), 1):
      code = line.split("#")[0]
      if ("BytesIO" in code or "(buf" in code) and "np." in code:
        continue                                # (de)serialising in memory
      if pattern.search(code) and "# local:" not in line and "__file__" not in line:
        found.append(f"{path.relative_to(root)}:{i}: {line.strip()}")
  assert not found, "run paths must go through bluediff.storage:\n" + "\n".join(found)


@pytest.mark.slow   # two real processes (~2 min): CI's slow step
def test_two_processes_write_one_gs_checkpoint_and_restore_it(gcs, tiny_config, subprocess_env):
  """Two processes (gloo on 127.0.0.1) train into one gs:// workdir: both write their
  shards of each step into the same objects' prefix, process 0 seals it, and both
  restore the same parameters, which this (third) process restores too."""
  import socket
  from bluediff.experiment import build_experiment, restore_or_init
  wd = gcs.path("multi")
  env = gcs.subprocess_env(subprocess_env)
  env.update(XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
  procs = [subprocess.Popen([sys.executable, "tests/multiprocess_worker.py", str(i), port, wd,
                             "restore"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  lines = [next(line for line in out.splitlines() if line.startswith("restored")) for out, _ in outs]
  assert lines[0] == lines[1], lines
  ckpts = storage.join(wd, "checkpoints")
  with Checkpointer(ckpts, read_only=True) as ckpt:
    assert ckpt.all_steps() == [3, 6] and ckpt.verify(6) is None
    state, _, step = restore_or_init(build_experiment(tiny_config()), ckpt)
  total = sum(float(jnp.sum(jnp.abs(x))) for x in jax.tree.leaves(state.params))
  assert lines[0] == f"restored step {step} checksum {total:.6f}"
  shards = [k for k in storage.listing(storage.join(ckpts, "6")) if "ocdbt.process_" in k]
  assert {k.split("ocdbt.process_")[1][0] for k in shards} == {"0", "1"}   # both wrote


@pytest.mark.slow   # eight killed subprocesses (~1 min): CI's slow step
def test_a_kill_at_any_point_of_a_gs_save_leaves_a_sealed_loadable_step(gcs, subprocess_env, tmp_path):
  """Spot preemption: SIGTERM or SIGKILL at random moments of back-to-back saves to gs://
  (Orbax's writes, its commit, our seal) never leaves the directory without a sealed
  step, and the newest sealed step restores to exactly what was saved for it."""
  sys.path.insert(0, "tests")
  from save_worker import tree
  d = storage.join(gcs.path("preempt"), "checkpoints")
  env = gcs.subprocess_env(subprocess_env)
  rng = random.Random(0)
  for round_ in range(8):
    err = tmp_path / f"worker{round_}.err"
    with open(err, "w") as stderr:
      p = subprocess.Popen([sys.executable, "tests/save_worker.py", d], env=env,
                           stdout=subprocess.PIPE, stderr=stderr, text=True)
    if not p.stdout.readline().startswith("saving"):
      p.wait()
      pytest.fail(f"round {round_}: the worker did not start saving:\n{err.read_text()[-3000:]}")
    while round_ == 0 and not storage.exists(storage.join(d, "1", "bluediff_manifest.json")):
      time.sleep(0.02)                   # the invariant starts once a first step is sealed
    time.sleep(rng.uniform(0.0, 1.5))
    p.send_signal(signal.SIGKILL if round_ % 2 else signal.SIGTERM)
    p.wait()
    with Checkpointer(d, read_only=True) as ckpt:
      step = ckpt.latest_step()
      assert step is not None, f"round {round_}: no sealed step"
      like = abstract_like(tree(0), _local_sharding())
      state, data, _ = ckpt.restore(like, step)
    assert data == {"step": step}
    np.testing.assert_array_equal(state["layer7"], np.full((256, 256), float(step)))
