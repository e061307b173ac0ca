#!/usr/bin/env bash
# Train on this machine, or on every worker of a Cloud TPU VM, with the same flags.
#
# Local (this machine's devices):
#   launch/train.sh --gin_file=gin/local/default.gin
#   launch/train.sh --gin_file=gin/models/tiny.gin --gin_file=gin/runs/finetune.gin \
#     --gin.MIXTURE_OR_TASK_NAME="'ie_sample_default'" --gin.TRAIN_STEPS=1000 \
#     --gin.MODEL_DIR="'/tmp/run'"
#
# Cloud TPU (runs the same command on all workers; MODEL_DIR must be on GCS so
# every worker writes its shards of the checkpoints to the same place):
#   launch/train.sh --tpu=my-v4-32 --zone=us-central2-b [--project=my-proj] \
#     [--repo_dir='~/ie-t5x'] [--python=python3] \
#     --gin_file=gin/models/flan_t5/base.gin --gin_file=gin/runs/finetune.gin \
#     --gin.MIXTURE_OR_TASK_NAME="'ie_instructuie_supervised'" \
#     --gin.MODEL_DIR="'gs://my-bucket/runs/flan_base_ie'" --gin.TRAIN_STEPS=20000
#   The repository must already be at --repo_dir on every worker (e.g. once:
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \
#     --command="git clone URL ~/ie-t5x && cd ~/ie-t5x && pip install -e .").
#
# Other launcher (eval/infer): --module=launch.eval or --module=launch.infer.
# --dry_run prints the command instead of running it.
#
# GPU clusters (SLURM): one process per GPU node (or per GPU), e.g.
#   srun --nodes=4 --ntasks-per-node=1 --gpus-per-node=8 \
#     python -m launch.train --gin_file=... --gin.MODEL_DIR="'/shared/run'"
#   jax.distributed.initialize() detects SLURM by itself; elsewhere pass
#   --coordinator_address=HOST0:1234 --num_processes=N --process_id=I (or set
#   JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID).
set -euo pipefail

tpu="" zone="" project="" dry_run=0 module="launch.train"
python="${PYTHON:-}" repo_dir="~/ie-t5x"
args=()
for arg in "$@"; do
  case "$arg" in
    --tpu=*) tpu="${arg#*=}" ;;
    --zone=*) zone="${arg#*=}" ;;
    --project=*) project="${arg#*=}" ;;
    --repo_dir=*) repo_dir="${arg#*=}" ;;
    --python=*) python="${arg#*=}" ;;
    --module=*) module="${arg#*=}" ;;
    --dry_run) dry_run=1 ;;
    --help|-h) sed -n '2,33p' "$0"; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -z "$tpu" ]]; then
  # Local: the repository's virtual environment when there is one.
  if [[ -z "$python" ]]; then
    if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; else python=python3; fi
  fi
  cmd=("$python" -m "$module" "${args[@]}")
  if (( dry_run )); then
    printf 'cd %q &&' "$here"; printf ' %q' "${cmd[@]}"; printf '\n'
    exit 0
  fi
  cd "$here"
  exec "${cmd[@]}"
fi

if [[ -z "$zone" ]]; then
  echo "train.sh: --tpu needs --zone (e.g. --zone=us-central2-b)" >&2
  exit 2
fi
for arg in "${args[@]}"; do
  if [[ "$arg" == --gin.MODEL_DIR=* && "$arg" != *gs://* ]]; then
    echo "train.sh: on a TPU pod MODEL_DIR must be on GCS (gs://...), got ${arg#*=}" >&2
    exit 2
  fi
done

# The remote command: same module and flags on every worker; each worker
# finds its process index from the TPU metadata (jax.distributed).
remote="cd ${repo_dir} && ${python:-python3} -m ${module}"
for arg in "${args[@]}"; do remote+=" $(printf '%q' "$arg")"; done
gcloud_cmd=(gcloud compute tpus tpu-vm ssh "$tpu" "--zone=$zone")
[[ -n "$project" ]] && gcloud_cmd+=("--project=$project")
gcloud_cmd+=(--worker=all "--command=$remote")

if (( dry_run )); then
  printf '%q ' "${gcloud_cmd[@]}"; printf '\n'
  exit 0
fi
exec "${gcloud_cmd[@]}"
