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
