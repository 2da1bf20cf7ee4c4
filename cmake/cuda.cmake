# Optional CUDA kernels (CONVCORE_CUDA=ON): a static library `convcore_cuda`
# built from csrc/convcore/cuda/*.cu and linked into _core by CMakeLists.txt.
#
# The CUDA runtime is linked statically, so the extension needs no libcudart
# at run time, and it loads on machines without a driver or GPU: the runtime
# only dlopen()s libcuda.so when first asked, and convcore turns "no driver /
# no device" into convcore.cuda.is_available() == False.

# Architectures: override with -DCONVCORE_CUDA_ARCHITECTURES="80" (faster
# builds while iterating) or any CMAKE_CUDA_ARCHITECTURES syntax. Default: real
# code for the common data-centre / desktop generations plus PTX of the newest
# one, so GPUs newer than the list still run (the driver JITs the PTX).
# CUDA 13 dropped Volta (sm_70) and older, hence two lists.
if(NOT DEFINED CONVCORE_CUDA_ARCHITECTURES AND NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "CONVCORE_CUDA=ON but no CUDA compiler (nvcc) was found; "
                        "install the CUDA toolkit or set CMAKE_CUDA_COMPILER")
  endif()
  execute_process(COMMAND ${CMAKE_CUDA_COMPILER} --version OUTPUT_VARIABLE _cc_nvcc_ver)
  if(_cc_nvcc_ver MATCHES "release ([0-9]+)\\.")
    set(_cc_cuda_major ${CMAKE_MATCH_1})
  else()
    set(_cc_cuda_major 12)
  endif()
  if(_cc_cuda_major GREATER_EQUAL 13)
    set(CONVCORE_CUDA_ARCHITECTURES "75-real;80-real;86-real;89-real;90-real;90-virtual")
  else()
    set(CONVCORE_CUDA_ARCHITECTURES "70-real;75-real;80-real;86-real;89-real;90-real;90-virtual")
  endif()
endif()
if(DEFINED CONVCORE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "${CONVCORE_CUDA_ARCHITECTURES}")
endif()

enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
message(STATUS "convcore: CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")

file(GLOB CC_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/csrc/convcore/cuda/*.cu)
add_library(convcore_cuda STATIC ${CC_CUDA_SOURCES})
set_target_properties(convcore_cuda PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_SEPARABLE_COMPILATION OFF)
target_include_directories(convcore_cuda PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
# --expt-relaxed-constexpr: std::numeric_limits in device code.
target_compile_options(convcore_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-O3 --expt-relaxed-constexpr -lineinfo>)
target_link_libraries(convcore_cuda PUBLIC CUDA::cudart_static)

# Host emulation of the kernels' index math against the CPU kernels; runs
# without a GPU (tests/cuda_host/emulate_kernels.cu, .ci/cuda-build.sh).
option(CONVCORE_CUDA_HOST_CHECK "Build the host emulation check of the CUDA kernels" OFF)
if(CONVCORE_CUDA_HOST_CHECK)
  add_executable(convcore_cuda_host_check ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda_host/emulate_kernels.cu)
  target_compile_options(convcore_cuda_host_check PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  target_link_libraries(convcore_cuda_host_check PRIVATE convcore_cpu CUDA::cudart_static)
endif()
