#!/usr/bin/env bash
# Developer build: compiles the extension into build-dev/ and links it into
# python/convcore/ so that `PYTHONPATH=python pytest` uses it. Users run
# `pip install .` instead. Extra arguments go to cmake (e.g. -DCONVCORE_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build-dev}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" "$@" >/dev/null
cmake --build "$BUILD"
so=$(ls "$BUILD"/_core*.so)
ln -sf "$(realpath "$so")" python/convcore/
echo "built $so"
