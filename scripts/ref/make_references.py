#!/usr/bin/env python3
"""Computes the PyTorch / transformers references the C++ tests compare against.

Run on a machine with torch + transformers (the GPU machine; CPU works too, slower):
    python3 scripts/ref/make_references.py --model DIR_OF_tiny-llama-gqa --val val.txt --out OUT

Writes:
  OUT/val_window_nll.json   per-window NLL sums of val.txt with the reference windows
                            (ids of the whole file without specials, chunks of 511, [BOS] + chunk),
                            fp32 weights-as-stored, fp32 math, TF32 off. Lets CI check a prefix
                            of windows against PyTorch instead of the full 224-window figure.
  OUT/arch/<name>/          tiny random checkpoints of every supported architecture feature
                            (llama3 / linear rope scaling, q/k/v/o and MLP bias, mistral sliding
                            window, qwen2 bias, qwen3 q/k norm with explicit head_dim, bf16 / f32
                            / f16 storage) saved by transformers' save_pretrained, each with
                            expected.json: logits of a fixed id sequence (all positions) and
                            greedy ids from model.generate with the KV cache.
"""
import argparse
import json
import math
import os

import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, MistralConfig, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen3Config)

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else "cpu"


def val_window_nll(model_dir, val_path, out):
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
    ids = tok(open(val_path, encoding="utf-8").read(), add_special_tokens=False).input_ids
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation="eager").to(dev).eval()
    chunk, rows = 511, []
    with torch.no_grad():
        for w in range(0, len(ids), chunk):
            win = [1] + ids[w:w + chunk]
            x = torch.tensor([win], device=dev)
            logp = torch.log_softmax(model(x).logits[0].double(), dim=-1)
            tgt = torch.tensor(win[1:], device=dev)
            nll = -logp[torch.arange(len(win) - 1, device=dev), tgt].sum().item()
            rows.append({"nll_sum": nll, "tokens": len(win) - 1})
    total = sum(r["nll_sum"] for r in rows)
    n = sum(r["tokens"] for r in rows)
    json.dump({"made_by": "scripts/ref/make_references.py", "torch": torch.__version__,
               "transformers": transformers.__version__, "device": dev,
               "tokens": n, "windows": len(rows), "ppl": math.exp(total / n), "per_window": rows},
              open(os.path.join(out, "val_window_nll.json"), "w"), indent=1)
    print("val ppl", math.exp(total / n), "tokens", n, "windows", len(rows))


def arch_cases():
    common = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)
    return {
        "llama3_rope_bf16": (LlamaConfig(**common, tie_word_embeddings=False, rope_theta=500000.0,
                                         rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 32}),
                             torch.bfloat16),
        "llama_bias_linear_f32": (LlamaConfig(**common, tie_word_embeddings=True, attention_bias=True,
                                              mlp_bias=True, rope_scaling={"rope_type": "linear", "factor": 2.0}),
                                  torch.float32),
        "mistral_swa_f16": (MistralConfig(**common, tie_word_embeddings=False, sliding_window=8, head_dim=16),
                            torch.float16),
        "qwen2_bias_bf16": (Qwen2Config(**common, tie_word_embeddings=True, rope_theta=1000000.0),
                            torch.bfloat16),
        "qwen3_qknorm_bf16": (Qwen3Config(**common, tie_word_embeddings=False, head_dim=32,
                                          rope_theta=1000000.0),
                              torch.bfloat16),
    }


def arch_models(out):
    ids = [1] + [(7 * i * i + 3 * i + 5) % 317 + 3 for i in range(23)]  # 24 ids, fixed
    for name, (cfg, dtype) in arch_cases().items():
        torch.manual_seed(1234)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager")
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))   # norms away from 1 so they matter
                elif pname.endswith("bias"):
                    p.copy_(0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.08 * torch.randn_like(p))
        d = os.path.join(out, "arch", name)
        model.to(dtype).save_pretrained(d, safe_serialization=True)
        # reference from the saved weights, in fp32
        ref = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                   attn_implementation="eager").to(dev).eval()
        with torch.no_grad():
            logits = ref(torch.tensor([ids], device=dev)).logits[0].float().cpu()
            gen = ref.generate(torch.tensor([ids[:6]], device=dev), max_new_tokens=26, do_sample=False,
                               use_cache=True, pad_token_id=0, eos_token_id=None,
                               min_new_tokens=26)[0, 6:].tolist()
        json.dump({"ids": ids, "logits": [[round(v, 5) for v in row] for row in logits.tolist()],
                   "greedy_prompt": ids[:6], "greedy_ids": gen, "dtype": str(dtype)},
                  open(os.path.join(d, "expected.json"), "w"))
        print(name, "ok", gen[:8])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    arch_models(a.out)
    val_window_nll(a.model, a.val, a.out)
