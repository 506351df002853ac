//! The OpenAPI 3.1 document served at `/api/openapi.json`: every endpoint
//! of `api`, its body and its answers. Kept beside the routes it
//! describes; a test checks each route is in it.

use serde_json::{json, Value};

/// One operation: summary, request body schema (if any), success status.
fn op(summary: &str, body: Option<Value>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            ok: {"description": "Done.", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"$ref": "#/components/responses/BadRequest"},
            "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
            "422": {"$ref": "#/components/responses/Error"},
            "503": {"$ref": "#/components/responses/Error"}
        }
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    o
}

fn name_param() -> Value {
    json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}, "description": "Template name (percent-encode `/`)."}])
}

pub fn document() -> Value {
    let version_in = json!({"$ref": "#/components/schemas/VersionIn"});
    let release = json!({"$ref": "#/components/schemas/Release"});
    let t = "/api/v1/admin/prompts/templates";
    let mut paths = serde_json::Map::new();
    paths.insert("/api/v1/auth/token".into(), json!({
        "post": {
            "summary": "Log in with a PostgreSQL role and password; returns a bearer token for that role.",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["role", "password"],
                "properties": {"role": {"type": "string"}, "password": {"type": "string"}}}}}},
            "responses": {"200": {"description": "The token (`token`, `expires_at` in Unix seconds, `privileges`)."},
                          "401": {"$ref": "#/components/responses/Unauthorized"},
                          "429": {"$ref": "#/components/responses/Error"}}
        },
        "delete": op("Revoke the token sent.", None, "204")
    }));
    paths.insert(t.into(), json!({
        "get": {
            "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Search in name, description and category."},
                {"name": "category", "in": "query", "schema": {"type": "string"}},
                {"name": "label", "in": "query", "schema": {"type": "string"}}],
            "summary": "List templates with their release, newest version and labels.",
            "security": [{"bearer": []}],
            "responses": {"200": {"description": "The templates."}, "401": {"$ref": "#/components/responses/Unauthorized"}}
        },
        "post": op("Create a template (its first version is the release) or add a version to it.", Some(version_in.clone()), "201")
    }));
    let mut one = json!({
        "parameters": name_param(),
        "get": op("A template: settings, versions with authors, messages, approvals and labels; `selected` is the release (or ?version= / ?label=).", None, "200"),
        "put": op("Add a version (versions are immutable).", Some(version_in), "200"),
        "delete": op("Delete the template (the audit log keeps it).", None, "204")
    });
    one["get"]["parameters"] = json!([
        {"name": "version", "in": "query", "schema": {"type": "integer"}},
        {"name": "label", "in": "query", "schema": {"type": "string"}}]);
    paths.insert(format!("{t}/{{name}}"), one);
    for (tail, summary, body) in [
        ("activate", "Release a version (gated by the template's test cases; `force` to override, audited).", Some(release.clone())),
        ("rollback", "Release again the version released before the current one.", None),
        ("labels", "Create or move a label (`label`, `version`).", Some(release.clone())),
        ("approve", "Approve a version as this role (not its author).", Some(release.clone())),
    ] {
        paths.insert(format!("{t}/{{name}}/{tail}"), json!({"parameters": name_param(), "post": op(summary, body, "200")}));
    }
    let mut unlabel = json!({"delete": op("Remove a label (`production` cannot be removed).", None, "204")});
    unlabel["parameters"] = json!([name_param()[0].clone(), {"name": "label", "in": "path", "required": true, "schema": {"type": "string"}}]);
    paths.insert(format!("{t}/{{name}}/labels/{{label}}"), unlabel);
    paths.insert("/api/v1/admin/prompts/test".into(), json!({"post": op(
        "Render a stored template (`template`, `version` or `label`) or a body not stored (`body`, `options`) with `vars`.",
        Some(json!({"type": "object", "properties": {
            "template": {"type": "string"}, "body": {"type": "string"}, "vars": {"type": "object"},
            "version": {"type": "integer"}, "label": {"type": "string"}, "options": {"type": "object"}}})),
        "200")}));
    let g = "/api/v1/admin/prompts/guardrails";
    let guardrail_in = json!({"$ref": "#/components/schemas/GuardrailIn"});
    paths.insert(g.into(), json!({
        "get": op("List the guardrails.", None, "200"),
        "post": op("Create a guardrail (`name` and `kind` required).", Some(guardrail_in.clone()), "201")
    }));
    paths.insert(format!("{g}/scan"), json!({"post": op(
        "What the enabled guardrails find in `text` for `direction` (writes nothing).",
        Some(json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}, "direction": {"enum": ["input", "output", "both", "context"]}}})),
        "200")}));
    paths.insert(format!("{g}/{{name}}"), json!({
        "parameters": name_param(),
        "get": op("A guardrail.", None, "200"),
        "put": op("Change a guardrail's fields (those given).", Some(guardrail_in), "200"),
        "delete": op("Delete a guardrail (built-in ones cannot be: 55000).", None, "204")
    }));
    for (tail, summary) in [("activate", "Enable the guardrail."), ("deactivate", "Disable the guardrail.")] {
        paths.insert(format!("{g}/{{name}}/{tail}"), json!({"parameters": name_param(), "post": op(summary, None, "200")}));
    }
    let days = json!([{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 366}, "description": "Default 30."}]);
    let mut all = json!({"get": op("Per day (UTC): cost by template, calls, errors, error rate, latency p50/p95; and the 30-day performance per template version.", None, "200")});
    all["get"]["parameters"] = days.clone();
    paths.insert("/api/v1/admin/prompts/analytics".into(), all);
    let mut one = json!({"parameters": [{"name": "template", "in": "path", "required": true, "schema": {"type": "string"}}],
                         "get": op("The same, for one template.", None, "200")});
    one["get"]["parameters"] = days;
    paths.insert("/api/v1/admin/prompts/analytics/{template}".into(), one);
    let e = "/api/v1/admin/prompts/experiments";
    paths.insert(e.into(), json!({
        "get": op("List the experiments.", None, "200"),
        "post": op("Create a draft experiment (`prompt_experiment_create`).", Some(json!({"$ref": "#/components/schemas/ExperimentIn"})), "201")
    }));
    paths.insert(format!("{e}/{{name}}"), json!({"parameters": name_param(), "get": op("An experiment: settings, results, metrics with intervals, evolution.", None, "200")}));
    paths.insert(format!("{e}/{{name}}/results"), json!({"parameters": name_param(), "get": op("Its results per variant and every metric with intervals.", None, "200")}));
    let step = json!({"type": "object", "additionalProperties": false, "properties": {"force": {"type": "boolean"}, "variant": {"type": "string"}, "version": {"type": "integer"}}});
    for (tail, summary) in [
        ("start", "Start or resume it (variants must pass the test cases; `force`)."),
        ("stop", "Pause it: everyone gets the active version."),
        ("promote", "Release the winner (`variant` or `version`, else the significant one) and conclude."),
    ] {
        let body = (tail != "stop").then(|| step.clone());
        paths.insert(format!("{e}/{{name}}/{tail}"), json!({"parameters": name_param(), "post": op(summary, body, "200")}));
    }
    paths.insert("/api/v1/admin/prompts/scores".into(), json!({"post": op(
        "Score a logged call (`execution`) or a trace (`trace_id`) with a declared score's `name` and `value`.",
        Some(json!({"type": "object", "required": ["name", "value"], "properties": {
            "execution": {"type": "integer"}, "trace_id": {"type": "string"}, "name": {"type": "string"},
            "value": {"type": ["number", "boolean", "string"]}, "comment": {"type": "string"}, "source": {"type": "string"}}})),
        "201")}));
    json!({
        "openapi": "3.1.0",
        "info": {"title": "pgprompt", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The admin API of pgprompt serve. Every call runs as the PostgreSQL role its token was issued to."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "VersionIn": {"type": "object", "required": ["body"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "body": {"type": "string"}, "kind": {"enum": ["text", "chat"]},
                    "config": {"type": "object"}, "options": {"type": "object"}, "input_schema": {},
                    "message": {"type": "string"}, "description": {"type": "string"}, "category": {"type": "string"}}},
                "GuardrailIn": {"type": "object", "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "kind": {"enum": ["pii", "injection", "toxicity", "regex", "keywords"]},
                    "severity": {"enum": ["low", "medium", "high", "critical"]}, "action": {"enum": ["log", "warn", "block", "redact"]},
                    "direction": {"enum": ["input", "output", "both"]}, "config": {"type": "object"}, "description": {"type": "string"},
                    "enabled": {"type": "boolean"}}},
                "ExperimentIn": {"type": "object", "required": ["name", "template", "variants"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "template": {"type": "string"},
                    "variants": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, "weight": {"type": "integer"}}}},
                    "control": {"type": "string"}, "salt": {"type": "string"}, "min_sample_size": {"type": "integer"},
                    "significance_level": {"type": "number"}, "description": {"type": "string"}, "primary_metric": {"type": "string"},
                    "guardrail_metrics": {"type": "array", "items": {"type": "string"}}}},
                "Release": {"type": "object", "additionalProperties": false, "properties": {
                    "version": {"type": "integer"}, "label": {"type": "string"}, "force": {"type": "boolean"}, "comment": {"type": "string"}}},
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "message": {"type": "string"}, "sqlstate": {"type": ["string", "null"]}, "explanation": {"type": ["string", "null"]}}}}}
            },
            "responses": {
                "BadRequest": {"description": "Malformed JSON or missing fields.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "Unauthorized": {"description": "No token, or an expired or forged one.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "Error": {"description": "The database's error, its SQLSTATE and an explanation.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        }
    })
}
