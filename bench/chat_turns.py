#!/usr/bin/env python3
"""Multi-turn chats against `awq serve`, with and without the prompt cache.

A chat client sends the whole conversation at every turn (system prompt, every user message
and every reply so far), as OpenAI's API asks. Without a prompt cache the server prefills all of
it again each turn; with it (the default), the slot that served the conversation still holds
its keys and values, and only the new message is prefilled.

Starts `awq serve MODEL --port 0 --parallel P` twice (the cache on, then `--no-cache-prompt`);
each time C conversations run side by side, T turns each: a user message (a few sentences of
plain English), a streamed greedy reply of --max-tokens tokens. The second run sends the first
run's prompts (its conversations as the first run had them), so each reply compares with its
twin. Reports per turn the median time to first token over the conversations, the prompt
tokens, the cached tokens the usage chunk reports, and how many replies were the same text with
the cache on and off. Standard library only.

  python3 bench/chat_turns.py MODEL_DIR [--turns 6] [--conversations 2] [--parallel 4]
                              [--max-tokens 48] [--threads 2] [--device cpu|cuda]
"""
import argparse
import os
import statistics
import threading
import time

import served

SYSTEM = ("You are a helpful assistant who answers in plain English. Keep answers short, "
          "concrete and friendly, and ask a question back when something is unclear.")
MESSAGES = [
    "Tell me about the old lighthouse on the hill and the keeper who lived there.",
    "What did he do on the night of the great storm, when the ships came in?",
    "Did anyone in the village help him, or was he alone all that winter?",
    "How did the people of the village thank him after the storm was over?",
    "What happened to the lighthouse in the years after he was gone?",
    "If you could visit it today, what would you want to see first, and why?",
    "Tell me one more story about the sea, a short one this time.",
    "Thank you. Can you sum up everything we talked about in three sentences?",
]


def chat_turn(port, messages, max_tokens):
    """One streamed greedy chat request: (reply text, seconds to first token, usage)."""
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    text, ttft, usage = "", None, {}
    for ev in served.stream(port, "/v1/chat/completions", body, timeout=900):
        if ev.get("usage"):
            usage = ev["usage"]
        for ch in ev.get("choices", []):
            piece = ch.get("delta", {}).get("content")
            if piece:
                if ttft is None:
                    ttft = time.perf_counter() - t0
                text += piece
    return text, ttft if ttft is not None else time.perf_counter() - t0, usage


def run(args, extra, script=None):
    """Per turn, per conversation: (ttft, prompt tokens, cached tokens, reply, messages sent).
    script: another run's result, whose messages are sent instead (the same prompts, so that each
    reply compares with the other run's alone)."""
    proc, port = served.start(args, ["--parallel", str(args.parallel)] + extra)
    try:
        convs = [[{"role": "system", "content": SYSTEM}] for _ in range(args.conversations)]
        errors = []
        rows = []  # per turn: list of (ttft, prompt_tokens, cached_tokens, text) per conversation
        for t in range(args.turns):
            out = [None] * len(convs)

            def one(c):
                try:
                    turn(c)
                except Exception as e:  # a thread's exception would pass unseen
                    errors.append(f"conversation {c}, turn {t + 1}: {e}")

            def turn(c):
                msgs = convs[c] + [{"role": "user", "content": MESSAGES[(t + c) % len(MESSAGES)]}]
                if script:
                    msgs = script[t][c][4]
                text, ttft, usage = chat_turn(port, msgs, args.max_tokens)
                convs[c] = msgs + [{"role": "assistant", "content": text}]
                cached = usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
                out[c] = (ttft, usage.get("prompt_tokens", 0), cached, text, msgs)

            threads = [threading.Thread(target=one, args=(c,)) for c in range(len(convs))]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            if errors:
                raise SystemExit("\n".join(errors))
            rows.append(out)
        return rows
    finally:
        served.stop(proc)


def main():
    ap = argparse.ArgumentParser()
    served.add_server_args(ap)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--conversations", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=48)
    args = ap.parse_args()
    on = run(args, [])
    off = run(args, ["--no-cache-prompt"], script=on)  # the same prompts
    print(f"\n{args.conversations} conversations x {args.turns} turns, --parallel {args.parallel}, "
          f"--max-tokens {args.max_tokens}, --device {args.device}, model {os.path.basename(args.model.rstrip('/'))}")
    print("\n| turn | prompt tokens | cached (cache on) | TTFT cache on, s | TTFT cache off, s | speed-up | replies equal |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    first_diff = None  # (turn, conversation, characters the two replies share, their lengths)
    for t in range(args.turns):
        a, b = on[t], off[t]
        ta = statistics.median(x[0] for x in a)
        tb = statistics.median(x[0] for x in b)
        prompt = statistics.median(x[1] for x in a)
        cached = statistics.median(x[2] for x in a)
        equal = sum(x[3] == y[3] for x, y in zip(a, b))
        for c, (x, y) in enumerate(zip(a, b)):
            if first_diff is None and x[3] != y[3]:
                common = next((i for i, (p, q) in enumerate(zip(x[3], y[3])) if p != q), min(len(x[3]), len(y[3])))
                first_diff = (t + 1, c, common, len(x[3]), len(y[3]))
        print(f"| {t + 1} | {prompt:.0f} | {cached:.0f} | {ta:.3f} | {tb:.3f} | {tb / ta:.2f}x | {equal} of {len(a)} |")
    if first_diff is None:
        print("\nreplies equal with the cache on and off: yes")
    else:
        t, c, common, la, lb = first_diff
        print(f"\nreplies equal with the cache on and off: NO; first at turn {t}, conversation {c}: the replies "
              f"share their first {common} characters (of {la} / {lb})")


if __name__ == "__main__":
    main()
