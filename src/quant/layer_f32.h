// A decoder layer's weights as owned f32 copies that the AWQ search can rescale and clip;
// `L` views them, so the sublayer functions of model/decoder_layer.h run on them directly.
#pragma once
#include <vector>

#include "io/model_config.h"
#include "model/llama_weights.h"

namespace awq {

struct LayerF32 {
  std::vector<float> wq, wk, wv, wo;  // [q_dim, d], [kv_dim, d], [kv_dim, d], [d, q_dim]
  std::vector<float> w_gate, w_up, w_down;  // [d_ff, d], [d_ff, d], [d, d_ff]
  LayerWeights L;  // norms and biases owned here; matrices point at the vectors above

  LayerF32(const LayerWeights& src, const ModelConfig& c);
  LayerF32(const LayerF32& o);
  LayerF32& operator=(const LayerF32& o);

 private:
  void rebind();
  int64_t d_ = 0, qd_ = 0, kvd_ = 0, ff_ = 0;
};

}  // namespace awq
