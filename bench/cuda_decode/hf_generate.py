#!/usr/bin/env python3
"""HF transformers FP16 baseline for bench/cuda_decode/bench_decode.cpp: a Llama-2-7B-shape
LlamaForCausalLM with random weights, initialised directly in fp16 on the GPU, greedy
`generate` (do_sample=False, max_new_tokens=N, min_new_tokens=N so no early stop) from a
random prompt of P tokens per sequence, batch 1, 8, 32. Decode tokens/s =
B * (N - 1) / (time(generate N) - time(generate 1)): the prefill and the first token are
subtracted, as awq_bench_decode times decode steps only.

  python3 bench/cuda_decode/hf_generate.py [--batch 1,8,32] [--prompt 16] [--gen 128] [--json FILE]
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                      max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            model = LlamaForCausalLM._from_config(cfg, dtype=torch.float16)
        except TypeError:  # transformers < 4.56 spells it torch_dtype
            model = LlamaForCausalLM._from_config(cfg, torch_dtype=torch.float16)
    assert next(model.parameters()).dtype == torch.float16
    model.eval()
    model.generation_config.pad_token_id = 0
    dev = torch.cuda.get_device_name(0)
    print(f"device: {dev} | torch {torch.__version__} | transformers "
          f"{__import__('transformers').__version__} | fp16 weights "
          f"{sum(p.numel() for p in model.parameters()) * 2 / 1e9:.2f} GB", flush=True)
    runs = []
    print("| batch | tok/s | ms/step |")
    print("|---:|---:|---:|")
    for B in [int(x) for x in a.batch.split(",")]:
        ids = torch.randint(3, 32000, (B, a.prompt), device="cuda")
        mask = torch.ones_like(ids)

        def gen(n):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                                     min_new_tokens=n, do_sample=False)
            torch.cuda.synchronize()
            assert out.shape[1] == a.prompt + n
            return time.perf_counter() - t

        gen(4)  # warm-up
        t1 = min(gen(1) for _ in range(2))
        tn = gen(a.gen)
        tps = B * (a.gen - 1) / (tn - t1)
        print(f"| {B} | {tps:.1f} | {(tn - t1) / (a.gen - 1) * 1e3:.3f} |", flush=True)
        runs.append({"batch": B, "tok_s": tps})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": dev, "runs": runs}, f)


if __name__ == "__main__":
    main()
