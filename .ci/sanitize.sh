#!/usr/bin/env bash
# Builds the extension with AddressSanitizer + UndefinedBehaviorSanitizer and
# runs the kernel tests against it. Python itself is not instrumented, so the
# sanitizer runtimes are preloaded; leak checking is off (CPython's own
# allocations would drown the report).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
build=build-asan
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVCORE_SANITIZE=ON \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
cmake --build "$build"
pkg=$(mktemp -d)
cp -r python/convcore "$pkg/"
rm -f "$pkg"/convcore/_core*.so
cp "$build"/_core*.so "$pkg/convcore/"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# --capture=sys: sanitizer reports go to fd 2 and must not be swallowed.
PYTHONPATH="$pkg" "$PY" -m pytest -q -x --capture=sys -p no:cacheprovider \
  tests/test_conv2d.py tests/test_bad_input.py tests/test_runtime_env.py \
  tests/runtime/test_native_chain.py \
  $(ls tests/test_pool.py tests/test_relu.py tests/test_conv_backward.py tests/test_conv_algos.py \
     tests/test_pw_dw.py 2>/dev/null)
