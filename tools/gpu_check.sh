#!/usr/bin/env bash
# One-call GPU verification (for the lent device machine, see bench/RESULTS.md):
# build the extension with CUDA on for the local GPU's architecture only (a
# full-arch pip build is minutes longer), import it from a scratch copy of the
# package, run tests/test_cuda.py (and any extra pytest args), then the bench.
# Logs go to $OUT (or ./gpu-out). Steps are time-boxed so the tail still prints.
#
# Usage: tools/gpu_check.sh [--no-bench] [--sanitize] [--ncu] [pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-gpu-out}
mkdir -p "$OUTDIR"
BENCH=1 SANITIZE=0 NCU=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-bench) BENCH=0; shift ;;
    --sanitize) SANITIZE=1; shift ;;
    --ncu) NCU=1; shift ;;
    *) break ;;
  esac
done

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv,noheader
python3 -c "import sys, numpy, torch; print(sys.version.split()[0], 'numpy', numpy.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"

ARCH=$(python3 -c "import torch; a, b = torch.cuda.get_device_capability(); print(f'{a}{b}')" 2>/dev/null || echo 90)
BUILD=build-gpu
t0=$(date +%s)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" \
  -DCONVCORE_CUDA=ON -DCONVCORE_CUDA_ARCHITECTURES="${ARCH}-real" >"$OUTDIR/cmake.log" 2>&1 \
  || { tail -n 30 "$OUTDIR/cmake.log"; exit 1; }
cmake --build "$BUILD" --parallel "$(nproc)" >"$OUTDIR/build.log" 2>&1 \
  || { grep -E "error|Error" "$OUTDIR/build.log" | head -n 40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s (sm_${ARCH})"

scratch=$(mktemp -d)
cp -r python/convcore "$scratch/convcore"
rm -f "$scratch"/convcore/_core*.so
cp "$BUILD"/_core*.so "$scratch/convcore/"
export PYTHONPATH="$scratch"
python3 -c "import convcore.cuda as c; print('is_available', c.is_available(), c.unavailable_reason() or c.device_info())"

t0=$(date +%s)
timeout 300 python3 -m pytest -q -p no:cacheprovider -rf --tb=short \
   tests/test_cuda.py tests/runtime/test_cuda_runner.py tests/test_cli.py "$@" >"$OUTDIR/test_cuda.log" 2>&1
echo "GPU tests rc=$? in $(( $(date +%s) - t0 )) s"
grep -E "^(FAILED|ERROR)" "$OUTDIR/test_cuda.log" | cut -c1-220 | head -n 40
tail -n 3 "$OUTDIR/test_cuda.log"

if [ "$SANITIZE" = 1 ] && command -v compute-sanitizer >/dev/null; then
  timeout 120 compute-sanitizer --tool memcheck --print-limit 5 \
     python3 -m pytest -q -x -p no:cacheprovider tests/test_cuda.py \
     -k "every_kernel or conv2d_forward_matches_cpu or max_pool or relu" >"$OUTDIR/memcheck.log" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|Invalid|passed|failed" "$OUTDIR/memcheck.log" | head -n 10
fi

if [ "$NCU" = 1 ] && command -v ncu >/dev/null; then
  timeout 120 ncu --clock-control none --kernel-name regex:igemm --launch-count 4 \
     --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats \
     python3 tools/gpu_profile_layers.py >"$OUTDIR/ncu.txt" 2>&1
  echo "ncu rc=$?"
  grep -E "igemm_|Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Stall|issue" "$OUTDIR/ncu.txt" | cut -c1-150 | head -n 60
fi

if [ "$BENCH" = 1 ]; then
  t0=$(date +%s)
  timeout 200 python3 bench/bench_cuda.py --rounds 2 --min-time 0.01 --e2e-time 0.4 >"$OUTDIR/bench_cuda.log" 2>&1
  echo "bench rc=$? in $(( $(date +%s) - t0 )) s"
  sed -n '/Whole-net/,$p' "$OUTDIR/bench_cuda.log" | grep -v Warning | cut -c1-200
fi
