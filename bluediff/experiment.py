"""An experiment: everything a config builds that the modes (train, sample, evaluate,
export) share: the device mesh, the process, the model, the optimizer, and the state
restored from a checkpoint or freshly initialised.

Kept apart from the training loop so that sampling and evaluation build what they
need without importing `bluediff.train` (which imports the sampler for its grids).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import ml_collections

from bluediff import sharding, step as step_lib
from bluediff.checkpoint import Checkpointer, abstract_like
from bluediff.config import ConfigError, validate
from bluediff.data.sources import dataset_spec
from bluediff.init_rng import init_key
from bluediff.models import build_model
from bluediff.processes import Process, build_process
from bluediff.signature import model_signature


@dataclasses.dataclass
class Experiment:
  """Everything built from a config that the modes share."""
  config: ml_collections.ConfigDict
  mesh: jax.sharding.Mesh
  process: Process
  model: object
  optimizer: object
  image_shape: tuple[int, int, int]        # data [H, W, C]
  state_sharding: object

  @property
  def is_chief(self) -> bool:
    return jax.process_index() == 0

  def abstract_state(self):
    b = self.mesh.devices.size
    shape = (b, *self.image_shape[:2], self.process.input_channels(self.image_shape[2]))
    init = lambda k: step_lib.init_state(self.model, self.optimizer, k, shape, self.process,
                                         self.process_optimizer)
    abstract = jax.eval_shape(init, init_key(0))
    return abstract_like(abstract, self.state_sharding), init

  def init_state(self, seed: int):
    """A fresh state from `seed` (the parameters are drawn with bluediff.init_rng's key,
    which compiles in seconds where threefry took tens)."""
    _, init = self.abstract_state()
    return jax.jit(init, out_shardings=self.state_sharding)(init_key(seed))

  def train_step(self):
    """The jitted (state, images, base_key) -> (state, metrics) of this experiment
    (a partial of the jitted function over this experiment's process; `.func` is it)."""
    oc = self.config.optim
    step = step_lib.make_train_step(self.model, self.optimizer, oc.ema_decay,
                                    self.process_optimizer,
                                    skip_nonfinite=self.config.training.on_nan == "skip",
                                    ema_every=oc.ema_every, ema_start=oc.ema_start)
    return functools.partial(step_lib.jit_train_step(step, self.mesh, self.state_sharding),
                             self.process_on_mesh)

  def sampler(self, num: int, method: str | None = None, num_steps: int | None = None):
    """jitted (params, key, cond=None) -> [num, H, W, C] images, over this experiment's process."""
    sc = self.config.sampling
    fn = step_lib.make_sampler(self.model, self.process, self.mesh, (num, *self.image_shape),
                               method=method or sc.method, num_steps=num_steps or sc.num_steps)
    process = self.process_on_mesh

    def sample(params, key, cond=None):
      return fn(process, params, key, cond)
    return sample

  @property
  def process_optimizer(self):
    """AdamW for learnable process parameters (the official code's lr 1e-3)."""
    import optax
    return optax.adamw(self.config.process.learn_lr)

  def bind_process(self, process_params) -> "Experiment":
    """Uses learned process parameters (from a checkpoint) for sampling."""
    if jax.tree.leaves(process_params):
      self.process = self.process.bind(process_params)
      self.__dict__.pop("process_on_mesh", None)
    return self

  @property
  def signature(self) -> dict:
    """Checkpoint meta: the config's model signature, the noise statistics' hash and the
    time scale the built process resolved (bluediff.signature)."""
    return model_signature(self.config, getattr(self.process, "noise_digest", ""),
                           getattr(self.process, "time_scale", None))

  @functools.cached_property
  def process_on_mesh(self) -> Process:
    """The process with its arrays replicated over the mesh (placed once)."""
    return sharding.replicate(self.process, self.mesh)


def attach_run_state(exp: Experiment, workdir: str) -> Experiment:
  """Adds what a process keeps in the run directory (cold generation's prior: fitted on
  the training split at the first train, then loaded). Call before using the process."""
  if getattr(exp.process, "generate", False) and exp.process.prior is None:
    from bluediff.processes.cold_prior import load_or_fit
    exp.process = exp.process.replace(prior=load_or_fit(exp, workdir))
    exp.__dict__.pop("process_on_mesh", None)
  return exp


def build_experiment(config) -> Experiment:
  """Checks the config (no compilation, no data read) and builds the parts."""
  mesh = sharding.make_mesh(config.mesh)
  validate(config, mesh.devices.size)
  spec = dataset_spec(config.data.dataset)
  process = build_process(config, mesh.devices.size)
  image_shape = (config.data.image_size, config.data.image_size, spec.channels)
  try:
    process.check_sampler(config.sampling.method)
  except ValueError as e:
    raise ConfigError(f"config.sampling.method: {e}") from None
  model = build_model(config.model, process.output_channels(spec.channels))
  optimizer = step_lib.make_optimizer(config.optim, config.training.num_steps)
  return Experiment(config, mesh, process, model, optimizer, image_shape,
                    sharding.replicated(mesh))


def restore_or_init(exp: Experiment, ckpt: Checkpointer, step: int | None = None):
  """(state, data iterator state or None, restored step or None)."""
  latest = ckpt.latest_step() if step is None else step
  if latest is None:
    return exp.init_state(exp.config.seed), None, None
  abstract, _ = exp.abstract_state()
  state, data_state, _ = ckpt.restore(abstract, latest, expected_meta=exp.signature)
  return state, data_state, latest
