#!/usr/bin/env python3
"""n choices of one long prompt against `awq serve`, with prompt sharing (the default) and
without (`--no-cache-prompt`).

With sharing, the first choice's slot prefills the prompt and the other n - 1 copy its keys and
values (BatchEngine::copy_prefix) instead of prefilling it again. Starts `awq serve MODEL --port 0
--parallel N` twice and sends, on each, one streamed greedy /v1/completions request of
--choices choices; the prompt is a paragraph of plain English repeated to about --prompt-words
words. Reports the time to the first token of any choice, the time to the last [DONE], and the
cached tokens the usage chunk reports, as the median of --repeats requests (each on a prompt of
its own, so that nothing is left in the slots from the one before), after one short warm-up
request. Standard library only.

  python3 bench/prompt_sharing.py MODEL_DIR [--choices 8] [--prompt-words 1000] [--max-tokens 16]
                                  [--repeats 3] [--threads 2] [--device cpu|cuda]
"""
import argparse
import http.client
import os
import re
import statistics
import sys
import time

import served

PARAGRAPH = ("The old lighthouse keeper climbed the narrow stairs every evening to light the lamp. For "
             "forty years he had watched the ships pass through the strait, and he knew each captain by "
             "the way their vessel turned into the wind. ")


def one_request(port, prompt, args):
    """(seconds to the first token of any choice, seconds to [DONE], usage)."""
    body = {"prompt": prompt, "max_tokens": args.max_tokens, "temperature": 0, "n": args.choices,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    first, usage = None, {}
    for ev in served.stream(port, "/v1/completions", body):
        if ev.get("usage"):
            usage = ev["usage"]
        if first is None and any(ch.get("text") for ch in ev.get("choices", [])):
            first = time.perf_counter() - t0
    return first, time.perf_counter() - t0, usage


def cached_total(port):
    """awq_prompt_tokens_cached_total of /metrics: prompt tokens taken from a cache or a copy."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    m = re.search(r"^awq_prompt_tokens_cached_total (\S+)", text, re.M)
    return float(m.group(1)) if m else 0.0


def run(args, extra):
    """Per request: (first token s, whole request s, usage, prompt tokens it did not prefill)."""
    proc, port = served.start(args, ["--parallel", str(args.choices), "--ctx", str(args.ctx)] + extra)
    try:
        # A short request first: the first one pays for reading the weights in (page cache) and
        # the kernels' first-use set-up, which the run that goes first would otherwise carry.
        one_request(port, "Hello", argparse.Namespace(**{**vars(args), "choices": 1, "max_tokens": 2}))
        out = []
        for r in range(args.repeats):
            words = f"Story number {r + 1}. " + PARAGRAPH * max(1, args.prompt_words // len(PARAGRAPH.split()))
            before = cached_total(port)
            first, whole, usage = one_request(port, words, args)
            out.append((first, whole, usage, cached_total(port) - before))
            print(f"  {' '.join(extra) or 'sharing on'}: request {r + 1}: first token {first:.3f} s, whole {whole:.3f} s, "
                  f"copied {out[-1][3]:.0f}", file=sys.stderr)
        return out
    finally:
        served.stop(proc)


def main():
    ap = argparse.ArgumentParser()
    served.add_server_args(ap)
    ap.add_argument("--choices", type=int, default=8)
    ap.add_argument("--prompt-words", type=int, default=1000)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ctx", type=int, default=2048)
    args = ap.parse_args()
    on, off = run(args, []), run(args, ["--no-cache-prompt"])
    print(f"\n{args.choices} choices of one prompt (~{args.prompt_words} words), {args.max_tokens} tokens each, "
          f"--device {args.device}, model {os.path.basename(args.model.rstrip('/'))}; medians of {args.repeats}")
    print("\n| prompt sharing | prompt tokens | of the choices' prompt tokens, copied | first token, s | whole request, s |")
    print("|---|---:|---:|---:|---:|")
    for name, rows in (("on", on), ("off (--no-cache-prompt)", off)):
        prompt = rows[0][2].get("prompt_tokens", 0)
        copied = statistics.median(r[3] for r in rows)
        print(f"| {name} | {prompt} | {copied:.0f} of {prompt * args.choices} | "
              f"{statistics.median(r[0] for r in rows):.3f} | {statistics.median(r[1] for r in rows):.3f} |")


if __name__ == "__main__":
    main()
