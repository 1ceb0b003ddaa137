#!/usr/bin/env python3
"""How long a long prompt stalls the streams already decoding (awq serve --prefill-chunk).

Starts `awq serve MODEL --parallel 2` once per --prefill-chunk value; client A streams a greedy
completion; once A has 10 tokens, client B sends a long prompt (max_tokens 1). Prints A's
largest gap between two tokens (the stall B's prefill causes), A's median gap, and B's latency.
  python3 bench/prefill_stall.py MODEL [--awq build/release/awq] [--chunks 0,64,256] [--prompt-words 500]
"""
import argparse, json, statistics, subprocess, threading, time, urllib.request, socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, body, stream):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=600)


def run(args, chunk):
    port = free_port()
    srv = subprocess.Popen([args.awq, "serve", args.model, "--port", str(port), "--parallel", "2",
                            "--prefill-chunk", str(chunk), "-t", str(args.threads), "--ctx", "2048"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        times, started = [], threading.Event()
        long_prompt = " ".join(["the lighthouse keeper watched the ships"] * (args.prompt_words // 6))
        b_latency = []

        def client_b():
            started.wait()
            t0 = time.time()
            with post(port, {"prompt": long_prompt, "max_tokens": 1, "temperature": 0}, False) as r:
                r.read()
            b_latency.append(time.time() - t0)

        tb = threading.Thread(target=client_b)
        tb.start()
        body = {"prompt": "Once upon a time", "max_tokens": args.tokens, "temperature": 0, "stream": True, "ignore_eos": True}
        with post(port, body, True) as r:
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
