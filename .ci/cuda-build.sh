#!/usr/bin/env bash
# CI step for the optional CUDA build: when nvcc is present, configure and
# build the extension with -DCONVCORE_CUDA=ON in its own build dir (compile
# and link only, so the CUDA sources never rot), run the host emulation of
# the kernels' index math (tests/cuda_host/), then import that build from
# a scratch copy of the package and run tests/test_cuda.py against it (GPU
# tests skip cleanly where no GPU is visible), with the runner's device tests. Without nvcc it says so and
# succeeds. The normal CPU build (build-dev/, python/convcore/_core*.so) is
# not touched.
#
# Env: CUDA_BUILD_DIR (default build-ci-cuda), CONVCORE_CUDA_ARCHS (default
# "75-real;80-real": both sides of the sm_80 TF32 guard, kept short because CI
# machines are small; pip installs use the full list in cmake/cuda.cmake).
set -euo pipefail
cd "$(dirname "$0")/.."

NVCC=$(command -v nvcc || true)
if [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [ -z "$NVCC" ]; then
  echo "cuda-build: nvcc not found, skipping the CUDA build"
  exit 0
fi

BUILD=${CUDA_BUILD_DIR:-build-ci-cuda}
ARCHS=${CONVCORE_CUDA_ARCHS:-75-real;80-real}
echo "cuda-build: $("$NVCC" --version | tail -n 2 | head -n 1), archs $ARCHS -> $BUILD/"
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER="$NVCC" \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" \
  -DCONVCORE_CUDA=ON -DCONVCORE_CUDA_ARCHITECTURES="$ARCHS" -DCONVCORE_CUDA_HOST_CHECK=ON >/dev/null
cmake --build "$BUILD" --parallel "${CI_JOBS:-2}"

# The kernels' index math, run on the CPU against the CPU kernels (no GPU
# needed; see tests/cuda_host/emulate_kernels.cu for what this covers).
"$BUILD"/convcore_cuda_host_check | tail -n 1

# Import the CUDA build from a scratch package copy and run the CUDA tests.
so=$(ls "$BUILD"/_core*.so)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r python/convcore "$scratch/convcore"
rm -f "$scratch"/convcore/_core*.so
cp "$so" "$scratch/convcore/"
PYTHONPATH="$scratch" python3 -c \
  "import convcore.cuda as c; assert c.is_built(); print('cuda-build: import ok, is_available() =', c.is_available(), '|', c.unavailable_reason() or c.device_info()['name'])"
PYTHONPATH="$scratch" python3 -m pytest -q -p no:cacheprovider \
   tests/test_cuda.py tests/runtime/test_cuda_runner.py
