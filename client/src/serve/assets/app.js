// pgprompt serve: the little the pages do in the browser. Everything the
// server sends back is put in the page as text (textContent), never as HTML.
"use strict";

document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// The editor's live preview: the body, kind and configuration as typed and
// the variables' values go to /template/preview, which validates and renders
// them in the database (in a transaction it rolls back) and answers with the
// variables the body reads, the output, or the error.
(function editor() {
  const form = document.getElementById("editor");
  if (!form) return;
  const body = document.getElementById("body");
  const kind = document.getElementById("kind");
  const config = document.getElementById("config");
  const name = document.getElementById("name");
  const varsForm = document.getElementById("vars");
  const validation = document.getElementById("validation");
  const missing = document.getElementById("missing");
  const output = document.getElementById("output");
  const values = {};
  let timer = null;
  let sequence = 0;

  // A variable's value: JSON when it is an object, list or number written as
  // such (chat placeholders take message lists), else the text typed.
  function parsed(text) {
    const t = text.trim();
    if (/^[\[{]/.test(t)) { try { return JSON.parse(t); } catch (e) { /* text */ } }
    return text;
  }

  function showVariables(names) {
    const current = Array.from(varsForm.querySelectorAll("input")).map((i) => i.name);
    if (JSON.stringify(current) === JSON.stringify(names)) return;
    varsForm.replaceChildren();
    for (const n of names) {
      const label = document.createElement("label");
      label.textContent = n + " ";
      const input = document.createElement("input");
      input.name = n;
      input.id = "var-" + n;
      input.value = values[n] || "";
      input.addEventListener("input", () => { values[n] = input.value; schedule(); });
      label.appendChild(input);
      varsForm.appendChild(label);
    }
  }

  function showOutput(result) {
    output.replaceChildren();
    if (result.kind === "chat" && Array.isArray(result.output)) {
      for (const m of result.output) {
        const div = document.createElement("div");
        div.className = "msg " + (m.role || "");
        const role = document.createElement("span");
        role.className = "role";
        role.textContent = m.role;
        div.appendChild(role);
        const content = document.createElement("span");
        content.className = "content";
        content.textContent = typeof m.content === "string" ? m.content : JSON.stringify(m.content, null, 2);
        div.appendChild(content);
        output.appendChild(div);
      }
    } else if (typeof result.output === "string") {
      const pre = document.createElement("pre");
      pre.id = "rendered";
      pre.textContent = result.output;
      output.appendChild(pre);
    }
  }

  async function refresh() {
    const mine = ++sequence;
    const vars = {};
    for (const [k, v] of Object.entries(values)) if (v !== "") vars[k] = parsed(v);
    let result;
    try {
      const response = await fetch("/template/preview", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify({ name: name ? name.value : "", body: body.value, kind: kind.value, config: config.value, vars }),
      });
      result = await response.json();
    } catch (e) {
      result = { error: { message: "The preview could not reach the server: " + e } };
    }
    if (mine !== sequence) return;
    if (Array.isArray(result.variables)) showVariables(result.variables);
    const empty = (result.variables || []).filter((n) => !values[n]);
    missing.hidden = empty.length === 0;
    missing.textContent = empty.length ? "Missing variables: " + empty.join(", ") : "";
    if (result.error) {
      validation.className = "validation error";
      validation.textContent = (result.error.explanation ? result.error.explanation + " " : "") + result.error.message +
        (result.error.sqlstate ? " (SQLSTATE " + result.error.sqlstate + ")" : "");
      if (!result.variables) output.replaceChildren();
      else if (result.output === undefined) output.replaceChildren();
    } else {
      validation.className = "validation ok";
      validation.textContent = "Valid.";
      showOutput(result);
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  for (const el of [body, kind, config]) el.addEventListener("input", schedule);
  kind.addEventListener("change", schedule);
  refresh();
})();
