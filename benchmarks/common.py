"""Shared benchmark helpers: machine facts, timing that notices a busy machine, reports.

On a small shared CPU any other busy process slows a timed run several times
over, so every timed run also measures the CPU time that *other* processes
used meanwhile (from /proc/stat minus our own process), and runs where others
used more than `busy_threshold` cores are flagged and left out of the minimum.
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import time
from typing import Any, Callable, Sequence

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_VERSIONED_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "transformers")


# --------------------------------------------------------------------------
# Machine and software


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def _memory_gib() -> float | None:
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("MemTotal:"):
          return round(int(line.split()[1]) / 2**20, 1)
  except OSError:
    pass
  return None


def git_commit() -> str:
  """HEAD's short hash, with '+dirty' when tracked files differ from it."""
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    return commit + ("+dirty" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def package_versions(names: Sequence[str] = _VERSIONED_PACKAGES) -> dict[str, str]:
  versions = {}
  for name in names:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = "not installed"
  return versions


def machine_info() -> dict[str, Any]:
  """What a reader needs to compare numbers across runs."""
  return {
      "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "hostname": platform.node(),
      "platform": platform.platform(),
      "python": platform.python_version(),
      "cpu": _cpu_model(),
      "cpu_count": os.cpu_count(),
      "memory_gib": _memory_gib(),
      "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
      "git_commit": git_commit(),
      "versions": package_versions(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


# --------------------------------------------------------------------------
# CPU use by other processes


def _machine_busy_seconds() -> float | None:
  """CPU seconds all processes have spent busy since boot (from /proc/stat)."""
  try:
    with open("/proc/stat", encoding="utf-8") as f:
      fields = f.readline().split()
  except OSError:
    return None
  # cpu user nice system idle iowait irq softirq steal ...; idle and iowait are not busy.
  values = [int(v) for v in fields[1:9]]
  busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
  return busy / os.sysconf("SC_CLK_TCK")


def _own_busy_seconds() -> float:
  times = os.times()  # All threads of this process plus waited-for children.
  return times.user + times.system + times.children_user + times.children_system


@dataclasses.dataclass
class Timing:
  """One timed run: wall seconds and the cores other processes kept busy meanwhile."""
  wall_s: float
  other_cores: float | None  # Mean number of cores busy with other processes.
  busy: bool


class OtherCpuMonitor:
  """Context manager: wall time and CPU used by other processes during the block."""

  def __init__(self, busy_threshold: float = 0.2):
    self.busy_threshold = busy_threshold
    self.timing: Timing | None = None

  def __enter__(self) -> "OtherCpuMonitor":
    self._machine = _machine_busy_seconds()
    self._own = _own_busy_seconds()
    self._start = time.perf_counter()
    return self

  def __exit__(self, *exc_info) -> None:
    wall = time.perf_counter() - self._start
    machine = _machine_busy_seconds()
    other = None
    if machine is not None and self._machine is not None and wall > 0:
      own = _own_busy_seconds() - self._own
      other = max(0.0, (machine - self._machine) - own) / wall
    busy = other is not None and other > self.busy_threshold
    self.timing = Timing(wall_s=wall, other_cores=other, busy=busy)


@dataclasses.dataclass
class TimingSummary:
  """Repeated timings of one measurement and the figure we report."""
  best_s: float  # Minimum over quiet runs (over all runs when none was quiet).
  all_quiet: bool
  quiet_runs: int
  runs: list[Timing]

  def to_json(self) -> dict[str, Any]:
    return {
        "best_s": self.best_s,
        "all_quiet": self.all_quiet,
        "quiet_runs": self.quiet_runs,
        "runs": [dataclasses.asdict(run) for run in self.runs],
    }


def time_repeats(fn: Callable[[], Any], *, repeats: int, busy_threshold: float = 0.2,
                 max_extra_runs: int = 0) -> TimingSummary:
  """Times `fn()` `repeats` times (fn must block until its result is ready).

  Busy runs are retried up to `max_extra_runs` more times, so a quiet minimum
  is likelier; the minimum comes from quiet runs whenever there is one.
  """
  runs: list[Timing] = []
  extra = 0
  while True:
    monitor = OtherCpuMonitor(busy_threshold)
    with monitor:
      fn()
    runs.append(monitor.timing)
    quiet = [run for run in runs if not run.busy]
    if len(runs) >= repeats and (len(quiet) >= repeats or extra >= max_extra_runs):
      break
    if len(runs) >= repeats:
      extra += 1
  quiet = [run for run in runs if not run.busy]
  best = min(run.wall_s for run in (quiet or runs))
  return TimingSummary(best_s=best, all_quiet=len(quiet) == len(runs),
                       quiet_runs=len(quiet), runs=runs)


# --------------------------------------------------------------------------
# Hardware ceilings: what a step could cost at best on this machine


def cpu_matmul_ceiling(n: int, repeats: int, busy_threshold: float) -> dict[str, Any]:
  """FLOP/s of an n x n x n float32 `jnp.dot`: the CPU's practical matmul peak."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, b).block_until_ready()
  summary = time_repeats(lambda: dot(a, b).block_until_ready(), repeats=repeats,
                         busy_threshold=busy_threshold, max_extra_runs=repeats)
  return {"n": n, "flops_per_s": 2.0 * n ** 3 / summary.best_s, "timing": summary.to_json()}


def cpu_read_bandwidth(num_bytes: int, repeats: int, busy_threshold: float) -> dict[str, Any]:
  """Bytes/s of streaming through a float32 array of `num_bytes`: the read ceiling.

  Size it like the data a step must read (a decoding step reads every decoder
  weight once), so caches help it exactly as much as they can help the step.
  The faster of a jitted sum and a matrix-vector product (how decoding reads
  its weights) over the array, each the minimum of at least 20 runs.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  width = 256
  weights = jax.random.normal(jax.random.key(0), (width, max(1, num_bytes // (4 * width))),
                              jnp.float32)
  vector = jax.random.normal(jax.random.key(1), (1, width), jnp.float32)
  reads = {"sum": (jax.jit(jnp.sum), (weights,)), "matvec": (jax.jit(jnp.dot), (vector, weights))}
  best_s, timings = float("inf"), {}
  for name, (fn, args) in reads.items():
    fn(*args).block_until_ready()
    summary = time_repeats(lambda: fn(*args).block_until_ready(), repeats=max(repeats, 20),
                           busy_threshold=busy_threshold, max_extra_runs=repeats)
    timings[name] = summary.to_json()
    best_s = min(best_s, summary.best_s)
  size = int(weights.size * 4)
  return {"bytes": size, "bytes_per_s": size / best_s, "timing": timings}


# --------------------------------------------------------------------------
# Reports


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  def cell(value: Any) -> str:
    if isinstance(value, float):
      return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)

  lines = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
  lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def machine_markdown(info: dict[str, Any]) -> str:
  versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
  return (f"Machine: {info['cpu']} ({info['cpu_count']} cores, {info['memory_gib']} GiB), "
          f"{info['platform']}, Python {info['python']}.\n"
          f"Versions: {versions}.\nCommit: {info['git_commit']}, {info['timestamp']}.")


def write_results(name: str, payload: dict[str, Any], markdown: str,
                  results_dir: str = RESULTS_DIR) -> tuple[str, str]:
  """Writes results/<name>.json and results/<name>.md; returns both paths."""
  os.makedirs(results_dir, exist_ok=True)
  json_path = os.path.join(results_dir, f"{name}.json")
  md_path = os.path.join(results_dir, f"{name}.md")
  with open(json_path, "w", encoding="utf-8") as f:
    json.dump(payload, f, indent=2, sort_keys=True, default=str)
    f.write("\n")
  with open(md_path, "w", encoding="utf-8") as f:
    f.write(markdown.rstrip() + "\n")
  return json_path, md_path


def report(result: dict[str, Any], markdown: str, name: str,
           results_dir: str = RESULTS_DIR) -> None:
  """Writes results/<name>.{json,md} and prints the table and where it went."""
  json_path, md_path = write_results(name, result, markdown, results_dir)
  print(markdown)
  print(f"\nwrote {json_path} and {md_path}")


def time_interleaved(fns: dict[str, Callable[[], Any]], *, repeats: int,
                     busy_threshold: float = 0.2, max_extra_runs: int = 0
                     ) -> dict[str, TimingSummary]:
  """Times several functions in turn (a, b, a, b, ...), `repeats` runs each.

  Interleaving puts every side under the same drift in machine load, so the
  ratio of their minima is fairer than timing one side after the other. Busy
  rounds are retried up to `max_extra_runs` more times.
  """
  runs: dict[str, list[Timing]] = {name: [] for name in fns}
  extra = 0
  while True:
    for name, fn in fns.items():
      monitor = OtherCpuMonitor(busy_threshold)
      with monitor:
        fn()
      runs[name].append(monitor.timing)
    rounds = len(next(iter(runs.values())))
    all_quiet = all(sum(not r.busy for r in timings) >= repeats for timings in runs.values())
    if rounds >= repeats and (all_quiet or extra >= max_extra_runs):
      break
    if rounds >= repeats:
      extra += 1
  summaries = {}
  for name, timings in runs.items():
    quiet = [run for run in timings if not run.busy]
    summaries[name] = TimingSummary(
        best_s=min(run.wall_s for run in (quiet or timings)),
        all_quiet=len(quiet) == len(timings), quiet_runs=len(quiet), runs=timings)
  return summaries


# --------------------------------------------------------------------------
# Memory


def reset_peak_rss() -> bool:
  """Resets this process's resident-set high-water mark (Linux: clear_refs 5)."""
  try:
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
      f.write("5")
    return True
  except OSError:
    return False


def rss_bytes() -> dict[str, int | None]:
  """Current (VmRSS) and high-water (VmHWM) resident memory of this process."""
  out: dict[str, int | None] = {"rss": None, "peak_rss": None}
  try:
    with open("/proc/self/status", encoding="utf-8") as f:
      for line in f:
        if line.startswith("VmRSS:"):
          out["rss"] = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
          out["peak_rss"] = int(line.split()[1]) * 1024
  except OSError:
    pass
  return out
