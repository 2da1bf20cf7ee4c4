// _core.NativeChain: a run of the ONNX runner's nodes (packed convs, pools,
// in-place concats, the classifier's Flatten and Gemm) executed in one call,
// the GIL released once, values in between never becoming Python objects.
//
// Why: between two kernels the Python executor spends ~5-10 us per node
// (dict lookups, argument checks, pybind dispatch, a numpy array per output),
// and after a conv has evicted the caches that code runs cold. On 2 threads
// that was 15-18% of SqueezeNet's and MobileNetV2's run time, with the other
// thread spinning idle (perf, 2026-12-04). Here the same sequence costs a
// vector of steps.
//
// Any error (a shape the kernels refuse, a dtype other than float32, an
// allocation refused) raises; the Python executor then re-runs the chain's
// nodes one by one, which gives the node-named error (runtime/executor.py).
// The chain writes only buffers it allocated, so that re-run is safe.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "convcore/gemm.h"
#include "convcore/pool.h"
#include "ndarray.h"
#include "packed_conv.h"
#include "params_from_py.h"

namespace convcore_py {

namespace {

// One value of a run: its shape and data; `owner` frees the memory when the
// last value using it (a concat and its channel ranges) is dropped. Inputs
// from Python have no owner: the caller's list keeps them alive. A conv's
// channel range of a batched concat's output is not contiguous: its images
// lie img_stride floats apart (0: contiguous); only its concat reads it.
struct Value {
  Shape shape;
  float* data = nullptr;
  std::shared_ptr<float> owner;
  index_t img_stride = 0;
};

// Plain malloc, as numpy's arrays on the node-by-node path: the kernels take
// any alignment, and 64-byte aligned_alloc fragmented glibc's heap (ResNet-50
// at batch 8 held 88 MB more at its peak).
std::shared_ptr<float> allocate(const Shape& shape, const char* op) {
  check_allocation(shape, sizeof(float), op);
  index_t n = 1;
  for (index_t d : shape) n *= d;
  float* p = static_cast<float*>(std::malloc(size_t(std::max<index_t>(n, 1)) * sizeof(float)));
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<float>(p, [](float* q) { std::free(q); });
}

enum class Kind { Conv, PwDw, MaxPool, AvgPool, GlobalAvg, GlobalMax, Concat, Flatten, Gemm };

struct Step {
  Kind kind;
  std::vector<int> in;  // value ids: x (and a residual for convs), or the concat's parts
  int out = -1;
  std::vector<int> frees;  // values dead after this step
  py::object holder;       // keeps the packed conv alive
  const PyPackedConv2d* conv = nullptr;
  const PyPackedPwDw* pwdw = nullptr;
  int cat = -1;            // batch 1: write into this concat value's channels
  index_t c0 = 0, total = 0;
  Shape k, s, pad, dil;    // pooling window
  bool ceil = false, cip = false;
  index_t axis = 1;        // Flatten
  bool trans_b = false;    // Gemm
};

class NativeChain {
 public:
  explicit NativeChain(int nvalues) : nvalues_(nvalues) {
    if (nvalues <= 0) throw py::value_error("NativeChain: needs at least one value");
  }

  void conv(py::object packed, int x, int residual, int out, int cat, index_t c0,
            index_t total, std::vector<int> frees) {
    Step s = base(x, out, std::move(frees));
    s.holder = packed;
    if (py::isinstance<PyPackedConv2d>(packed)) {
      s.kind = Kind::Conv;
      s.conv = packed.cast<const PyPackedConv2d*>();
    } else {
      s.kind = Kind::PwDw;
      s.pwdw = packed.cast<const PyPackedPwDw*>();
    }
    if (residual >= 0) s.in.push_back(check_id(residual));
    s.cat = cat < 0 ? -1 : check_id(cat);
    s.c0 = c0;
    s.total = total;
    steps_.push_back(std::move(s));
  }

  void pool(bool is_max, int x, int out, Shape k, Shape st, Shape pad, Shape dil, bool ceil,
            bool cip, std::vector<int> frees) {
    Step s = base(x, out, std::move(frees));
    s.kind = is_max ? Kind::MaxPool : Kind::AvgPool;
    s.k = std::move(k);
    s.s = std::move(st);
    s.pad = std::move(pad);
    s.dil = std::move(dil);
    s.ceil = ceil;
    s.cip = cip;
    steps_.push_back(std::move(s));
  }

  void global_pool(bool is_max, int x, int out, std::vector<int> frees) {
    Step s = base(x, out, std::move(frees));
    s.kind = is_max ? Kind::GlobalMax : Kind::GlobalAvg;
    steps_.push_back(std::move(s));
  }

  // A batch-1 Concat along channels whose parts the convs wrote in place;
  // at other batch sizes it copies.
  void concat(std::vector<int> parts, int out, std::vector<int> frees) {
    if (parts.empty()) throw py::value_error("NativeChain: concat of nothing");
    Step s = base(parts[0], out, std::move(frees));
    s.kind = Kind::Concat;
    for (size_t i = 1; i < parts.size(); ++i) s.in.push_back(check_id(parts[i]));
    steps_.push_back(std::move(s));
  }

  // Flatten (a view: the same memory under a 2-D shape).
  void flatten(int x, int out, index_t axis, std::vector<int> frees) {
    Step s = base(x, out, std::move(frees));
    s.kind = Kind::Flatten;
    s.axis = axis;
    steps_.push_back(std::move(s));
  }

  // ONNX Gemm with alpha = beta = 1, A not transposed: y = A op(B) + C, C
  // absent, (N,), (1, N) or (M, N) (the classifier's last layer).
  void gemm(int a, int b, int c, int out, bool trans_b, std::vector<int> frees) {
    Step s = base(a, out, std::move(frees));
    s.kind = Kind::Gemm;
    s.in.push_back(check_id(b));
    if (c >= 0) s.in.push_back(check_id(c));
    s.trans_b = trans_b;
    steps_.push_back(std::move(s));
  }

  size_t size() const { return steps_.size(); }

  // inputs[i] is value in_ids[i]; returns the values out_ids as arrays.
  py::list run(py::list inputs, const std::vector<int>& in_ids,
               const std::vector<int>& out_ids) const {
    if (inputs.size() != in_ids.size())
      throw py::value_error("NativeChain: one input per input id");
    std::vector<Value> v(static_cast<size_t>(nvalues_));
    std::vector<farray> held;
    held.reserve(in_ids.size());
    for (size_t i = 0; i < in_ids.size(); ++i) {
      py::handle a = inputs[i];
      if (!py::isinstance<py::array>(a))
        throw py::type_error("NativeChain: inputs must be numpy arrays");
      py::array arr = py::reinterpret_borrow<py::array>(a);
      if (!arr.dtype().is(py::dtype::of<float>()) ||
          !(arr.flags() & py::array::c_style))
        throw py::type_error("NativeChain: inputs must be C-contiguous float32");
      held.push_back(arr.cast<farray>());
      Value& x = v[size_t(check_id(in_ids[i]))];
      x.shape = shape_of(held.back());
      x.data = const_cast<float*>(held.back().data());
    }
    {
      py::gil_scoped_release nogil;
      for (const Step& s : steps_) {
        exec(s, v);
        for (int f : s.frees) v[size_t(f)] = Value();
      }
    }
    py::list outs;
    for (int id : out_ids) {
      Value& x = v[size_t(check_id(id))];
      if (!x.owner || x.img_stride)
        throw py::value_error("NativeChain: an output is not the chain's own memory");
      auto* keep = new std::shared_ptr<float>(x.owner);
      py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<float>*>(p); });
      std::vector<py::ssize_t> shape(x.shape.begin(), x.shape.end());
      outs.append(farray(shape, x.data, base));
    }
    return outs;
  }

 private:
  int nvalues_;
  std::vector<Step> steps_;

  int check_id(int id) const {
    if (id < 0 || id >= nvalues_) throw py::value_error("NativeChain: value id out of range");
    return id;
  }

  Step base(int x, int out, std::vector<int> frees) const {
    Step s;
    s.in.push_back(check_id(x));
    s.out = check_id(out);
    for (int f : frees) check_id(f);
    s.frees = std::move(frees);
    return s;
  }

  // A step's input; contiguous unless `part` (a concat reading its parts).
  static const Value& need(const std::vector<Value>& v, int id, bool part = false) {
    const Value& x = v[size_t(id)];
    if (!x.data) throw py::value_error("NativeChain: a step's input was not computed");
    if (x.img_stride && !part)
      throw py::value_error("NativeChain: a concat's channel range read as a whole tensor");
    return x;
  }

  static Value fresh(const Shape& shape, const char* op) {
    Value y;
    y.shape = shape;
    y.owner = allocate(shape, op);
    y.data = y.owner.get();
    return y;
  }

  static void exec(const Step& s, std::vector<Value>& v) {
    const Value& x = need(v, s.in[0], s.kind == Kind::Concat);
    switch (s.kind) {
      case Kind::Conv:
      case Kind::PwDw: {
        const convcore::Conv2dParams p =
            s.conv ? s.conv->params_for(x.shape) : s.pwdw->params_for(x.shape);
        const Shape ys = {p.N, p.K, p.OH, p.OW};
        const float* res = nullptr;
        if (s.in.size() > 1) {
          const Value& r = need(v, s.in[1]);
          if (r.shape != ys) throw py::value_error("conv2d: residual must have the output's shape");
          res = r.data;
        }
        Value y;
        const index_t ohw = p.OH * p.OW;
        // A channel range of the concat's output: at batch 1 contiguous; at
        // batch N written image by image (below) where a plane is large
        // enough for one image's conv to split well over the threads (a
        // concat's parts share OH x OW, so they all agree).
        if (s.cat >= 0 && (p.N == 1 || ohw >= 196)) {
          Value& c = v[size_t(s.cat)];
          const Shape cs = {p.N, s.total, p.OH, p.OW};
          if (!c.data) c = fresh(cs, "conv2d");
          if (c.shape != cs || s.c0 + p.K > s.total)
            throw py::value_error("conv2d: concat parts disagree in shape");
          y.shape = ys;
          y.owner = c.owner;
          y.data = c.data + s.c0 * ohw;
          if (p.N > 1) y.img_stride = s.total * ohw;
        } else {
          y = fresh(ys, "conv2d");
        }
        if (y.data == x.data) throw py::value_error("conv2d: output aliases the input");
        auto run = [&](const convcore::Conv2dParams& q, const float* xq, float* yq,
                       const float* rq) {
          if (s.conv) s.conv->run_raw(q, xq, yq, rq);
          else s.pwdw->run_raw(q, xq, yq, rq);
        };
        if (!y.img_stride) {
          run(p, x.data, y.data, res);
        } else {
          // Image by image into the strided range (the kernels write dense
          // batches), which saves the concat's copy: SqueezeNet at batch 8, 2
          // threads, 10.5 -> 10.1 ms (alternating processes). GoogLeNet's
          // 8x8 and 4x4 inception planes (at 64x64 input) ran 2% slower so.
          convcore::Conv2dParams q = p;
          q.N = 1;
          for (index_t n = 0; n < p.N; ++n)
            run(q, x.data + n * p.C * p.H * p.W, y.data + n * y.img_stride,
                res ? res + n * p.K * ohw : nullptr);
        }
        v[size_t(s.out)] = std::move(y);
        return;
      }
      case Kind::MaxPool:
      case Kind::AvgPool: {
        const bool mx = s.kind == Kind::MaxPool;
        const char* op = mx ? "max_pool2d" : "avg_pool2d";
        if (x.shape.size() != 4) throw py::value_error(std::string(op) + ": input must be 4-D");
        const convcore::Pool2dParams p =
            pool_params_from(op, x.shape, s.k, s.s, s.pad, s.dil, s.ceil, mx || s.cip);
        Value y = fresh({p.N, p.C, p.OH, p.OW}, op);
        if (mx) convcore::max_pool2d_forward(p, x.data, y.data, nullptr);
        else convcore::avg_pool2d_forward(p, x.data, y.data);
        v[size_t(s.out)] = std::move(y);
        return;
      }
      case Kind::GlobalAvg:
      case Kind::GlobalMax: {
        if (x.shape.size() != 4 || x.shape[2] * x.shape[3] <= 0 || x.shape[1] <= 0)
          throw py::value_error("global_pool2d: input must be 4-D with non-empty planes");
        const index_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
        Value y = fresh({N, C, 1, 1}, "global_pool2d");
        if (s.kind == Kind::GlobalMax) convcore::global_max_pool2d_forward(N, C, HW, x.data, y.data);
        else convcore::global_avg_pool2d_forward(N, C, HW, x.data, y.data);
        v[size_t(s.out)] = std::move(y);
        return;
      }
      case Kind::Flatten: {
        const index_t r = index_t(x.shape.size());
        const index_t axis = s.axis < 0 ? s.axis + r : s.axis;
        if (axis < 0 || axis > r) throw py::value_error("flatten: axis out of range");
        index_t a = 1, b = 1;
        for (index_t i = 0; i < r; ++i) (i < axis ? a : b) *= x.shape[size_t(i)];
        Value y = x;  // a view
        y.shape = {a, b};
        v[size_t(s.out)] = std::move(y);
        return;
      }
      case Kind::Gemm: {
        const Value& b = need(v, s.in[1]);
        if (x.shape.size() != 2 || b.shape.size() != 2)
          throw py::value_error("gemm: A and B must be 2-D");
        const index_t M = x.shape[0], K = x.shape[1];
        const index_t Kb = s.trans_b ? b.shape[1] : b.shape[0];
        const index_t N = s.trans_b ? b.shape[0] : b.shape[1];
        if (K != Kb) throw py::value_error("gemm: inner dimensions differ");
        const Value* c = s.in.size() > 2 ? &need(v, s.in[2]) : nullptr;
        const bool row = c && (c->shape == Shape{N} || c->shape == Shape{1, N});
        if (c && !row && c->shape != Shape{M, N})
          throw py::value_error("gemm: C does not broadcast as the chain takes it");
        Value y = fresh({M, N}, "gemm");
        if (M > 0 && N > 0) {
          convcore::GemmArgs g;
          g.trans_b = s.trans_b;
          g.M = M;
          g.N = N;
          g.K = K;
          g.A = x.data;
          g.lda = K;
          g.B = b.data;
          g.ldb = b.shape[1];
          g.C = y.data;
          g.ldc = N;
          convcore::gemm(g);
          if (c)  // y += C after the product, as the Python op does
            for (index_t i = 0; i < M; ++i)
              for (index_t j = 0; j < N; ++j) y.data[i * N + j] += c->data[row ? j : i * N + j];
        }
        v[size_t(s.out)] = std::move(y);
        return;
      }
      case Kind::Concat: {
        Value& out = v[size_t(s.out)];
        index_t ch = 0;
        bool inplace = out.data != nullptr;
        for (int id : s.in) {
          const Value& part = need(v, id, true);
          if (part.shape.size() != 4) throw py::value_error("concat: parts must be 4-D");
          const index_t hw = part.shape[2] * part.shape[3];
          if (inplace && (part.owner != out.owner || part.data != out.data + ch * hw ||
                          (part.shape[0] > 1 && part.img_stride != out.shape[1] * hw)))
            inplace = false;
          ch += part.shape[1];
        }
        if (inplace) {
          if (ch != out.shape[1]) throw py::value_error("concat: parts do not cover the output");
          return;  // the convs wrote their channel ranges already
        }
        const Shape& s0 = x.shape;
        for (int id : s.in) {
          const Shape& ps = v[size_t(id)].shape;
          if (ps[0] != s0[0] || ps[2] != s0[2] || ps[3] != s0[3])
            throw py::value_error("concat: part shapes differ off the channel axis");
        }
        Value y = fresh({s0[0], ch, s0[2], s0[3]}, "concat");
        const index_t hw = s0[2] * s0[3];
        for (index_t n = 0; n < s0[0]; ++n) {
          float* dst = y.data + n * ch * hw;
          for (int id : s.in) {
            const Value& part = v[size_t(id)];
            const index_t len = part.shape[1] * hw;
            const index_t stride = part.img_stride ? part.img_stride : len;
            std::memcpy(dst, part.data + n * stride, size_t(len) * sizeof(float));
            dst += len;
          }
        }
        out = std::move(y);
        return;
      }
    }
  }
};

}  // namespace

void bind_chain(py::module_& m) {
  py::class_<NativeChain>(m, "NativeChain",
                          "runner-internal: a run of packed convs, pools and in-place concats "
                          "executed in one call (runtime/native_chain.py)")
      .def(py::init<int>(), py::arg("nvalues"))
      .def("conv", &NativeChain::conv, py::arg("packed"), py::arg("x"), py::arg("residual"),
           py::arg("out"), py::arg("cat"), py::arg("c0"), py::arg("total"), py::arg("frees"))
      .def("pool", &NativeChain::pool, py::arg("is_max"), py::arg("x"), py::arg("out"),
           py::arg("kernel"), py::arg("stride"), py::arg("pads"), py::arg("dilation"),
           py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("frees"))
      .def("global_pool", &NativeChain::global_pool, py::arg("is_max"), py::arg("x"),
           py::arg("out"), py::arg("frees"))
      .def("concat", &NativeChain::concat, py::arg("parts"), py::arg("out"), py::arg("frees"))
      .def("flatten", &NativeChain::flatten, py::arg("x"), py::arg("out"), py::arg("axis"),
           py::arg("frees"))
      .def("gemm", &NativeChain::gemm, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("out"),
           py::arg("trans_b"), py::arg("frees"))
      .def("__len__", &NativeChain::size)
      .def("run", &NativeChain::run, py::arg("inputs"), py::arg("in_ids"), py::arg("out_ids"));
}

}  // namespace convcore_py
