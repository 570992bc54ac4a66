"""Checks sweep job specs with the engines' own code (run with the `[cloud]` tools' Python:
.venv-cloud/bin/python, see .ci/run): xpk's argument parser for each `xpk workload create`,
SkyPilot's Task.from_yaml for each task YAML. Offline; prints one line per spec and exits
non-zero on the first spec an engine refuses.

argv: a JSON file {"xpk": [[argv...], ...], "skypilot": [yaml path, ...]}
"""
import argparse
import json
import sys


def main():
  with open(sys.argv[1]) as f:
    specs = json.load(f)
  if specs.get("xpk"):
    from xpk.parser.core import set_parser
    for argv in specs["xpk"]:
      parser = argparse.ArgumentParser(prog="xpk")
      set_parser(parser)
      if argv[0] != "xpk":
        raise SystemExit(f"not an xpk command: {argv[:3]}")
      a = parser.parse_args(argv[1:])                  # exits 2 on a spec xpk refuses
      print(f"xpk ok {a.workload} {a.tpu_type} slices={a.num_slices} restarts={a.max_restarts} "
            f"spot={bool(getattr(a, 'spot', False))}")
  if specs.get("skypilot"):
    import sky
    for path in specs["skypilot"]:
      task = sky.Task.from_yaml(path)                   # raises on a YAML SkyPilot refuses
      (res,) = list(task.resources)
      print(f"sky ok {task.name} spot={res.use_spot} accelerators={dict(res.accelerators)} "
            f"recovery={res.job_recovery.get('strategy') if res.job_recovery else None}")


if __name__ == "__main__":
  main()
