// _core.gemm: float32 matrix products on convcore's own SGEMM and job pool.
// The runner's Gemm/MatMul and nn's Linear use it instead of numpy's BLAS,
// whose threads spin after each call and took the second core from the
// kernel workers for the next layers (a 2-thread run lost its speedup).
// The optional bias/relu epilogue is Linear's forward (as W @ x^T).
#include "convcore/gemm.h"
#include "ndarray.h"

namespace convcore_py {

void bind_gemm(py::module_& m) {
  m.def(
      "gemm",
      [](const farray& a, const farray& b, bool trans_a, bool trans_b, py::object bias,
         bool relu) {
        if (a.ndim() != 2 || b.ndim() != 2)
          throw py::value_error("gemm: A and B must be 2-D");
        const index_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
        const index_t Kb = trans_b ? b.shape(1) : b.shape(0), N = trans_b ? b.shape(0) : b.shape(1);
        if (K != Kb)
          throw py::value_error("gemm: cannot multiply " + std::to_string(M) + "x" +
                                std::to_string(K) + " by " + std::to_string(Kb) + "x" +
                                std::to_string(N));
        // Epilogue (nn's Linear): one bias per row of C, then an optional ReLU.
        farray bias_a;
        const float* bias_p = nullptr;
        if (!bias.is_none()) {
          if (!py::isinstance<farray>(bias))
            throw py::type_error("gemm: bias must be a C-contiguous float32 array");
          bias_a = bias.cast<farray>();
          if (bias_a.ndim() != 1 || bias_a.shape(0) != M)
            throw py::value_error("gemm: bias must have shape (" + std::to_string(M) +
                                  ",), one value per row of the result");
          bias_p = bias_a.data();
        }
        farray c = empty({M, N}, "gemm");
        convcore::GemmArgs g;
        g.trans_a = trans_a;
        g.trans_b = trans_b;
        g.M = M;
        g.N = N;
        g.K = K;
        g.A = a.data();
        g.lda = a.shape(1);
        g.B = b.data();
        g.ldb = b.shape(1);
        g.C = c.mutable_data();
        g.ldc = N;
        g.ep.bias = bias_p;
        if (relu) g.ep.lo = 0.f;
        if (M > 0 && N > 0) {
          py::gil_scoped_release nogil;
          convcore::gemm(g);
        }
        return c;
      },
      py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
      py::arg("bias") = py::none(), py::arg("relu") = false,
      "op(A) @ op(B) for 2-D float32 arrays (op: transpose if trans_*), plus bias[i] on row i "
      "and max(., 0) if relu.");
}

}  // namespace convcore_py
