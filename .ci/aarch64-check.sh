#!/usr/bin/env bash
# Cross-builds the C++ library for aarch64 (portable kernels only, no Python)
# and runs its smoke test under qemu. Skips when the cross compiler or qemu
# is missing (Debian: g++-aarch64-linux-gnu qemu-user).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "aarch64 check skipped: needs aarch64-linux-gnu-g++ and qemu-aarch64"; exit 0
fi
build=build-aarch64
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVCORE_PYTHON=OFF \
  -DCONVCORE_CPP_TESTS=ON -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ >/dev/null
cmake --build "$build" --target convcore_smoke
OMP_NUM_THREADS=2 qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/convcore_smoke"
