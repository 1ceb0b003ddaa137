#include "quant/layer_f32.h"

#include "ops/cpu/matmul.h"

namespace awq {

namespace {
std::vector<float> widen(const Matrix& m) {
  std::vector<float> out(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) widen_row(m, r, out.data() + r * m.cols);
  return out;
}
Matrix view(std::vector<float>& v, int64_t rows, int64_t cols) { return Matrix{DType::F32, rows, cols, v.data()}; }
}  // namespace

LayerF32::LayerF32(const LayerWeights& src, const ModelConfig& c)
    : wq(widen(src.wq)), wk(widen(src.wk)), wv(widen(src.wv)), wo(widen(src.wo)),
      w_gate(widen(src.w_gate)), w_up(widen(src.w_up)), w_down(widen(src.w_down)), L(src),
      d_(c.hidden_size), qd_(c.q_dim()), kvd_(c.kv_dim()), ff_(c.intermediate_size) {
  rebind();
}

LayerF32::LayerF32(const LayerF32& o) { *this = o; }

LayerF32& LayerF32::operator=(const LayerF32& o) {
  wq = o.wq, wk = o.wk, wv = o.wv, wo = o.wo;
  w_gate = o.w_gate, w_up = o.w_up, w_down = o.w_down;
  L = o.L;
  d_ = o.d_, qd_ = o.qd_, kvd_ = o.kvd_, ff_ = o.ff_;
  rebind();
  return *this;
}

// Points the Matrix views of L at this object's buffers.
void LayerF32::rebind() {
  L.wq = view(wq, qd_, d_);
  L.wk = view(wk, kvd_, d_);
  L.wv = view(wv, kvd_, d_);
  L.wo = view(wo, d_, qd_);
  L.w_gate = view(w_gate, ff_, d_);
  L.w_up = view(w_up, ff_, d_);
  L.w_down = view(w_down, d_, ff_);
}

}  // namespace awq
