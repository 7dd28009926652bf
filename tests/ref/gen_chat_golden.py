#!/usr/bin/env python3
"""Render real chat templates with jinja2 (the way transformers'
apply_chat_template does: sandboxed, trim_blocks, lstrip_blocks) on a set of
conversations and write tests/data/chat_golden.json, which tests/test_tokenizer.c
compares rys's chat_format() with byte for byte.

Templates: tokenizer.chat_template of the GGUF files given, the Gemma 3
template (google/gemma-3-4b-it tokenizer_config.json), Llama 3's first
template (as llama.cpp's tests/test-chat-template.cpp quotes it: it always
ends with the assistant header, so only add_generation_prompt=True is
rendered), and the *.jinja files of llama.cpp's models/templates that belong
to the three families rys knows. bos_token renders as "" because rys leaves
BOS to the tokenizer.

usage: gen_chat_golden.py [--gguf F.gguf ...] [--llama-templates DIR] [--out tests/data/chat_golden.json]"""
import argparse
import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GEMMA3 = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n")

LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
          "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
          "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}")

LLAMA_CPP_FILES = ["Qwen-Qwen2.5-7B-Instruct.jinja", "google-gemma-2-2b-it.jinja",
                   "meta-llama-Llama-3.1-8B-Instruct.jinja", "meta-llama-Llama-3.3-70B-Instruct.jinja"]

SYS = {"role": "system", "content": "You are a terse assistant."}
U1 = {"role": "user", "content": "What is 2+2?"}
A1 = {"role": "assistant", "content": "4"}
U2 = {"role": "user", "content": "And 3+3?"}
CONVERSATIONS = [
    [U1],
    [SYS, U1],
    [U1, A1, U2],
    [SYS, U1, A1, U2],
    [{"role": "user", "content": "  padded with spaces and a newline \n"}],
    [{"role": "system", "content": " system with spaces \n"}, {"role": "user", "content": "\tTabbed\t"}],
    [{"role": "user", "content": "Ünïcödé — 你好 😀 <b>tags</b> {{ not jinja }}"}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "line one\nline two\n\nline four"}, {"role": "assistant", "content": "\n\nok\n"}],
    [SYS],
    [U1, U2],
    [A1, U1],
    [SYS, SYS, U1],
]


def render(env, source, messages, gen):
    try:
        return env.from_string(source).render(messages=messages, add_generation_prompt=gen, bos_token="",
                                              eos_token="", raise_exception=raise_exception)
    except jinja2.exceptions.TemplateError:
        return None


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", nargs="*", default=[])
    ap.add_argument("--llama-templates")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data/chat_golden.json"))
    args = ap.parse_args()

    templates = []
    for path in args.gguf:
        import gguf
        field = gguf.GGUFReader(path).fields.get("tokenizer.chat_template")
        if field is None:
            print(f"{path}: no tokenizer.chat_template, skipped")
            continue
        templates.append((os.path.basename(path), field.contents(), [True, False]))
    templates.append(("gemma-3-4b-it", GEMMA3, [True, False]))
    templates.append(("llama-3-instruct (llama.cpp test)", LLAMA3, [True]))
    if args.llama_templates:
        for name in LLAMA_CPP_FILES:
            with open(os.path.join(args.llama_templates, name), encoding="utf-8") as f:
                templates.append((name, f.read(), [True, False]))

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    out = []
    for name, source, gens in templates:
        cases = []
        for messages in CONVERSATIONS:
            for gen in gens:
                cases.append({"messages": messages, "add_generation_prompt": gen,
                              "expected": render(env, source, messages, gen)})
        out.append({"name": name, "template": source, "cases": cases})
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{args.out}: {len(out)} templates, {sum(len(t['cases']) for t in out)} cases")


if __name__ == "__main__":
    main()
