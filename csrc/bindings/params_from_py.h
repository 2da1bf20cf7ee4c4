// Conv/pool geometry from Python-side shapes and argument lists, shared by
// the CPU and CUDA bindings. Each throws ValueError naming `op`.
#pragma once
#include <vector>

#include "convcore/params.h"
#include "ndarray.h"

namespace convcore_py {

using Shape = std::vector<index_t>;

convcore::Conv2dParams conv_params_from(const char* op, const Shape& x_shape, const Shape& w_shape,
                                        const Shape& stride, const Shape& pad, const Shape& dil,
                                        index_t groups);

convcore::Pool2dParams pool_params_from(const char* op, const Shape& x_shape, const Shape& k,
                                        const Shape& stride, const Shape& pad, const Shape& dil,
                                        bool ceil_mode, bool count_include_pad);

}  // namespace convcore_py
