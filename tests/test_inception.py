"""The Flax FID Inception against pytorch-fid's own blocks, with identical random weights.

The reference is pytorch-fid's `fid_inception_v3()` (torchvision's Inception3
patched with pytorch-fid's FIDInceptionA/C/E_1/E_2) and its `InceptionV3`
wrapper (resize + [-1, 1] scaling + block 3 pooling). Its weight download is
replaced by random weights; those go through `torch.save` and bluediff's
converter, so the same test covers the conversion path.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.slow   # needs torch + pytorch-fid (.[fid]); CI runs it in its slow step
torch = pytest.importorskip("torch")
pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")


@pytest.fixture(scope="module")
def reference_net():
  """pytorch-fid's FID Inception with seeded random weights and BN statistics."""
  import torchvision
  torch.manual_seed(0)
  load = torchvision.models.Inception3.load_state_dict
  torchvision.models.Inception3.load_state_dict = lambda self, sd, *a, **k: None  # no download
  orig_url = pytorch_fid_inception.load_state_dict_from_url
  pytorch_fid_inception.load_state_dict_from_url = lambda *a, **k: {}
  try:
    net = pytorch_fid_inception.fid_inception_v3()
  finally:
    torchvision.models.Inception3.load_state_dict = load
    pytorch_fid_inception.load_state_dict_from_url = orig_url
  with torch.no_grad():
    for name, p in net.named_parameters():
      if name.endswith("conv.weight"):       # He init keeps 90 layers of activations O(1)
        fan_in = p.shape[1] * p.shape[2] * p.shape[3]
        p.copy_(torch.randn_like(p) * np.sqrt(2.0 / fan_in))
      elif name.endswith("bn.weight"):
        p.uniform_(0.5, 1.5)
      elif name.endswith("bias"):
        p.normal_(0.0, 0.1)
      elif name == "fc.weight":
        p.normal_(0.0, 1.0 / np.sqrt(p.shape[1]))
    for name, b in net.named_buffers():
      if name.endswith("running_mean"):
        b.normal_(0.0, 0.2)
      elif name.endswith("running_var"):
        b.uniform_(0.5, 2.0)
  return net.eval()


@pytest.fixture(scope="module")
def converted(reference_net, tmp_path_factory):
  """bluediff params converted from a .pth of the reference weights."""
  from bluediff.evaluate import inception_weights as iw
  d = tmp_path_factory.mktemp("inception")
  torch.save(reference_net.state_dict(), d / "ref.pth")
  dst = iw.convert_pytorch(str(d / "ref.pth"), str(d / "fid.safetensors"))
  return iw.load_params(dst)


def _reference_outputs(net, images_u8):
  """pytorch-fid's InceptionV3 wrapper (block 3 pool) + the 1008-way fc of the same net."""
  orig = pytorch_fid_inception.fid_inception_v3
  pytorch_fid_inception.fid_inception_v3 = lambda: net
  try:
    wrapper = pytorch_fid_inception.InceptionV3([3]).eval()
  finally:
    pytorch_fid_inception.fid_inception_v3 = orig
  x = torch.from_numpy(images_u8.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
  with torch.no_grad():
    pool = wrapper(x)[0].flatten(1)
    logits = net.fc(pool)
  return pool.numpy(), logits.numpy()


def _rel_err(a, b):
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("size", [32, 331])   # upsampling and downsampling resize
def test_matches_pytorch_fid(reference_net, converted, size):
  from bluediff.evaluate.inception import inception_outputs
  params, digest = converted
  assert len(digest) == 64
  images = np.random.default_rng(size).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
  ref_pool, ref_logits = _reference_outputs(reference_net, images)
  pool, logits = inception_outputs(params, images)
  assert pool.shape == (2, 2048) and logits.shape == (2, 1008)
  # the random net is not degenerate: images differ by far more than the tolerance
  assert _rel_err(ref_pool[0], ref_pool[1]) > 1e-2
  assert _rel_err(np.asarray(pool), ref_pool) < 1e-4
  assert _rel_err(np.asarray(logits), ref_logits) < 1e-4


def test_resize_matches_torch_interpolate():
  import torch.nn.functional as F
  from bluediff.evaluate.inception import resize_bilinear
  for size in (8, 32, 400):
    x = np.random.default_rng(size).normal(size=(2, size, size + 3, 3)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=(299, 299),
                        mode="bilinear", align_corners=False).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(np.asarray(resize_bilinear(x)), ref, atol=2e-6)


def test_avg_pool_excludes_padding():
  import torch.nn.functional as F
  from bluediff.evaluate.inception import avg_pool_exclude_pad
  x = np.random.default_rng(0).normal(size=(1, 5, 6, 2)).astype(np.float32)
  ref = F.avg_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 3, 1, 1,
                     count_include_pad=False).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(np.asarray(avg_pool_exclude_pad(x)), ref, atol=1e-6)
  # the corner averages its 4 real pixels only
  np.testing.assert_allclose(np.asarray(avg_pool_exclude_pad(x))[0, 0, 0], x[0, :2, :2].mean((0, 1)),
                             atol=1e-6)


def test_missing_and_bad_weights(tmp_path):
  from bluediff.evaluate import inception_weights as iw
  missing = tmp_path / "nope.safetensors"
  with pytest.raises(iw.InceptionWeightsError, match="inception_weights --from_pytorch"):
    iw.load_params(str(missing))
  bad = tmp_path / "bad.safetensors"
  bad.write_bytes(b"not a safetensors file")
  with pytest.raises(iw.InceptionWeightsError, match="not a readable safetensors"):
    iw.load_params(str(bad))
  from safetensors.numpy import save_file
  save_file({"fc/kernel": np.zeros((3, 3), np.float32)}, str(tmp_path / "wrong.safetensors"))
  with pytest.raises(iw.InceptionWeightsError, match="not the FID Inception"):
    iw.load_params(str(tmp_path / "wrong.safetensors"))
