"""Machine translations of English training texts into Spanish, French,
Italian and Portuguese, by Apertium (rule-based, Debian's packages, pinned
in sources.json under "translation").

The pinned sources hold many English attacks and few in other languages,
so the detector learnt what an attack looks like mostly in English words.
Apertium's translations are rough ("reveal your system prompt" becomes
"revelar vuestro sistema puntual"), but the words an attack is made of
("ignora todas las instrucciones anteriores") come through, and benign
texts are translated alike so that a language is no sign of either class.

Spanish is translated from English (eng-spa); French, Italian and
Portuguese from that Spanish (es-fr, spa-ita, es-pt: Debian has no direct
English pairs for them). Which texts: per source and class, English texts
of the training split (never the held-back one), a different deterministic
selection per language (by a hash of language and text), at most
`PER_LANGUAGE` and at most one in `SHARE` of the source's English texts,
so translations never outweigh what a source wrote.

Translations are cached in the data cache under the packages' versions:
the same versions give the same bytes.

With `prepare.py --translate`, as `make model` and `make model-unseen`
run it (`TRANSLATE=0` leaves them out, to measure what they bring).
"""

import hashlib
import json
import os
import subprocess
import sys

PER_LANGUAGE = 100
SHARE = 8
MIN_CHARS, MAX_CHARS = 20, 1500
# Marks where one text ends in a batch; Apertium passes an unknown word
# through untouched (with -u, unmarked).
SEPARATOR = "9QQSEPQQ9"
# Target language: the Apertium modes from English, in order.
ROUTES = {
    "es": ["eng-spa"],
    "fr": ["eng-spa", "es-fr"],
    "it": ["eng-spa", "spa-ita"],
    "pt": ["eng-spa", "es-pt"],
}


def english(text):
    """Mostly ASCII letters: an English text, near enough for choosing
    what to translate (the sources' other languages are in other scripts
    or marked with accents)."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 10 and sum(c.isascii() for c in letters) >= 0.99 * len(letters)


def check_versions(pinned):
    """Exits unless the installed Apertium packages are the pinned ones."""
    for package, version in pinned.items():
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        if r.returncode != 0 or r.stdout.strip() != version:
            have = r.stdout.strip() or "not installed"
            sys.exit(f"translation: {package} {version} is pinned, {have} here (train.sh installs it)")


def apertium(mode, texts):
    """Translates texts in one batch, one Apertium pipeline per mode."""
    if not texts:
        return []
    joined = f"\n\n{SEPARATOR}\n\n".join(texts)
    out = subprocess.run(["apertium", "-u", mode], input=joined.encode(), capture_output=True, check=True).stdout.decode()
    parts = [p.strip() for p in out.split(SEPARATOR)]
    if len(parts) != len(texts):
        sys.exit(f"translation: apertium {mode} gave {len(parts)} texts for {len(texts)}")
    return parts


def chosen(rows, lang):
    """The (text, label, source) rows of `rows` to translate into `lang`."""
    by_source = {}
    for t, l, s in rows:
        if MIN_CHARS <= len(t) <= MAX_CHARS and english(t):
            by_source.setdefault((s, l), []).append(t)
    out = []
    for (s, l), texts in sorted(by_source.items()):
        key = lambda t: hashlib.sha256(f"{lang}\0{t}".encode()).hexdigest()
        n = min(PER_LANGUAGE, len(texts) // SHARE)
        out.extend((t, l, s) for t in sorted(texts, key=key)[:n])
    return out


def translations(rows, pinned, cache):
    """Translations of the training rows `rows` ((text, label, source),
    training split only): (translated text, label, source, language)."""
    check_versions(pinned)
    tag = hashlib.sha256(json.dumps(pinned, sort_keys=True).encode()).hexdigest()[:12]
    path = os.path.join(cache, f"translations-{tag}.json")
    memo = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}

    def run(mode, texts):
        todo = sorted({t for t in texts if f"{mode}\0{t}" not in memo})
        for t, out in zip(todo, apertium(mode, todo)):
            memo[f"{mode}\0{t}"] = out
        return [memo[f"{mode}\0{t}"] for t in texts]

    picks = {lang: chosen(rows, lang) for lang in ROUTES}
    out = []
    for lang, route in ROUTES.items():
        texts = [t for t, _, _ in picks[lang]]
        for mode in route:
            texts = run(mode, texts)
        out.extend((tr, l, s, lang) for tr, (_, l, s) in zip(texts, picks[lang]) if tr)
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(memo, f, ensure_ascii=False, sort_keys=True)
    os.replace(tmp, path)
    return out
