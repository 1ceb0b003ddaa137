"""`awq serve` for the bench scripts that drive it (chat_turns.py, prompt_sharing.py): the
command-line arguments they share, starting a server on a free port, and streamed requests.
Standard library only."""
import http.client
import json
import os
import re
import subprocess
import sys
import threading


def add_server_args(ap, threads=2):
    """MODEL_DIR, --threads, --device, --awq (default: this checkout's build/release/awq)."""
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=threads)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--awq", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "awq"))


def start(args, extra):
    """`awq serve args.model --port 0 ...extra`, once it listens: (process, port). Its log lines
    go to stderr, prefixed "  server: "."""
    cmd = [args.awq, "serve", args.model, "--port", "0", "--threads", str(args.threads), "--device",
           args.device] + extra
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        sys.stderr.write("  server: " + line)
        m = re.search(r"http://[^:]+:(\d+)/", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, int(m.group(1))
    raise SystemExit("awq serve exited before listening")


def stop(proc):
    proc.terminate()
    proc.wait(timeout=60)


def stream(port, path, body, timeout=1800):
    """POSTs body (a dict, "stream": true) and yields the Server-Sent Events' JSON objects until
    [DONE]. RuntimeError for a status other than 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"status {resp.status}: {resp.read()[:300]}")
    try:
        for raw in resp:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                return
            if line.startswith("data: "):
                yield json.loads(line[6:])
    finally:
        conn.close()
