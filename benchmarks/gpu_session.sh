#!/usr/bin/env bash
# One GPU lease's work, a step per device call (each fits the 10-minute limit):
#   check    the fused cuDNN stacks against Keras's per-layer path (tests/test_model.py on cuDNN: JAX, then torch)
#   grid     training chars/s over torch_reference's grid, fused and per-layer, beside PyTorch fp32/bf16 (one round
#            each: a lone process on a dedicated GPU drifts less than on the shared CPU, and the step has 10 minutes)
#   grid-torch   the same grid on the torch backend (PyTorch's cuDNN LSTM inside Keras), beside PyTorch
#   quality  NAME [kerasrnn train options]: the shakespeare preset for $BUDGET seconds (default 300)
#   torch-quality   the PyTorch reference's quality run (3x1024, dropout 0.35) for $BUDGET seconds
#   distributed  training steps/s of the shakespeare preset on one GPU with the distribution API (--devices 1)
#                and without it, alternating, 3 rounds each (target: within 3% of each other)
# Before the lease, from the repo root here: ../shared/gpu/fetch-wheels.sh && cp -r ../shared shared
# Device call: carry [".whl", "shared"], command `bash benchmarks/gpu_session.sh STEP ...`.
# Results land in $OUT: grid.jsonl, NAME.csv (history) and NAME.log, torch_quality.jsonl, distributed.jsonl.
set -euo pipefail
out=${OUT:-/tmp/kerasrnn-out}
mkdir -p "$out"
site=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --target "$site" .whl/*.whl
export PYTHONPATH="$site:$PWD:$PWD/export" KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
step=$1
shift
case $step in
  check)
    python3 -m pytest -q -p no:cacheprovider tests/test_model.py
    KERAS_BACKEND=torch python3 -m pytest -q -p no:cacheprovider tests/test_model.py ;;
  grid)
    python3 benchmarks/train_throughput.py --grid gpu --steps-per-execution 16 --fused both --torch --rounds 1 "$@" \
      | tee "$out/grid.jsonl" ;;
  grid-torch)
    KERAS_BACKEND=torch python3 benchmarks/train_throughput.py --grid gpu --fused both --torch --rounds 1 "$@" \
      | tee "$out/grid_torch.jsonl" ;;
  quality)
    name=$1
    shift
    python3 -m kerasrnn train --preset shakespeare --text shared/data/tinyshakespeare.txt \
      --max-seconds "${BUDGET:-300}" --run-dir "/tmp/runs/$name" "$@" 2>&1 | tee "$out/$name.log"
    cp "/tmp/runs/$name/history.csv" "$out/$name.csv" ;;
  torch-quality)
    python3 shared/bench/torch_reference.py quality \
      '{"L":3,"H":1024,"E":256,"B":128,"T":128,"dropout":0.35,"lr":0.002}' "${BUDGET:-300}" \
      | tee "$out/torch_quality.jsonl" ;;
  distributed)
    python3 benchmarks/distributed_steps.py --preset shakespeare --modes plain,1 --rounds 3 --steps 64 "$@" \
      | tee "$out/distributed.jsonl" ;;
  *)
    echo "usage: bash benchmarks/gpu_session.sh check|grid|grid-torch|quality NAME [options]|torch-quality|distributed" >&2
    exit 2 ;;
esac
