// The tokenizer of a Hugging Face folder as GGUF metadata (tokenizer.ggml.*), for
// SentencePiece-style BPE tokenizer.json files with byte fallback (Llama-2, Mistral,
// TinyLlama): llama.cpp's "llama" (SPM) tokenizer. llama.cpp's SPM tokenizer merges the
// adjacent pair whose joined text is the vocabulary token of highest score; HF BPE merges
// the pair of lowest merge rank. So a token made by merge number r gets score -r (the first
// such merge), which gives the same merge order; tokens no merge makes get scores below all
// merges. Byte-level BPE (GPT-2, Llama-3, Qwen: llama.cpp's "gpt2" with a pre-tokenizer
// name) is refused with an error that says so.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace awq::gguf {

struct Vocab {
  std::vector<std::string> tokens;  // [vocab_size] the raw vocabulary strings ("▁the", "<0x0A>")
  std::vector<float> scores;        // [vocab_size]
  std::vector<int32_t> types;       // [vocab_size] TokenType values
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = true, add_eos = false, add_space_prefix = true;
  std::string chat_template;        // tokenizer_config.json's chat_template when it is a string
};

// model_dir: a folder with tokenizer.json (+ tokenizer_config.json ...). vocab_size: the
// model's embedding rows; ids the tokenizer lacks become "[PAD<id>]" tokens of type UNUSED.
Vocab load_vocab(const std::string& model_dir, int32_t vocab_size);

}  // namespace awq::gguf
