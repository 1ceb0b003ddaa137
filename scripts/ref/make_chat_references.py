#!/usr/bin/env python3
"""Renders every chat template in tests/data/chat_templates/*.jinja over a fixed set of
conversations with transformers' apply_chat_template(tokenize=False) and writes
tests/data/chat_templates/expected.json: per template x conversation x add_generation_prompt
the rendered text, or the exception the template raised (type and message).

tests/test_chat_template.cpp compares awq::ChatTemplate's output with these, byte for byte.

Run (needs transformers; no network; the tokenizer only supplies bos/eos strings):
  python3 scripts/ref/make_chat_references.py \
      --tokenizer ../shared/models/tiny-llama-gqa/tokenizer.json \
      --templates tests/data/chat_templates --out tests/data/chat_templates/expected.json

strftime_now is pinned to 2024-07-26 (templates such as Llama-3.2's print today's date), so
the references do not depend on the day they were made; the C++ test fixes the same date.
"""
import argparse
import datetime as _dt
import glob
import json
import os
import sys

FIXED_NOW = _dt.datetime(2024, 7, 26, 12, 0, 0)

# Conversations: name -> messages. Chosen to exercise system prompts, multi-turn history,
# whitespace trimming (templates differ: some trim, some do not), unicode, Qwen3's
# <think> handling, and the role checks that make Llama-2 / Mistral templates raise.
CONVERSATIONS = {
    "system_user": [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
    ],
    "user_only": [{"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Who are you"},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "Another question"},
    ],
    "multi_turn_no_system": [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Who are you"},
    ],
    "ends_with_assistant": [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "Hi!"},
    ],
    "unicode": [
        {"role": "system", "content": "Réponds en français. 日本語も可。"},
        {"role": "user", "content": "Héllo, 世界! 🙂 — ñ «quotes» \"double\" 'single' \\backslash"},
        {"role": "assistant", "content": "\n  Bonjour 👋 <b>tags</b> & {braces} {{ not jinja }}  \n"},
        {"role": "user", "content": "Ça va?"},
    ],
    "whitespace": [
        {"role": "user", "content": "  padded both sides  \n\n"},
        {"role": "assistant", "content": "\t tab and\u00a0nbsp\u00a0\u3000"},
        {"role": "user", "content": "line one\nline two\r\nline three\n"},
    ],
    "empty_content": [
        {"role": "user", "content": ""},
    ],
    "thinking": [
        {"role": "user", "content": "Think first: 3*4?"},
        {"role": "assistant", "content": "<think>\n3 times 4 is 12.\n</think>\n\n12"},
        {"role": "user", "content": "And 5*5?"},
    ],
    "thinking_last": [
        {"role": "user", "content": "Think first: 3*4?"},
        {"role": "assistant", "content": "<think>\nreasoning here\n</think>\n\nThe answer is 12."},
    ],
    "non_alternating": [
        {"role": "user", "content": "First"},
        {"role": "user", "content": "Second"},
    ],
    "assistant_first": [
        {"role": "assistant", "content": "I speak first"},
        {"role": "user", "content": "Hello"},
    ],
    "system_only": [
        {"role": "system", "content": "Only a system message"},
    ],
}


def pin_strftime_now():
    """Makes transformers' strftime_now() return FIXED_NOW's date (it calls datetime.now())."""

    class FixedDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return FIXED_NOW

    patched = []
    for name, mod in list(sys.modules.items()):
        if not name.startswith("transformers") or mod is None:
            continue
        if getattr(mod, "datetime", None) is _dt.datetime:
            mod.datetime = FixedDatetime
            patched.append(name)
        cache = getattr(getattr(mod, "_compile_jinja_template", None), "cache_clear", None)
        if cache:
            cache()
    return patched


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--templates", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import transformers
    from transformers import PreTrainedTokenizerFast
    import transformers.utils.chat_template_utils  # noqa: F401  (loads the module to patch)

    patched = pin_strftime_now()
    tok = PreTrainedTokenizerFast(tokenizer_file=args.tokenizer, bos_token="<s>", eos_token="</s>")

    cases = []
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(args.templates, "*.jinja")))
    for tname in names:
        with open(os.path.join(args.templates, tname), encoding="utf-8") as f:
            template = f.read()
        for cname, messages in CONVERSATIONS.items():
            for agp in (True, False):
                case = {"template": tname, "conversation": cname, "add_generation_prompt": agp}
                try:
                    text = tok.apply_chat_template(
                        messages, chat_template=template, tokenize=False, add_generation_prompt=agp
                    )
                    case["output"] = text
                except Exception as e:  # the template's raise_exception, or a Jinja error
                    case["error_type"] = type(e).__name__
                    case["error"] = str(e)
                cases.append(case)
        print(f"{tname}: {sum(1 for c in cases if c['template'] == tname and 'output' in c)} rendered, "
              f"{sum(1 for c in cases if c['template'] == tname and 'error' in c)} raised")

    # The pin must have worked where a template prints the date.
    for c in cases:
        if c["template"].startswith("meta-llama-Llama-3.2") and "output" in c:
            assert "26 Jul 2024" in c["output"], ("strftime_now was not pinned", patched, c["output"][:300])

    out = {
        "made_by": "scripts/ref/make_chat_references.py",
        "transformers_version": transformers.__version__,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "fixed_now": FIXED_NOW.isoformat(),
        "conversations": CONVERSATIONS,
        "cases": cases,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {args.out} (transformers {transformers.__version__}, patched {patched})")


if __name__ == "__main__":
    main()
