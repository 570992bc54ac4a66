"""Export round trip: the exported model samples exactly like the checkpoint it came from."""
import json

import jax
import numpy as np
import pytest

import bluediff


# slow: each trains, exports and samples (~30 s); the fast suite exports in
# tests/test_checkpoint.py::test_load_pretrained_refuses_meaning_overrides_and_takes_sampling_ones
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["blue_cholesky", "cold_generation"])
def test_export_samples_identically_to_the_checkpoint(tiny_config, tmp_path, variant):
  from bluediff.export import export
  from bluediff.sampling import load_params
  from bluediff.experiment import build_experiment
  from bluediff.train import train
  c = tiny_config()
  if variant == "blue_cholesky":
    c.process.name, c.noise.kind, c.noise.root = "blue_noise", "blue", "cholesky"
  else:
    c.process.name, c.process.generate, c.process.prior_components = "cold", True, 2
    c.sampling.method = "alg2"
    c.degradation.kind, c.degradation.num_steps, c.degradation.mean_at_end = "blur", 3, True
    c.degradation.blur_std, c.degradation.blur_std_step, c.degradation.kernel_size = 2.0, 0.0, 5
  c.training.num_steps, c.training.checkpoint_every = 2, 2
  c.mesh.data = 1
  train(c, str(tmp_path))
  out = export(c, str(tmp_path))
  meta = json.loads(open(f"{out}/meta.json").read())
  assert meta["checkpoint_step"] == 2 and meta["weights"] == "ema"
  model = bluediff.load_pretrained(out)
  got = np.asarray(model.sample(8, seed=3))
  exp = build_experiment(c)
  params, _ = load_params(exp, str(tmp_path))
  want = np.asarray(exp.sampler(8)(params, jax.random.key(3)))
  assert got.shape == (8, 16, 16, 1)
  np.testing.assert_allclose(got, want, atol=1e-5)
  if variant == "blue_cholesky":
    np.testing.assert_array_equal(np.asarray(model.process.noise.factor),
                                  np.asarray(exp.process.noise.factor))
    assert meta["signature"]["noise_digest"] == f"cholesky:{exp.process.noise.digest}"
    # a weights file that is not this export's (another run's, a half copy) is refused
    from safetensors.numpy import load_file, save_file
    flat = load_file(f"{out}/weights.safetensors")
    save_file({k: v + 1 for k, v in flat.items()}, f"{out}/weights.safetensors",
              metadata={"format": "bluediff-export-v1"})
    from bluediff.checkpoint import CheckpointMismatchError
    with pytest.raises(CheckpointMismatchError, match="does not match the hash"):
      bluediff.load_pretrained(out)


def test_loading_something_else_is_one_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a bluediff export"):
    bluediff.load_pretrained(str(tmp_path))
