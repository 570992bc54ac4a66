"""The generic training loop: every method runs through `train`.

Resume order: build mesh -> check config and data -> build process, model,
optimizer -> restore (state, data iterator) from the latest checkpoint if the
workdir has one, else init -> loop: batch -> jitted step -> log / checkpoint /
sample grid -> final checkpoint and grid -> wait for async saves.
"""
from __future__ import annotations

import json
import signal
import threading
import time

import jax
import numpy as np
from tqdm.auto import tqdm

from bluediff import sharding, storage
from bluediff.checkpoint import Checkpointer
from bluediff.data import pipeline
from bluediff.data.sources import check_prepared, to_uint8
from bluediff.experiment import Experiment, attach_run_state, build_experiment, restore_or_init
from bluediff.images import save_grid
from bluediff.sampling import held_out_references, restore


class MetricWriter:
  """TensorBoard event files plus a JSON-lines log; a no-op off the chief process.

  Both are written in a local staging directory (the run dir itself when it is local)
  and uploaded whole by `sync()` (object storage has no append), at most every
  `sync_every_s` unless forced: a long run's log grows, and re-sending it every
  `log_every` steps would cost more than the steps. On resume the log is cut back to
  the restored step, and TensorBoard is told to drop later events, so a run killed
  after its last checkpoint leaves no orphaned points.
  """

  def __init__(self, workdir: str, enabled: bool, resume_step: int = 0,
               sync_every_s: float = 30.0):
    self.enabled = enabled
    if not enabled:
      return
    from tensorboardX import SummaryWriter
    self.sync_every_s, self._last_sync = sync_every_s, -float("inf")
    self._staging = storage.Staging(workdir)
    self._jsonl = self._staging.open_log("metrics.jsonl", lambda r: r["step"] <= resume_step)
    self._tb = SummaryWriter(self._staging.dir("tb"), purge_step=resume_step or None)

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    for k, v in metrics.items():
      self._tb.add_scalar(k, v, step)
    self._jsonl.write(json.dumps({"step": step, **metrics}) + "\n")
    self._jsonl.flush()

  def sync(self, force: bool = False) -> None:
    """Flushes the logs; uploads those changed (a no-op for a local run dir) if forced
    (at a checkpoint, so a resumed run's log reaches its restored step) or if the last
    upload is `sync_every_s` old."""
    if self.enabled:
      self._tb.flush()
      now = time.perf_counter()
      if force or now - self._last_sync >= self.sync_every_s:
        self._staging.sync()
        self._last_sync = now

  def close(self) -> None:
    if self.enabled:
      self._tb.close()
      self._jsonl.close()
      self._staging.close()


def write_sample_grid(exp: Experiment, params, path: str, seed: int) -> str | None:
  """Samples `training.grid_size` images with the configured sampler, saves a PNG.

  Conditional processes restore held-out observations; each tile then shows
  observation | restoration | reference side by side.
  """
  n = exp.config.training.grid_size
  n = -(-n // exp.mesh.devices.size) * exp.mesh.devices.size
  if exp.process.conditional:
    refs = held_out_references(exp, n)
    restored, observed = restore(exp, params, refs, seed, batch_size=n)
    images = np.concatenate([observed, restored, to_uint8(refs)], axis=2)
  else:
    images = sharding.to_host(exp.sampler(n)(params, jax.random.key(seed)))
  return save_grid(images, path) if exp.is_chief else None


def over_budget(elapsed: float, budget: float) -> bool:
  """Whether training has used its wall budget: process 0's clock decides for all
  processes, so that every host stops at the same step."""
  out = elapsed >= budget
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    out = bool(multihost_utils.broadcast_one_to_all(np.asarray(out)))
  return out


def train(config, workdir: str) -> dict:
  """Trains (resuming from `workdir` if it holds checkpoints). Returns the last metrics."""
  exp = build_experiment(config)
  tc = config.training
  check_prepared(config.data.dataset, config.data.data_dir)
  workdir = str(storage.run_path(workdir))
  storage.makedirs(workdir)
  attach_run_state(exp, workdir)
  with Checkpointer(storage.join(workdir, "checkpoints"), max_to_keep=tc.max_to_keep) as ckpt:
    try:
      last, run_state = _train_loop(exp, ckpt, workdir)
    except BaseException as e:      # what a sweep's `status` reads back (launch/sweep.py)
      try:                          # never let this write hide the error itself
        write_run_status(exp, workdir, "stopped" if isinstance(e, KeyboardInterrupt) else
                         "failed", error=f"{type(e).__name__}: {e}"[:500])
      except Exception as status_error:
        print(f"warning: could not record the failure in {RUN_STATUS}: {status_error}")
      raise
    write_run_status(exp, workdir, run_state)
    return last


RUN_STATUS = "run_status.json"


def write_run_status(exp: Experiment, workdir: str, state: str, **extra) -> None:
  """<workdir>/run_status.json: "running", "done", "stopped" (a signal: resumable) or
  "failed", with the time and host; the chief writes it, as one whole object."""
  if exp.is_chief:
    import socket
    storage.write_json(storage.join(workdir, RUN_STATUS),
                       {"state": state, "time": time.time(), "host": socket.gethostname(),
                        "num_steps": exp.config.training.num_steps, **extra})


class StopRequest:
  """SIGTERM / SIGINT (preemption, Ctrl-C) set a flag the loop checks after every step:
  it then saves a checkpoint and returns, so a stop costs at most one step and one save.
  A second signal interrupts at once. Only installed in the main thread."""

  def __init__(self):
    self.requested, self.signal_name, self._old = False, "", {}

  def _handle(self, signum, frame):
    if self.requested:                       # second signal: stop now
      raise KeyboardInterrupt
    self.requested, self.signal_name = True, signal.Signals(signum).name

  def __enter__(self) -> "StopRequest":
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def _train_loop(exp: Experiment, ckpt: Checkpointer, workdir: str) -> tuple[dict, str]:
  """The loop proper: (the last metrics, "done" or "stopped" by a signal); `ckpt` is
  closed by the caller, even on errors."""
  config, tc = exp.config, exp.config.training
  state, data_state, restored = restore_or_init(exp, ckpt)
  if exp.is_chief:   # only once the checkpoints accepted this config: it is theirs
    storage.write_text(storage.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  start = restored or 0
  write_run_status(exp, workdir, "running", step=start)
  data_iter = pipeline.train_iterator(config.data, tc.batch_size, config.seed,
                                      jax.process_index(), jax.process_count())
  if data_state is not None:
    data_iter.set_state(data_state)
  if restored is not None:
    print(f"resumed from {ckpt.directory}/{restored}")

  train_step = exp.train_step()
  base_key = sharding.replicate(jax.random.key(config.seed), exp.mesh)
  writer = MetricWriter(workdir, exp.is_chief, start)
  meta = exp.signature

  metrics, last = {}, {}
  t0, last_log_step = time.perf_counter(), start
  began = t0
  bar = tqdm(total=tc.num_steps, initial=start, desc="train", disable=not exp.is_chief,
             dynamic_ncols=True)
  with StopRequest() as stop:
    for step in range(start, tc.num_steps):
      batch = sharding.host_to_global(next(data_iter)["image"], exp.mesh)
      state, metrics = train_step(state, batch, base_key)
      done = step + 1
      bar.update(1)
      stopping = stop.requested
      out_of_time = (tc.time_budget_s > 0 and done % tc.log_every == 0
                     and over_budget(time.perf_counter() - began, tc.time_budget_s))
      saving = (done % tc.checkpoint_every == 0 or done == tc.num_steps or stopping
                or out_of_time)
      if done % tc.log_every == 0 or done == tc.num_steps or saving:
        # read the metrics first: it waits for the steps still in flight, whose time
        # belongs to this interval (timed before it, the rate was ~1.4x too high)
        last = {k: float(v) for k, v in jax.device_get(metrics).items()}
        elapsed = time.perf_counter() - t0
        last["steps_per_sec"] = (done - last_log_step) / elapsed
        last["images_per_sec"] = last["steps_per_sec"] * tc.batch_size
        if not np.isfinite(last["loss"]) and tc.on_nan == "stop":   # never checkpoint it
          raise FloatingPointError(f"loss is {last['loss']} at step {done}; last good "
                                   f"checkpoint: {ckpt.latest_step()} (rerun resumes from it; "
                                   f"or set training.on_nan=skip)")
        writer.write(done, last)
        writer.sync(force=saving)
        bar.set_postfix(loss=f"{last['loss']:.4f}", img_s=f"{last['images_per_sec']:.0f}")
        t0, last_log_step = time.perf_counter(), done
      if saving:
        ckpt.save(done, state, data_iter.get_state(), meta)
      if stopping:
        ckpt.wait()
        bar.close()
        writer.close()
        print(f"stopped by signal {stop.signal_name} at step {done}: checkpoint saved; "
              f"rerun the same command to resume")
        return last, "stopped"
      if out_of_time:
        print(f"time budget of {tc.time_budget_s:g} s reached at step {done}: checkpoint saved")
        break
      if tc.sample_every and done % tc.sample_every == 0 and done != tc.num_steps:
        exp.bind_process(jax.device_get(state.process_params))
        write_sample_grid(exp, state.ema_params, storage.join(workdir, f"samples_{done:07d}.png"),
                          config.seed)
  bar.close()
  if start < tc.num_steps or not storage.exists(storage.join(workdir, "samples.png")):
    exp.bind_process(jax.device_get(state.process_params))
    path = write_sample_grid(exp, state.ema_params, storage.join(workdir, "samples.png"),
                             config.seed)
    if path:
      print(f"sample grid: {path}")
  writer.close()
  ckpt.wait()
  return last, "done"
