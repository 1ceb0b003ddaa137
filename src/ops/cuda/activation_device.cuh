// Device side of the SiLU-gated product, shared by silu_mul (cuda_ops.cu) and the W4A16 decode
// kernels that apply it in their epilogue (w4a16_device.cuh): one expression, the same bits.
#pragma once

namespace awq::cuda::activation_device {

// silu(g) * u = g / (1 + e^-g) * u, in f32.
__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }

}  // namespace awq::cuda::activation_device
