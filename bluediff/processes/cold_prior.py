"""Priors over fully degraded images: unconditional generation with cold diffusion.

A fully degraded image keeps little: blur with `mean_at_end` keeps the
per-channel means, super-resolution keeps the final low-resolution image,
fixed noise keeps nothing (x_T ~ N(0, I)). A Gaussian mixture (full
covariance, sklearn's EM) is fitted to what is kept over the training set,
saved with the run as npz (no pickle), and sampled to start Algorithm 2.
For blur, a small "broken symmetry" noise (std 0.002) is added to the
constant image, drawn afresh for every sample from the sampling key, as the
reference's `gen_sample` does (`randn_like(img) * noise_level`,
deblurring-diffusion-pytorch; README: `--noise 0.002`).
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bluediff import degradations as dg

SYMMETRY_NOISE_STD = 0.002
PRIOR_FILE = "cold_prior.npz"


@struct.dataclass
class MixturePrior:
  """x_T = expand(v) + symmetry_std * eps, v ~ sum_k w_k N(mu_k, L_k L_k^T), eps ~ N(0, I)
  drawn per sample.

  kind "channel_mean": v [C] broadcast over H, W; "low_res": v = the [h, w, C]
  image, repeated (nearest) up to H, W; "from_degradation": D(x0, T) does not
  depend on x0 (fixed noise, colour fill), so x_T = D(0, T, keys) with the
  trajectory's own keys (the same z or colour Algorithm 2 then removes).
  """
  log_weights: jax.Array       # [K]
  means: jax.Array             # [K, D]
  chols: jax.Array             # [K, D, D]
  symmetry_std: jax.Array      # [] std of the per-sample broken-symmetry noise (0: none)
  kind: str = struct.field(pytree_node=False, default="channel_mean")
  low_res: tuple = struct.field(pytree_node=False, default=())   # (h, w, C) for "low_res"

  def sample(self, key, shape) -> jax.Array:
    """[B, H, W, C] = shape draws; one key gives one batch, each sample its own noise."""
    b, h, w, c = shape
    k_comp, k_z, k_sym = jax.random.split(key, 3)
    comp = jax.random.categorical(k_comp, self.log_weights, shape=(b,))
    z = jax.random.normal(k_z, (b, self.means.shape[1]))
    v = self.means[comp] + jnp.einsum("bij,bj->bi", self.chols[comp], z)
    if self.kind == "channel_mean":
      x = jnp.broadcast_to(v[:, None, None, :], shape)
    else:
      lh, lw, _ = self.low_res
      small = v.reshape(b, lh, lw, c)
      x = jnp.repeat(jnp.repeat(small, h // lh, axis=1), w // lw, axis=2)
    return x + self.symmetry_std * jax.random.normal(k_sym, shape, x.dtype)

  def save(self, path: str) -> str:
    from bluediff import storage
    return storage.save_npz(path, log_weights=np.asarray(self.log_weights), means=np.asarray(self.means),
                           chols=np.asarray(self.chols),
                           symmetry_std=np.asarray(self.symmetry_std, np.float32),
                           kind=np.array(self.kind), low_res=np.array(self.low_res, np.int64))

  @classmethod
  def load(cls, path: str) -> "MixturePrior":
    """Also reads pre-issue-15 files: their fixed [H, W, C] field is dropped, and its
    std (SYMMETRY_NOISE_STD when it is not all zeros) is drawn afresh instead."""
    from bluediff import storage
    f = storage.load_npz(path)
    return cls(jnp.asarray(f["log_weights"]), jnp.asarray(f["means"]), jnp.asarray(f["chols"]),
               jnp.asarray(symmetry_std_of(f), jnp.float32), str(f["kind"]),
               tuple(int(v) for v in f["low_res"]))


def symmetry_std_of(arrays: dict) -> float:
  """The std from a saved prior's arrays; files from before issue 15 hold one fixed
  [H, W, C] field instead (its std, when it is not all zeros, is drawn afresh now)."""
  if "symmetry_std" in arrays:
    return float(np.asarray(arrays["symmetry_std"]).item())
  return SYMMETRY_NOISE_STD if np.any(np.asarray(arrays["symmetry_noise"])) else 0.0


def kept(degradation, x_T: np.ndarray) -> tuple[str, np.ndarray, tuple]:
  """(kind, vectors [N, D], low-res shape) of what fully degraded images [N, H, W, C] keep."""
  if isinstance(degradation, dg.Blur):
    if not degradation.mean_at_end:
      raise ValueError("blur generation needs degradation.mean_at_end=True (x_T = channel means)")
    return "channel_mean", x_T.mean(axis=(1, 2)), ()
  if isinstance(degradation, dg.SuperResolution):
    f = 2 ** degradation.num_steps
    small = x_T[:, ::f, ::f, :]
    return "low_res", small.reshape(len(small), -1), small.shape[1:]
  if isinstance(degradation, dg.FixedNoise) or getattr(degradation, "colour_fill", False):
    return "from_degradation", np.zeros((len(x_T), 1)), ()
  raise ValueError(f"no generation prior for {type(degradation).__name__}; use blur (with "
                   f"mean_at_end), sr, noise or inpaint with colour_fill")


def fit_prior(degradation, x0: np.ndarray, components: int, seed: int = 0) -> MixturePrior:
  """Fits the mixture to D(x0, T) of training images x0 [N, H, W, C] in [-1, 1]."""
  from sklearn.mixture import GaussianMixture
  n = x0.shape[0]
  d_fn = jax.jit(lambda x, k: degradation(x, jnp.full((x.shape[0],), degradation.num_steps), k))
  x_T = np.concatenate([np.asarray(d_fn(x0[i:i + 256], jax.random.split(jax.random.key(i), len(x0[i:i + 256]))))
                        for i in range(0, n, 256)])
  kind, v, low_res = kept(degradation, x_T)
  if kind == "from_degradation":
    return MixturePrior(jnp.zeros(1), jnp.zeros((1, 1)), jnp.ones((1, 1, 1)),
                        jnp.zeros((), jnp.float32), kind)
  gmm = GaussianMixture(min(components, n), covariance_type="full", reg_covar=1e-6,
                        random_state=seed).fit(v.astype(np.float64))
  chols = np.linalg.cholesky(gmm.covariances_)
  # only a constant image needs its symmetry broken (the low-res one already varies)
  std = SYMMETRY_NOISE_STD if kind == "channel_mean" else 0.0
  return MixturePrior(jnp.asarray(np.log(gmm.weights_), jnp.float32), jnp.asarray(gmm.means_, jnp.float32),
                      jnp.asarray(chols, jnp.float32), jnp.asarray(std, jnp.float32), kind,
                      tuple(low_res))


def load_or_fit(exp, workdir: str) -> MixturePrior:
  """The run's prior: <workdir>/cold_prior.npz, fitted on the training split when missing."""
  from bluediff.data.sources import load_split
  from bluediff import storage
  path = storage.join(workdir, PRIOR_FILE)
  if storage.exists(path):
    return MixturePrior.load(path)
  c = exp.config
  x0, _ = load_split(c.data.dataset, c.data.train_split, c.data.image_size, c.data.data_dir)
  prior = fit_prior(exp.process.degradation, x0, c.process.prior_components, c.seed)
  if exp.is_chief:
    prior.save(path)
  return prior
