#!/usr/bin/env python3
"""Aggregate generation throughput of `awq serve` under N concurrent streaming clients.

Starts `awq serve MODEL --port 0`, then for each N in --clients runs N clients at once, each
streaming one greedy /v1/completions request (its own prompt, --max-tokens tokens,
ignore_eos so every request generates exactly that many). Reports, per N: wall time from the
first request to the last [DONE], total completion tokens (from the usage chunk), aggregate
tokens/s, median time to first token, and whether every client's text (in every run) equals the text a
single serial client got for the same prompt (continuous batching must not change greedy
output). Standard library only.

  python3 bench/serve_load.py MODEL_DIR [--clients 1,8,32] [--max-tokens 64] [--threads 2] [--repeats 3]
                                       [--device cuda]

On --device cuda the texts need not equal the serial ones: the GPU's W4A16 kernels sum in an
order that follows the batch size, so near-tied greedy picks can change with the load (the CPU
engine's rows are bit-identical whatever the batch).
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

PROMPTS = [
    "The history of", "Once upon a time", "In the beginning", "The old man said",
    "It was a dark and stormy night, and", "She opened the door", "Why", "A long, long time ago,",
]


def stream_completion(port, model, prompt, max_tokens):
    """One streaming request; returns (text, completion_tokens, seconds to first token)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    text, tokens, ttft, buf = "", 0, None, b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            data = event.decode()[len("data: "):]
            if data == "[DONE]":
                conn.close()
                return text, tokens, ttft
            j = json.loads(data)
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            for c in j.get("choices", []):
                if c.get("text"):
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    text += c["text"]
    raise RuntimeError("stream ended without [DONE]")


def start_awq_serve(cmd):
    """Starts `cmd` (an `awq serve ... --port 0` command line); returns (process, port, model id)
    once its start-up line names them. Its later stderr is drained in the background."""
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    line = ""
    while "at http://" not in line:
        line = server.stderr.readline()
        if not line:
            server.wait()
            sys.exit("awq serve did not start")
    port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))
    model = re.search(r"model '([^']+)'", line).group(1)
    threading.Thread(target=server.stderr.read, daemon=True).start()
    return server, port, model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--awq", default=os.environ.get("AWQ", "build/release/awq"))
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="runs per N; the table shows the fastest (noisy shared machines)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (awq serve --device)")
    args = ap.parse_args()
    ns = [int(x) for x in args.clients.split(",")]
    cmd = [args.awq, "serve", args.model, "--port", "0", "--parallel", str(max(ns)),
           "--ctx", str(args.ctx), "-t", str(args.threads), "--device", args.device]
    server, port, model = start_awq_serve(cmd)
    try:
        serial = {p: stream_completion(port, model, p, args.max_tokens)[0] for p in PROMPTS}
        print(f"command: {' '.join(cmd)}")
        print(f"clients: {args.clients}; {args.max_tokens} greedy tokens each (ignore_eos); "
              f"{args.threads} threads; fastest of {args.repeats} runs per N\n")
        print("| clients N | wall s | completion tokens | aggregate tok/s | median TTFT s | texts == serial |")
        print("|---:|---:|---:|---:|---:|:---:|")
        for n in ns:
            best, same_all = None, True
            for _ in range(args.repeats):
                results = [None] * n

                def client(i):
                    results[i] = stream_completion(port, model, PROMPTS[i % len(PROMPTS)], args.max_tokens)

                threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
                if any(r is None for r in results):
                    sys.exit(f"N={n}: a client failed")
                tokens = sum(r[1] for r in results)
                same_all &= all(r[0] == serial[PROMPTS[i % len(PROMPTS)]] for i, r in enumerate(results))
                ttft = statistics.median(r[2] for r in results)
                if best is None or tokens / wall > best[1] / best[0]:
                    best = (wall, tokens, ttft)
            wall, tokens, ttft = best
            print(f"| {n} | {wall:.2f} | {tokens} | {tokens / wall:.1f} | {ttft:.3f} | {'yes' if same_all else 'NO'} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
