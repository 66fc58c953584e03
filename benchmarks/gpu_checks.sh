#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one go, from the repository root:
#   benchmarks/gpu_checks.sh OUTDIR
# 1. the GPU kernels against the array code (tests/test_fused_updates.py), 2. compare_gpu.py,
# 3. `xpann bench` on numpy and cupy over batch sizes (the crossover) for both configurations,
# 4. the whole test suite (its CuPy column runs where a GPU works). Logs and results go to OUTDIR.
# Uses the Python environment as it is (CuPy, PyTorch and numba installed beside xpann's needs).
set -u
out=${1:?usage: benchmarks/gpu_checks.sh OUTDIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
log="$out/log.txt"

step() { echo; echo "=== $* ($(date +%T))"; }
{
  step "machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  "$python" -c "import cupy, numpy, sys; print('python', sys.version.split()[0], 'cupy', cupy.__version__, 'numpy', numpy.__version__)"
  step "install"
  if ! "$python" -m pip install -q --no-index --no-deps --no-build-isolation -e . ; then
    echo "pip install failed: running from the source tree instead"
    mkdir -p /tmp/xpann_path && ln -sfn "$PWD/cli" /tmp/xpann_path/xpann_cli
    export PYTHONPATH="$PWD:/tmp/xpann_path"
  fi
  "$python" -m xpann_cli info

  step "GPU kernels against the array code"
  timeout 180 "$python" -m pytest -q -p no:cacheprovider tests/test_fused_updates.py -x 2>&1 | tail -25

  step "xpann (CuPy) vs PyTorch (CUDA)"
  timeout 240 "$python" benchmarks/compare_gpu.py --profile --out "$out" --name compare_gpu

  step "xpann bench, tabular-small"
  timeout 150 "$python" -m xpann_cli bench --backends numpy,cupy --batch-sizes 64,256,1024,4096,16384 \
    --optimizer adam --json "$out/bench_tabular.json"
  step "xpann bench, mnist-like"
  timeout 150 "$python" -m xpann_cli bench --backends numpy,cupy --batch-sizes 64,256,1024,4096,16384 \
    --features 784 --hidden 512,256 --optimizer adam --steps 20 --json "$out/bench_mnist.json"

  step "whole test suite"
  timeout 300 "$python" -m pytest -n 8 -q -p no:cacheprovider 2>&1 | tail -40
  step "done"
} 2>&1 | tee "$log"
