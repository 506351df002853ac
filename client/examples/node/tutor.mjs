// pgprompt from Node.js with node-postgres: one tutoring turn, end to end.
//
// Renders the prompt a user gets, calls a model (a stub here), logs the call
// with its tokens, latency and trace, scores it later, drops the local cache
// when a template changes (LISTEN pgprompt_changes), and falls back to a
// local copy of the last render when the database cannot be reached.
//
//     DATABASE_URL=postgresql://app@localhost/mydb node tutor.mjs
//
// The role needs pgprompt_app. Scores named helpfulness (numeric, 1 to 5)
// and resolved (boolean) must be declared (prompt_score_define).

import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import pg from "pg";

class Prompts {
  constructor(url, copyPath) {
    this.url = url;
    this.copyPath = copyPath;
    this.cache = new Map();
    this.db = null;
  }

  // Connects; when the database is down, renders come from the local copy.
  async connect() {
    const db = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 3000 });
    try {
      await db.connect();
      this.db = db;
    } catch {
      this.db = null;
    }
    return this;
  }

  // Drops cached renders of a template when it changes; resolves `changed`
  // with the first change seen.
  async listen() {
    this.listener = new pg.Client({ connectionString: this.url });
    await this.listener.connect();
    this.changed = new Promise((resolve) => {
      this.listener.on("notification", (note) => {
        const change = JSON.parse(note.payload);
        for (const key of this.cache.keys()) {
          if (JSON.parse(key)[0] === change.template) this.cache.delete(key);
        }
        resolve(change);
      });
    });
    await this.listener.query("LISTEN pgprompt_changes");
  }

  async renderFor(template, userId, variables) {
    const key = JSON.stringify([template, String(userId), variables]);
    if (this.cache.has(key)) return this.cache.get(key);
    if (this.db === null) return this.localCopy(key, template);
    // node-postgres sends parameters untyped: ids, numbers and objects
    // (as JSON text) all resolve to pgprompt's text forms.
    const { rows } = await this.db.query(
      "SELECT prompt, version, experiment, variant, config FROM pgprompt.prompt_render_for($1, $2, $3)",
      [template, userId, variables],
    );
    const render = { ...rows[0], source: "database" };
    this.cache.set(key, render);
    this.saveCopy(key, render);
    return render;
  }

  readCopies() {
    try {
      return JSON.parse(readFileSync(this.copyPath, "utf8"));
    } catch {
      return {};
    }
  }

  saveCopy(key, render) {
    const copies = this.readCopies();
    copies[key] = { ...render, source: "local copy" };
    writeFileSync(this.copyPath, JSON.stringify(copies));
  }

  localCopy(key, template) {
    const copy = this.readCopies()[key];
    if (copy === undefined) throw new Error(`database unreachable and no local copy of '${template}'`);
    return copy;
  }

  async close() {
    await this.db?.end();
    await this.listener?.end();
  }
}

// A stand-in for the model API: answers at once, counts words as tokens.
async function callModel(prompt, config) {
  await new Promise((r) => setTimeout(r, 10));
  return { text: `(${config.model}) Plants use sunlight to make food.`, inputTokens: prompt.split(/\s+/).length, outputTokens: 7 };
}

async function main() {
  const url = process.env.DATABASE_URL;
  const copyPath = process.env.PGPROMPT_LOCAL_COPY ?? "pgprompt-local-copy.json";
  const userId = 42; // a number, as applications keep them
  const variables = { topic: "photosynthesis", grade: 7 };

  const prompts = await new Prompts(url, copyPath).connect();
  await prompts.listen();
  let render = await prompts.renderFor("tutor", userId, variables);
  const where = render.experiment ? `experiment ${render.experiment}, variant ${render.variant}` : "no experiment";
  console.log(`render: user ${userId} gets version ${render.version} (${where})`);
  console.log(`prompt: ${render.prompt}`);

  // One turn is one trace; the call is logged with what the model reported.
  const traceId = randomUUID();
  const started = performance.now();
  const answer = await callModel(render.prompt, render.config);
  const latencyMs = performance.now() - started; // fractional: pgprompt rounds it
  const { rows } = await prompts.db.query(
    `SELECT pgprompt.prompt_log_execution(
         template => $1, version => $2, model => $3, input_tokens => $4, output_tokens => $5,
         latency_ms => $6, user_id => $7, rendered_prompt => $8, response => $9,
         experiment => $10, variant => $11, trace_id => $12, session_id => $13, metadata => $14) AS id`,
    ["tutor", render.version, render.config.model, answer.inputTokens, answer.outputTokens, latencyMs, userId,
     render.prompt, answer.text, render.experiment, render.variant, traceId, `session-${userId}`, { client: "node" }],
  );
  const call = rows[0].id; // bigint arrives as a string: ids beyond 2^53 stay exact
  console.log(`logged: call ${call} in trace ${traceId}`);

  // Later: the user rates the answer and the ticket is resolved.
  await prompts.db.query("SELECT pgprompt.prompt_score($1, 'helpfulness', $2, source => 'user')", [call, 4.5]);
  await prompts.db.query("SELECT pgprompt.prompt_score_trace($1, 'resolved', $2)", [traceId, true]);
  console.log(`scored: helpfulness 4.5 on call ${call}, resolved true on trace ${traceId}`);

  // A release elsewhere drops the cached render; the next one is fresh.
  console.log('waiting for a change to "tutor"');
  const wait = Number(process.env.PGPROMPT_WAIT ?? 30) * 1000;
  const change = await Promise.race([prompts.changed, new Promise((r) => setTimeout(() => r(null), wait).unref())]);
  if (change === null) throw new Error("no change arrived");
  console.log(`change: ${change.template} (${change.action}, version ${change.version}): cache dropped`);
  render = await prompts.renderFor("tutor", userId, variables);
  console.log(`render: user ${userId} gets version ${render.version}`);

  // The database is down: the last render is served from the local copy.
  const down = await new Prompts(process.env.PGPROMPT_DOWN_URL ?? "postgresql://127.0.0.1:1/none", copyPath).connect();
  render = await down.renderFor("tutor", userId, variables);
  console.log(`fallback: database unreachable, served version ${render.version} from the ${render.source}`);
  await prompts.close();
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
