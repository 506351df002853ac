"""pgprompt from Python with psycopg 3: one tutoring turn, end to end.

Renders the prompt a user gets, calls a model (a stub here), logs the call
with its tokens, latency and trace, scores it later, drops the local cache
when a template changes (LISTEN pgprompt_changes), and falls back to a local
copy of the last render when the database cannot be reached.

    DATABASE_URL=postgresql://app@localhost/mydb python tutor.py

The role needs pgprompt_app. Scores named helpfulness (numeric, 1 to 5) and
resolved (boolean) must be declared (prompt_score_define).
"""

import json
import os
import sys
import threading
import time
import uuid

import psycopg
from psycopg.types.json import Jsonb


class Prompts:
    """Renders through pgprompt, with a cache dropped on change and a local copy."""

    def __init__(self, url, copy_path):
        self.url = url
        self.copy_path = copy_path
        self.cache = {}
        self.changed = threading.Event()
        self.last_change = None
        try:
            self.db = psycopg.connect(url, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError:
            self.db = None  # down: renders come from the local copy

    def listen(self):
        """Drops cached renders of a template when it changes (in a thread)."""
        listener = psycopg.connect(self.url, autocommit=True)
        listener.execute("LISTEN pgprompt_changes")

        def loop():
            for note in listener.notifies():
                change = json.loads(note.payload)
                self.cache = {k: v for k, v in self.cache.items() if k[0] != change["template"]}
                self.last_change = change
                self.changed.set()

        threading.Thread(target=loop, daemon=True).start()

    def render_for(self, template, user_id, variables):
        key = (template, str(user_id), json.dumps(variables, sort_keys=True))
        if key in self.cache:
            return self.cache[key]
        if self.db is None:
            return self.local_copy(key)
        # user_id may be an int: pgprompt takes typed ids (and dicts as json or jsonb).
        row = self.db.execute(
            "SELECT prompt, version, experiment, variant, config FROM pgprompt.prompt_render_for(%s, %s, %s)",
            (template, user_id, Jsonb(variables)),
        ).fetchone()
        render = dict(zip(["prompt", "version", "experiment", "variant", "config"], row), source="database")
        self.cache[key] = render
        self.save_copy(key, render)
        return render

    def save_copy(self, key, render):
        copies = self.read_copies()
        copies["|".join(key)] = dict(render, source="local copy")
        with open(self.copy_path, "w") as f:
            json.dump(copies, f)

    def read_copies(self):
        try:
            with open(self.copy_path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def local_copy(self, key):
        copy = self.read_copies().get("|".join(key))
        if copy is None:
            raise RuntimeError(f"database unreachable and no local copy of {key[0]!r}")
        return copy


def call_model(prompt, config):
    """A stand-in for the model API: answers at once, counts words as tokens."""
    time.sleep(0.01)
    return {"text": f"({config['model']}) Plants use sunlight to make food.",
            "input_tokens": len(prompt.split()), "output_tokens": 7}


def main():
    url = os.environ["DATABASE_URL"]
    copy_path = os.environ.get("PGPROMPT_LOCAL_COPY", "pgprompt-local-copy.json")
    user_id = 42  # an int, as applications keep them
    variables = {"topic": "photosynthesis", "grade": 7}

    prompts = Prompts(url, copy_path)
    prompts.listen()
    render = prompts.render_for("tutor", user_id, variables)
    where = f"experiment {render['experiment']}, variant {render['variant']}" if render["experiment"] else "no experiment"
    print(f"render: user {user_id} gets version {render['version']} ({where})")
    print(f"prompt: {render['prompt']}")

    # One turn is one trace; the call is logged with what the model reported.
    trace_id = str(uuid.uuid4())
    started = time.perf_counter()
    answer = call_model(render["prompt"], render["config"])
    latency_ms = (time.perf_counter() - started) * 1000  # a float: pgprompt rounds it
    call = prompts.db.execute(
        """SELECT pgprompt.prompt_log_execution(
               template => %s, version => %s, model => %s, input_tokens => %s, output_tokens => %s,
               latency_ms => %s, user_id => %s, rendered_prompt => %s, response => %s,
               experiment => %s, variant => %s, trace_id => %s, session_id => %s,
               metadata => %s)""",
        ("tutor", render["version"], render["config"]["model"], answer["input_tokens"], answer["output_tokens"],
         latency_ms, user_id, render["prompt"], answer["text"], render["experiment"], render["variant"],
         trace_id, f"session-{user_id}", Jsonb({"client": "python"})),
    ).fetchone()[0]
    print(f"logged: call {call} in trace {trace_id}")

    # Later: the user rates the answer (a float) and the ticket is resolved.
    prompts.db.execute("SELECT pgprompt.prompt_score(%s, 'helpfulness', %s, source => 'user')", (call, 4.5))
    prompts.db.execute("SELECT pgprompt.prompt_score_trace(%s, 'resolved', %s)", (trace_id, True))
    print(f"scored: helpfulness 4.5 on call {call}, resolved true on trace {trace_id}")

    # A release elsewhere drops the cached render; the next one is fresh.
    print('waiting for a change to "tutor"', flush=True)
    if not prompts.changed.wait(timeout=float(os.environ.get("PGPROMPT_WAIT", "30"))):
        sys.exit("no change arrived")
    change = prompts.last_change
    print(f"change: {change['template']} ({change['action']}, version {change['version']}): cache dropped")
    render = prompts.render_for("tutor", user_id, variables)
    print(f"render: user {user_id} gets version {render['version']}")

    # The database is down: the last render is served from the local copy.
    down = Prompts(os.environ.get("PGPROMPT_DOWN_URL", "postgresql://127.0.0.1:1/none"), copy_path)
    render = down.render_for("tutor", user_id, variables)
    print(f"fallback: database unreachable, served version {render['version']} from the {render['source']}")


if __name__ == "__main__":
    main()
