r"""Sweeps and ablations: a grid of gin overrides, one MODEL_DIR per point, one table.

Launch (sequentially on this machine; `--dry_run` prints the commands):
  python -m launch.sweep --gin_file=gin/local/default.gin \
    --sweep="LEARNING_RATE=[1e-3,3e-3,1e-2]" \
    --sweep="MIXTURE_OR_TASK_NAME=['ie_sample_default','ie_sample_instructuie']" \
    --base_dir=/tmp/sweep --gin.TRAIN_STEPS=200

Every `--sweep="NAME=[v1, v2, ...]"` is one axis of the grid (the values are
written exactly as on a `--gin.NAME=` flag: strings in quotes, numbers bare,
`@configurable()` references allowed); the grid is their product. NAME may be
any gin binding (`LEARNING_RATE`, `train.eval_period`, `config.T5Config.
num_encoder_layers`) or `gin_file`, whose values are gin files added after the
base ones (model sizes: `--sweep="gin_file=['models/tiny.gin','models/small.gin']"`).
Other `--gin.X=...`, `--gin_file`, `--gin_search_paths` flags apply to every
point. Each point trains into `<base_dir>/<NAME=value,...>` (a readable,
filesystem-safe name) with `launch/train.sh`; a point whose directory holds
a finished run (`sweep_done.json`) is skipped, so re-running a sweep resumes
it. `<base_dir>/sweep.json` lists the points and their overrides.

Cloud TPU: add `--tpu=NAME --zone=ZONE` (and a `gs://` base_dir); each point
runs on every worker through `launch/train.sh --tpu=...`, one after the other.

Collect the results into one table (one row per run: overrides, step,
average F1, per-dataset F1), printed as markdown and written to
`<base_dir>/results.{md,csv,json}`:
  python -m launch.sweep collect --base_dir=/tmp/sweep [--split=validation]
It reads the newest `<MODEL_DIR>/eval/metrics_<split>_step<N>.json` of each
run (written by models/evaluation.py).
"""
from __future__ import annotations

import argparse
import ast
import csv
import io
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Any, Mapping, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SH = os.path.join(REPO_ROOT, "launch", "train.sh")
MANIFEST = "sweep.json"
DONE_MARKER = "sweep_done.json"
GIN_FILE_AXIS = "gin_file"
_METRICS_FILE = re.compile(r"^metrics_(?P<split>.+)_step(?P<step>\d+)\.json$")


# --- the grid -----------------------------------------------------------------------
def parse_sweep(spec: str) -> tuple[str, list[str]]:
  """`"NAME=[v1, v2]"` -> ("NAME", ["v1", "v2"]) with each value's gin text.

  Values keep their source text (`1e-3` stays `1e-3`, `'a'` keeps its quotes),
  so they are bound exactly as typed; nested lists/dicts are single values.
  """
  name, sep, values = spec.partition("=")
  name = name.strip()
  if not sep or not name or not re.fullmatch(r"[\w.@/]+", name):
    raise ValueError(f"--sweep={spec!r}: expected NAME=[value, ...]")
  values = values.strip()
  try:
    node = ast.parse(values, mode="eval").body
  except SyntaxError:
    node = None
  if isinstance(node, (ast.List, ast.Tuple)):
    items = [ast.get_source_segment(values, elt) for elt in node.elts]
  elif values.startswith("[") and values.endswith("]"):
    # Not Python (e.g. `@optimizers.adamw`): split on top-level commas.
    items = _split_top_level(values[1:-1])
  else:
    raise ValueError(f"--sweep={spec!r}: the values must be a list, "
                     f"e.g. {name}=[1, 2]")
  items = [item.strip() for item in items if item and item.strip()]
  if not items:
    raise ValueError(f"--sweep={spec!r}: no values")
  return name, items


def _split_top_level(text: str) -> list[str]:
  parts, depth, current, quote = [], 0, "", None
  for ch in text:
    if quote:
      quote = None if ch == quote else quote
    elif ch in "'\"":
      quote = ch
    elif ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    elif ch == "," and depth == 0:
      parts.append(current)
      current = ""
      continue
    current += ch
  parts.append(current)
  return parts


def expand_grid(sweeps: Sequence[tuple[str, Sequence[str]]]) -> list[dict[str, str]]:
  """The product of the axes, first axis slowest: [{NAME: value, ...}, ...]."""
  names = [name for name, _ in sweeps]
  if len(set(names)) != len(names):
    raise ValueError(f"a sweep axis is given twice: {names}")
  return [dict(zip(names, values))
          for values in itertools.product(*(v for _, v in sweeps))]


def _label(value: str) -> str:
  value = value.strip()
  if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
    value = value[1:-1]
  return re.sub(r"\.gin$", "", os.path.basename(value)) if value.endswith(".gin") else value


def run_name(overrides: Mapping[str, str], max_length: int = 120) -> str:
  """A readable directory name: `LEARNING_RATE=1e-3,MIXTURE_OR_TASK_NAME=a`.

  Characters that are unsafe in paths (or gin strings) become `_`; the last
  part of a dotted name is enough (`config.T5Config.emb_dim` -> `emb_dim`).
  """
  parts = [f"{name.rsplit('.', 1)[-1]}={_label(value)}"
           for name, value in overrides.items()]
  name = re.sub(r"[^A-Za-z0-9._=,+-]", "_", ",".join(parts)) or "default"
  if len(name) > max_length:  # keep it unique when it has to be cut
    import hashlib
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    name = f"{name[:max_length - 9]}~{digest}"
  return name


def train_args(overrides: Mapping[str, str], *, gin_files: Sequence[str],
               extra_args: Sequence[str], model_dir: str) -> list[str]:
  """launch/train.sh arguments for one grid point (MODEL_DIR last, so it wins)."""
  args = [f"--gin_file={f}" for f in gin_files]
  files = [v for k, v in overrides.items() if k == GIN_FILE_AXIS]
  args += [f"--gin_file={v.strip(chr(39) + chr(34))}" for v in files]  # unquoted
  args += list(extra_args)
  args += [f"--gin.{k}={v}" for k, v in overrides.items() if k != GIN_FILE_AXIS]
  args.append(f"--gin.MODEL_DIR='{model_dir}'")
  return args


def plan(base_dir: str, sweeps: Sequence[tuple[str, Sequence[str]]], *,
         gin_files: Sequence[str], extra_args: Sequence[str],
         launcher: Sequence[str] = (TRAIN_SH,)) -> list[dict[str, Any]]:
  """One entry per grid point: name, overrides, model_dir and the command."""
  points = []
  for overrides in expand_grid(sweeps):
    name = run_name(overrides)
    model_dir = os.path.join(base_dir, name)
    args = train_args(overrides, gin_files=gin_files, extra_args=extra_args,
                      model_dir=model_dir)
    points.append({"name": name, "overrides": overrides, "model_dir": model_dir,
                   "command": list(launcher) + args})
  names = [p["name"] for p in points]
  if len(set(names)) != len(names):
    raise ValueError(f"two grid points share a directory name: {names}")
  return points


# --- running ------------------------------------------------------------------------
def _gfile():
  import tensorflow as tf  # gfile: local paths and gs:// alike
  return tf.io.gfile


def write_manifest(base_dir: str, points: Sequence[Mapping[str, Any]],
                   sweeps: Sequence[tuple[str, Sequence[str]]]) -> str:
  gfile = _gfile()
  gfile.makedirs(base_dir)
  path = os.path.join(base_dir, MANIFEST)
  with gfile.GFile(path, "w") as f:
    json.dump({"axes": {name: list(values) for name, values in sweeps},
               "points": [{k: p[k] for k in ("name", "overrides", "model_dir",
                                             "command")} for p in points]},
              f, indent=2)
  return path


def run_points(points: Sequence[Mapping[str, Any]], *, rerun: bool = False,
               log_to_file: bool = True) -> list[dict[str, Any]]:
  """Runs each point's command in turn; returns {name, status, seconds}.

  Output goes to the console and to `<model_dir>/train.log` (local dirs).
  A failed point is reported and the sweep goes on with the next one.
  """
  gfile = _gfile()
  results = []
  for i, point in enumerate(points, 1):
    done = os.path.join(point["model_dir"], DONE_MARKER)
    if not rerun and gfile.exists(done):
      print(f"[sweep {i}/{len(points)}] {point['name']}: done before, skipped",
            flush=True)
      results.append({"name": point["name"], "status": "skipped", "seconds": 0.0})
      continue
    print(f"[sweep {i}/{len(points)}] {point['name']}\n  "
          + shlex.join(point["command"]), flush=True)
    start = time.perf_counter()
    returncode = _run_logged(point["command"], point["model_dir"]
                             if log_to_file and "://" not in point["model_dir"]
                             else None)
    seconds = time.perf_counter() - start
    status = "ok" if returncode == 0 else f"failed (exit {returncode})"
    if returncode == 0:
      gfile.makedirs(point["model_dir"])
      with gfile.GFile(done, "w") as f:
        json.dump({"overrides": point["overrides"], "seconds": seconds}, f)
    print(f"[sweep {i}/{len(points)}] {point['name']}: {status} in "
          f"{seconds:.0f}s", flush=True)
    results.append({"name": point["name"], "status": status, "seconds": seconds})
  return results


def _run_logged(command: Sequence[str], log_dir: str | None) -> int:
  log = None
  if log_dir:
    os.makedirs(log_dir, exist_ok=True)
    log = open(os.path.join(log_dir, "train.log"), "a", encoding="utf-8")
  try:
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL":
                                 os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")})
    for line in proc.stdout:
      if log:
        log.write(line)
      # The progress and eval lines; absl's W/I/E lines stay in the log.
      if not re.match(r"^[WIE]\d{4} ", line):
        sys.stdout.write(line)
        sys.stdout.flush()
    return proc.wait()
  finally:
    if log:
      log.close()


# --- collecting -------------------------------------------------------------------------
def latest_metrics(model_dir: str, split: str | None = None
                   ) -> tuple[str, dict[str, Any]] | None:
  """(path, contents) of the newest eval metrics JSON of a run, or None."""
  gfile = _gfile()
  folder = os.path.join(model_dir, "eval")
  if not gfile.isdir(folder):
    return None
  best = None
  for filename in gfile.listdir(folder):
    m = _METRICS_FILE.match(filename)
    if m and (split is None or m.group("split") == split):
      step = int(m.group("step"))
      if best is None or step > best[0]:
        best = (step, filename)
  if best is None:
    return None
  path = os.path.join(folder, best[1])
  with gfile.GFile(path) as f:
    return path, json.load(f)


def _runs_in(base_dir: str) -> list[dict[str, Any]]:
  """The sweep's points (from sweep.json), else every sub-directory."""
  gfile = _gfile()
  manifest = os.path.join(base_dir, MANIFEST)
  if gfile.exists(manifest):
    with gfile.GFile(manifest) as f:
      return json.load(f)["points"]
  return [{"name": name.rstrip("/"), "overrides": {},
           "model_dir": os.path.join(base_dir, name.rstrip("/"))}
          for name in sorted(gfile.listdir(base_dir))
          if gfile.isdir(os.path.join(base_dir, name.rstrip("/")))]


def collect(base_dir: str, split: str | None = None) -> list[dict[str, Any]]:
  """One row per run: name, overrides, step, average F1, per-dataset F1.

  Per-dataset F1 columns are `<dataset>/<family>` (family: entity,
  relation, event, ...) as models/evaluation.py summarises them; a run
  without metrics gets a row with step None.
  """
  rows = []
  for run in _runs_in(base_dir):
    found = latest_metrics(run["model_dir"], split)
    row: dict[str, Any] = {"run": run["name"], **run.get("overrides", {}),
                           "step": None, "average_f1": None}
    if found:
      path, metrics = found
      row["step"] = metrics.get("step")
      row["average_f1"] = metrics.get("average", {}).get("f1")
      for dataset, families in sorted(metrics.get("per_dataset", {}).items()):
        for family, f1 in sorted(families.items()):
          row[f"{dataset}/{family}"] = f1
      row["metrics_file"] = path
    rows.append(row)
  return rows


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
  columns: list[str] = []
  for row in rows:
    columns += [k for k in row if k not in columns]
  # The file path goes last; it is long and only for reference.
  return [c for c in columns if c != "metrics_file"] + (
      ["metrics_file"] if "metrics_file" in columns else [])


def _cell(value: Any) -> str:
  if value is None:
    return ""
  if isinstance(value, float):
    return f"{value:.2f}"
  return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
  columns = [c for c in _columns(rows) if c != "metrics_file"]
  lines = ["| " + " | ".join(columns) + " |",
           "|" + "|".join("---:" if c not in ("run",) else "---" for c in columns) + "|"]
  for row in rows:
    lines.append("| " + " | ".join(_cell(row.get(c)).replace("|", "\\|")
                                   for c in columns) + " |")
  return "\n".join(lines) + "\n"


def write_results(base_dir: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
  gfile = _gfile()
  paths = {ext: os.path.join(base_dir, f"results.{ext}") for ext in ("md", "csv", "json")}
  with gfile.GFile(paths["md"], "w") as f:
    f.write(f"# Sweep results in `{base_dir}`\n\n" + markdown_table(rows))
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=_columns(rows))
  writer.writeheader()
  writer.writerows(rows)
  with gfile.GFile(paths["csv"], "w") as f:
    f.write(buffer.getvalue())
  with gfile.GFile(paths["json"], "w") as f:
    json.dump(list(rows), f, indent=2)
  return paths


# --- command line ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m launch.sweep", description=__doc__.splitlines()[0],
      epilog="Other --gin.NAME=VALUE / --gin_search_paths flags go to every run.")
  parser.add_argument("--base_dir", required=True,
                      help="one MODEL_DIR per grid point is made under it")
  parser.add_argument("--gin_file", action="append", default=[])
  parser.add_argument("--sweep", action="append", default=[],
                      help="NAME=[v1,v2,...]; repeat for more axes")
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--run", action="store_true", help="run the points (default)")
  mode.add_argument("--dry_run", action="store_true",
                    help="print the commands, run nothing")
  parser.add_argument("--rerun", action="store_true",
                      help="also run points that finished before")
  parser.add_argument("--tpu", help="Cloud TPU name (runs through train.sh --tpu)")
  parser.add_argument("--zone")
  parser.add_argument("--project")
  parser.add_argument("--split", default=None,
                      help="collect: eval split (default: any, newest step)")
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  command = "collect" if argv[:1] == ["collect"] else "run"
  if argv[:1] in (["collect"], ["run"]):
    argv = argv[1:]
  args, extra = _parser().parse_known_args(argv)
  bad = [a for a in extra if not a.startswith(("--gin.", "--gin_search_paths",
                                               "--gin_bindings"))]
  if bad:
    _parser().error(f"unrecognised arguments: {' '.join(bad)}")

  if command == "collect":
    rows = collect(args.base_dir, args.split)
    if not rows:
      print(f"no runs under {args.base_dir}", file=sys.stderr)
      return 1
    paths = write_results(args.base_dir, rows)
    print(markdown_table(rows))
    print("wrote " + ", ".join(paths.values()))
    return 0

  if not args.sweep:
    _parser().error("give at least one --sweep=NAME=[v1,...]")
  sweeps = [parse_sweep(s) for s in args.sweep]
  launcher = [TRAIN_SH]
  if args.tpu:
    if not args.zone:
      _parser().error("--tpu needs --zone")
    if not args.base_dir.startswith("gs://"):
      _parser().error("on a TPU pod --base_dir must be on GCS (gs://...)")
    launcher += [f"--tpu={args.tpu}", f"--zone={args.zone}"]
    if args.project:
      launcher.append(f"--project={args.project}")
  points = plan(args.base_dir, sweeps, gin_files=args.gin_file,
                extra_args=extra, launcher=launcher)
  if args.dry_run:
    for point in points:
      print(shlex.join(point["command"]))
    return 0
  write_manifest(args.base_dir, points, sweeps)
  results = run_points(points, rerun=args.rerun)
  failed = [r for r in results if r["status"].startswith("failed")]
  print(f"sweep: {len(results) - len(failed)}/{len(results)} points ok; "
        f"table: python -m launch.sweep collect --base_dir={args.base_dir}")
  if all(not r["status"].startswith("failed") for r in results):
    rows = collect(args.base_dir, args.split)
    write_results(args.base_dir, rows)
    print(markdown_table(rows))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
