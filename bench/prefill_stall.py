#!/usr/bin/env python3
"""How long a long prompt stalls the streams already decoding (awq serve --prefill-chunk).

Starts `awq serve MODEL --parallel 2` once per --prefill-chunk value; client A streams a greedy
completion; once A has 10 tokens, client B sends a long prompt (max_tokens 1). Prints A's
largest gap between two tokens (the stall B's prefill causes), A's median gap, and B's latency.
  python3 bench/prefill_stall.py MODEL [--awq build/release/awq] [--chunks 0,64,256] [--prompt-words 500]
"""
import argparse, json, statistics, threading, time, urllib.request

from serve_load import start_awq_serve


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=600)


def run(args, chunk):
    srv, port, _ = start_awq_serve([args.awq, "serve", args.model, "--port", "0", "--parallel", "2",
                                    "--prefill-chunk", str(chunk), "-t", str(args.threads), "--ctx", "2048"])
    try:
        times, started = [], threading.Event()
        long_prompt = " ".join(["the lighthouse keeper watched the ships"] * (args.prompt_words // 6))
        b_latency = []

        def client_b():
            started.wait()
            t0 = time.time()
            with post(port, {"prompt": long_prompt, "max_tokens": 1, "temperature": 0}) as r:
                r.read()
            b_latency.append(time.time() - t0)

        tb = threading.Thread(target=client_b)
        tb.start()
        body = {"prompt": "Once upon a time", "max_tokens": args.tokens, "temperature": 0, "stream": True, "ignore_eos": True}
        with post(port, body) as r:
            for line in r:
                if line.startswith(b"data: {"):
                    times.append(time.time())
                    if len(times) == 10:
                        started.set()
        tb.join()
        gaps = [b - a for a, b in zip(times, times[1:])]
        return max(gaps[9:]), statistics.median(gaps), b_latency[0]
    finally:
        srv.terminate()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--awq", default="build/release/awq")
    ap.add_argument("--chunks", default="0,64,256")
    ap.add_argument("--prompt-words", type=int, default=500)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    print("| --prefill-chunk | A's largest gap (s) | A's median gap (s) | B's latency (s) |")
    print("|---:|---:|---:|---:|")
    for c in [int(x) for x in a.chunks.split(",")]:
        worst, med, lat = run(a, c)
        print(f"| {c} | {worst:.2f} | {med:.3f} | {lat:.2f} |", flush=True)


if __name__ == "__main__":
    main()
