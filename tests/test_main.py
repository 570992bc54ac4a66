"""End to end through the real command line: train, sample, evaluate."""
import json
import subprocess
import sys

import numpy as np
import pytest


def run_main(args, env, timeout=600):
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py", *args],
                     capture_output=True, text=True, env=env, timeout=timeout)
  assert r.returncode == 0, r.stderr[-3000:]
  return r


@pytest.mark.slow   # the whole CLI path in subprocesses (~1 min)
def test_train_sample_evaluate(subprocess_env, tmp_path):
  wd = f"--workdir={tmp_path}"
  run_main([wd, "--config.training.num_steps=4"], subprocess_env)
  assert (tmp_path / "checkpoints" / "4").is_dir() and (tmp_path / "samples.png").exists()
  run_main([wd, "--mode=sample"], subprocess_env)
  with np.load(tmp_path / "samples.npz", allow_pickle=False) as f:
    images = f["images"]
  assert images.dtype == np.uint8 and images.shape == (16, 16, 16, 1)
  run_main([wd, "--mode=evaluate", f"--samples={tmp_path / 'samples.npz'}"], subprocess_env)
  result = json.loads((tmp_path / "metrics.json").read_text())
  m, prov = result["metrics"], result["provenance"]
  assert prov["digits_judge_version"] == 2 and prov["jax"] and prov["flax"]
  assert len(prov["commit"]) == 40 and isinstance(prov["dirty"], bool)
  assert 0 <= m["digits_copy_rate"] <= 1 and 0 <= m["digits_kernel_confident"] <= 1
  assert 0 <= m["digits_min_class_share"] <= m["digits_max_class_share"] <= 1
  assert m["digits_passes"] is False      # 4 training steps make no digits
  assert m["spectral_log_error"] > 0
  report = tmp_path / "eval" / "samples-samples" / "report.md"
  assert "![samples](samples_grid.png)" in report.read_text()
  assert (report.parent / "spectra.png").exists()

  # sample + evaluate at two step counts in one call, then compare two "runs"
  run_main([wd, "--mode=evaluate", "--config.eval.sampling_steps=(2,4)"], subprocess_env)
  rows = [json.loads(line) for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()]
  assert [(r["checkpoint_step"], r["num_steps"]) for r in rows[1:]] == [(4, 2), (4, 4)]
  from bluediff.compare import compare
  other = tmp_path / "other"                # a second run: the same evaluations, 10x better
  other.mkdir()
  for r in rows:
    r["metrics"]["digits_frechet"] /= 10
  (other / "evaluations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  out = compare([str(tmp_path), str(other)], str(tmp_path / "cmp"), ["digits_frechet"])
  assert len(out["rows"]) == 2 * 3          # two runs x (samples file, 2 steps, 4 steps)
  best = min(r["metrics"]["digits_frechet"] for r in rows)
  assert f"**{best:.4g}**" in (tmp_path / "cmp" / "table.md").read_text()   # best one in bold
  table = (tmp_path / "cmp" / "table.md").read_text()
  assert f"| {rows[2]['metrics']['digits_frechet'] * 10:.4g} |" in table
  assert (tmp_path / "cmp" / "digits_frechet_vs_steps.png").exists()
  with open(tmp_path / "cmp" / "table.csv") as f:
    assert f.readline().strip() == "run,checkpoint_step,sampler,num_steps,digits_frechet"


def test_unknown_mode_is_an_error(subprocess_env, tmp_path):
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={tmp_path}", "--mode=dance"],
                     capture_output=True, text=True, env=subprocess_env, timeout=120)
  assert r.returncode != 0 and "mode" in r.stderr


def test_sample_without_checkpoint_says_train_first(subprocess_env, tmp_path):
  r = subprocess.run([sys.executable, "-m", "bluediff.main", "--config=tests/tiny_config.py",
                      f"--workdir={tmp_path}", "--mode=sample"],
                     capture_output=True, text=True, env=subprocess_env, timeout=120)
  assert r.returncode == 2 and "train first" in r.stderr and "Traceback" not in r.stderr


def test_compare_refuses_to_mix_digits_judge_versions(tmp_path):
  from bluediff.compare import compare
  def run(name, rows):
    d = tmp_path / name
    d.mkdir()
    (d / "evaluations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(d)
  old = {"checkpoint_step": 10, "sampler": "euler", "num_steps": 8,
         "metrics": {"digits_confident": 0.9}}                  # before versions: judge 1
  new = {**old, "digits_judge_version": 2, "metrics": {"digits_confident": 0.7}}
  a, b = run("a", [old]), run("b", [new])
  with pytest.raises(ValueError, match=r"different digits judges \(v1: a; v2: b\)"):
    compare([a, b], str(tmp_path / "cmp"))
  rescored = run("c", [old, new])                               # the newest evaluation counts
  assert compare([rescored, b], str(tmp_path / "cmp"))["rows"][0]["digits_confident"] == 0.7


def test_compilation_cache_goes_to_the_user_cache_unless_chosen_or_switched_off():
  from bluediff.main import compilation_cache_dir
  assert compilation_cache_dir({"BLUEDIFF_CACHE": "/c"}) == "/c/jax_cc"
  assert compilation_cache_dir({"BLUEDIFF_CACHE": "gs://b/c"}) == "gs://b/c/jax_cc"
  assert compilation_cache_dir({"BLUEDIFF_CACHE": "/c", "JAX_COMPILATION_CACHE_DIR": "/j"}) == "/j"
  for off in ("0", "false", "OFF"):
    assert compilation_cache_dir({"BLUEDIFF_CACHE": "/c", "BLUEDIFF_COMPILATION_CACHE": off}) is None
