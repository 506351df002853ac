#!/usr/bin/env python3
"""Python's Jinja2 as the oracle for pgprompt's renderer.

Reads the third-party templates listed in corpus.json (downloading and
verifying each archive into the cache directory once), pairs each template
with realistic variables, renders every case the way the template's own
ecosystem renders it, and writes one JSON object per line:

    {"id", "family", "source", "scenario", "options", "body", "vars",
     "expected": {"output": str} | {"error": str, "raised": bool}}

`vars` is JSON text with keys in the order Python holds them (pgprompt reads
text vars with their order kept). `options` are pgprompt's render options
matching the environment used here.

Two flavours of environment, as their projects configure Jinja2:
  transformers: Hugging Face's apply_chat_template (transformers'
    chat_template_utils): ImmutableSandboxedEnvironment with trim_blocks,
    lstrip_blocks, the loopcontrols extension, a {% generation %} tag,
    raise_exception, strftime_now and json.dumps as tojson.
  prompty: azure-ai-evaluation's render_jinja_template: SandboxedEnvironment
    with trim_blocks and keep_trailing_newline, the body after the YAML
    front matter.

strftime_now formats the instant given with --now (Unix seconds, UTC), so
the oracle and the database render the same time.

Usage: jinja2_oracle.py --cache DIR --now SECONDS > cases.jsonl
       jinja2_oracle.py --cache DIR --bench FILE_NAME [--seconds S]
The second form is the benchmark's reference: the named template with the
10-message, 2-tool conversation, its options and vars, and how long Jinja2
takes per render in-process (template compiled once), as one JSON object.
"""

import argparse
import datetime
import fnmatch
import hashlib
import json
import os
import sys
import tarfile
import time
import urllib.request

import jinja2
import yaml
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------
# The corpus

def fetch(source, cache):
    """The archive of a source, downloaded once and verified every time."""
    path = os.path.join(cache, source["url"].rsplit("/", 1)[1])
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        tmp = path + ".part"
        with urllib.request.urlopen(source["url"], timeout=300) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != source["sha256"]:
        os.remove(path)
        sys.exit(f"{path}: sha256 {digest.hexdigest()} is not the pinned {source['sha256']}")
    return path


def templates(cache):
    """(family, flavour, source, body) for every distinct template."""
    corpus = json.load(open(os.path.join(HERE, "corpus.json"), encoding="utf-8"))
    seen = set()
    for source in corpus["sources"]:
        archive = fetch(source, cache)
        with tarfile.open(archive) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if not member.isfile():
                    continue
                for take in source["take"]:
                    if fnmatch.fnmatch(member.name, take["glob"]):
                        body = tar.extractfile(member).read().decode("utf-8")
                        key = hashlib.sha256(body.encode()).hexdigest()
                        if key not in seen:  # the same template shipped twice
                            seen.add(key)
                            where = member.name.split("/", 1)[1]
                            yield take["family"], take["flavour"], f"{source['package']}: {where}", body
                        break


# ---------------------------------------------------------------------------
# Environments

class GenerationTag(Extension):
    """transformers' AssistantTracker: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class Raised(Exception):
    pass


def transformers_env(now):
    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


PROMPTY_ENV = SandboxedEnvironment(trim_blocks=True, keep_trailing_newline=True)

OPTIONS = {
    "transformers": {"trim_blocks": True, "lstrip_blocks": True, "undefined": "lenient"},
    "prompty": {"trim_blocks": True, "keep_trailing_newline": True, "undefined": "lenient"},
}


# ---------------------------------------------------------------------------
# Variables: what applications pass these templates

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}

SYSTEM = "You are a patient tutor for K-12 students. Answer in short sentences and end with a question."

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_library",
            "description": "Search the school library catalogue.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words to look for"},
                    "max_results": {"type": "integer", "default": 5},
                },
                "required": ["query"],
            },
        },
    },
]


def tool_call(call_id, name, arguments):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


DOCUMENTS = [
    {"title": "Photosynthesis", "text": "Plants turn light, water and carbon dioxide into sugar and oxygen."},
    {"title": "Chlorophyll", "text": "Chlorophyll is the green pigment that absorbs red and blue light."},
]


def chat_scenarios():
    """name -> vars for a chat template, in the order transformers passes them."""

    def chat(messages, tools=None, documents=None, add_generation_prompt=True):
        return {
            "messages": messages,
            "tools": tools,
            "documents": documents,
            "add_generation_prompt": add_generation_prompt,
            **SPECIAL_TOKENS,
        }

    return {
        "basic": chat([
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Why do leaves change colour in autumn?"},
            {"role": "assistant", "content": "The green chlorophyll breaks down, so yellow and red pigments show."},
            {"role": "user", "content": "Does that happen to évergreens too? 🌲"},
        ]),
        "no_system": chat([
            {"role": "user", "content": "What is 7 × 8?"},
            {"role": "assistant", "content": "7 × 8 = 56."},
            {"role": "user", "content": "And 56 / 7?"},
            {"role": "assistant", "content": "56 / 7 = 8. Quotes \"like this\" and <tags> stay as they are."},
        ], add_generation_prompt=False),
        # The benchmark's workload: 10 messages, 2 tools.
        "tools": chat([
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": None,
             "tool_calls": [tool_call("call_1", "get_weather", {"city": "Paris", "unit": "celsius"})]},
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
             "content": "{\"temperature\": 18, \"condition\": \"sunny\"}"},
            {"role": "assistant", "content": "It is 18 °C and sunny in Paris."},
            {"role": "user", "content": "Find two books about photosynthesis."},
            {"role": "assistant", "content": None,
             "tool_calls": [tool_call("call_2", "search_library", {"query": "photosynthesis", "max_results": 2})]},
            {"role": "tool", "tool_call_id": "call_2", "name": "search_library",
             "content": "[\"Leaf Power\", \"The Green Machine\"]"},
            {"role": "assistant", "content": "I found \"Leaf Power\" and \"The Green Machine\"."},
            {"role": "user", "content": "Thanks! Which one is for grade 7?"},
        ], tools=TOOLS),
        "documents": chat([
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Using the documents, explain why leaves are green."},
        ], documents=DOCUMENTS),
        "multimodal": chat([
            {"role": "user", "content": [
                {"type": "image", "image": "leaf.png"},
                {"type": "text", "text": "What is shown in this picture?"},
            ]},
        ]),
        "score": {
            "messages": [
                {"role": "query", "content": "why are leaves green"},
                {"role": "document", "content": "Chlorophyll absorbs red and blue light and reflects green."},
            ],
            "add_generation_prompt": True,
            **SPECIAL_TOKENS,
        },
    }


# Values for prompty inputs, by input name (what an evaluator is called with).
CONVERSATION = [
    {"role": "user", "content": "Can you book a table for two at 7pm?"},
    {"role": "assistant", "content": "Booked: a table for two at 7pm at Chez Anne."},
]
TOOL_CALLS = [
    {"type": "tool_call", "tool_call_id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
]
PROMPTY_VALUES = {
    "query": "What is the capital of France, and what is the weather there?",
    "response": "The capital of France is Paris. It is 18 °C and sunny there today.",
    "context": "Paris is the capital and largest city of France. Weather today: 18 °C, sunny.",
    "ground_truth": "Paris is the capital of France.",
    "tool_calls": TOOL_CALLS,
    "tool_definitions": [TOOLS[0]["function"]],
    "conversation_history": CONVERSATION,
    "task": "Book a restaurant table for two people tonight.",
    "text": "Paris is the capital of France.",
}


def prompty_vars(front):
    out = {}
    for name, spec in (front.get("inputs") or {}).items():
        spec = spec or {}
        if name in PROMPTY_VALUES:
            out[name] = PROMPTY_VALUES[name]
        elif "default" in spec:
            out[name] = spec["default"]
        else:
            kind = str(spec.get("type", "string")).lower()
            out[name] = {"list": CONVERSATION, "dict": {"name": "example", "value": 1}}.get(
                kind, f"An example {name.replace('_', ' ')}.")
    return out


def split_prompty(text):
    """(front matter, body) as the prompty loader splits them."""
    if text.startswith("---"):
        _, front, body = text.split("---", 2)
        return yaml.safe_load(front) or {}, body.lstrip("\n")
    return {}, text


# ---------------------------------------------------------------------------

def render(env, body, variables):
    try:
        return {"output": env.from_string(body).render(**variables)}
    except Raised as e:
        return {"error": str(e), "raised": True}
    except Exception as e:  # what Jinja2 refuses, pgprompt must refuse too
        return {"error": f"{type(e).__name__}: {e}", "raised": False}


def bench(cache, file_name, seconds):
    for _, flavour, source, body in templates(cache):
        if flavour == "transformers" and source.endswith("/" + file_name):
            break
    else:
        sys.exit(f"no template {file_name} in the corpus")
    env = transformers_env(datetime.datetime.now(datetime.timezone.utc))
    variables = chat_scenarios()["tools"]
    template = env.from_string(body)
    output = template.render(**variables)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            template.render(**variables)
        n += 100
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "source": source,
        "body": body,
        "options": OPTIONS[flavour],
        "vars": json.dumps(variables, ensure_ascii=False),
        "output": output,
        "python_us_per_render": elapsed / n * 1e6,
        "jinja2": jinja2.__version__,
    }, ensure_ascii=False))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--now", type=float)
    ap.add_argument("--bench")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    if args.bench:
        return bench(args.cache, args.bench, args.seconds)
    if args.now is None:
        ap.error("--now is required")
    now = datetime.datetime.fromtimestamp(args.now, datetime.timezone.utc)
    env = transformers_env(now)
    out = sys.stdout
    for n, (family, flavour, source, text) in enumerate(templates(args.cache)):
        if flavour == "prompty":
            front, body = split_prompty(text)
            cases = {"inputs": prompty_vars(front)}
            case_env = PROMPTY_ENV
        else:
            body, cases, case_env = text, chat_scenarios(), env
        for scenario, variables in cases.items():
            out.write(json.dumps({
                "id": f"{source} [{scenario}]",
                "family": family,
                "source": source,
                "scenario": scenario,
                "options": OPTIONS[flavour],
                "body": body,
                "vars": json.dumps(variables, ensure_ascii=False),
                "expected": render(case_env, body, variables),
            }, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
