"""The train state: one pytree, replicated over the mesh and checkpointed whole."""
from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
  step: jax.Array       # int32 scalar: optimizer updates done
  params: Any           # network parameters (float32)
  opt_state: Any        # optax state
  ema_params: Any       # exponential moving average of params (sampling weights)
  process_params: Any = flax.struct.field(default_factory=dict)     # learnable process
  #                       parameters (e.g. the gamma schedule's st, en, tau); {} for most
  process_opt_state: Any = flax.struct.field(default_factory=dict)  # their optax state
