// Writing safetensors files atomically: the bytes go to PATH.tmp.XXXXXX in the same folder,
// are fsynced, then renamed over PATH (and the folder fsynced), so a crash or an error
// leaves either the old file or the complete new one, never half of one.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace awq {

// Tensors are written in the given order, 8-byte aligned data (header padded with spaces).
// Each view's nbytes must equal numel * dtype size (checked; awq::Error otherwise).
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace awq
