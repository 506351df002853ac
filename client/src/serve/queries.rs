//! The SQL the pages and the API read with. Each query builds its JSON in
//! the database (one round trip, one shape for both), is parameterised,
//! and names pgprompt's objects with their schema, whatever the role's
//! search_path.

use pgprompt_client::postgres::types::ToSql;
use pgprompt_client::postgres::Client;
use pgprompt_client::{Error, Result};
use serde_json::Value;

use super::session::Privileges;

/// Runs a query whose row's one column is JSON text; no row is null.
pub fn json(c: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Value> {
    let text: Option<String> = c.query_opt(sql, params)?.and_then(|row| row.get(0));
    match text {
        Some(t) => serde_json::from_str(&t).map_err(|e| Error::local(format!("the database sent invalid JSON: {e}"))),
        None => Ok(Value::Null),
    }
}

/// The pgprompt roles the current role is a member of (superusers are of
/// all); a role missing (the extension not installed) counts as no.
pub fn privileges(c: &mut Client) -> Result<Privileges> {
    let member = |r: &str| {
        format!("CASE WHEN pg_catalog.to_regrole('{r}') IS NULL THEN false ELSE pg_catalog.pg_has_role(current_user, '{r}', 'USAGE') END")
    };
    let sql = format!(
        "SELECT {}, {}, {}, {}",
        member("pgprompt_reader"),
        member("pgprompt_app"),
        member("pgprompt_admin"),
        member("pgprompt_releaser")
    );
    let row = c.query_one(&sql, &[])?;
    Ok(Privileges { reader: row.get(0), app: row.get(1), admin: row.get(2), releaser: row.get(3) })
}

/// What the template list is filtered by (the page's and the API's query).
#[derive(serde::Deserialize, Default, Clone)]
pub struct TemplateFilter {
    /// Search in name, description or category, any case.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub label: String,
}

/// Templates matching a filter; each with its release, newest version and labels.
pub fn templates(c: &mut Client, f: &TemplateFilter) -> Result<Value> {
    json(
        c,
        "SELECT coalesce(jsonb_agg(t ORDER BY t.name), '[]')::text FROM (
           SELECT t.name, t.description, t.category, t.active_version, t.updated_at, t.updated_by,
                  t.requires_approval,
                  (SELECT max(v.version) FROM pgprompt.prompt_versions v WHERE v.template_id = t.id) AS latest_version,
                  (SELECT v.kind FROM pgprompt.prompt_versions v WHERE v.template_id = t.id AND v.version = t.active_version) AS kind,
                  (SELECT jsonb_agg(jsonb_build_object('label', l.label, 'version', l.version)
                                    ORDER BY l.label <> 'production', l.label)
                     FROM pgprompt.v_labels l WHERE l.template_id = t.id) AS labels
             FROM pgprompt.prompt_templates t
            WHERE ($1 = '' OR strpos(lower(t.name || ' ' || coalesce(t.description, '') || ' ' || coalesce(t.category, '')), lower($1)) > 0)
              AND ($2 = '' OR t.category = $2)
              AND ($3 = '' OR EXISTS (SELECT FROM pgprompt.v_labels l WHERE l.template_id = t.id AND l.label = $3))
         ) t",
        &[&f.q, &f.category, &f.label],
    )
}

/// The categories and labels in use, for the list's filters.
pub fn template_filters(c: &mut Client) -> Result<Value> {
    json(
        c,
        "SELECT jsonb_build_object(
           'categories', (SELECT coalesce(jsonb_agg(DISTINCT category), '[]') FROM pgprompt.prompt_templates WHERE category IS NOT NULL),
           'labels', (SELECT coalesce(jsonb_agg(DISTINCT label), '[]') FROM pgprompt.v_labels))::text",
        &[],
    )
}

/// One template: its settings, versions (newest first, with author,
/// message, approvals and labels) and labels. NULL when there is none.
pub fn template(c: &mut Client, name: &str) -> Result<Value> {
    json(
        c,
        "SELECT jsonb_build_object(
           'name', t.name, 'description', t.description, 'category', t.category,
           'active_version', t.active_version, 'requires_approval', t.requires_approval,
           'protected_labels', t.protected_labels, 'created_at', t.created_at, 'created_by', t.created_by,
           'updated_at', t.updated_at, 'updated_by', t.updated_by,
           'versions', (SELECT jsonb_agg(jsonb_build_object(
                'version', v.version, 'kind', v.kind, 'message', v.message, 'parent_version', v.parent_version,
                'created_by', coalesce(v.authored_by, v.created_by), 'created_at', coalesce(v.authored_at, v.created_at),
                'variables', v.variables,
                'approvals', (SELECT coalesce(jsonb_agg(jsonb_build_object('by', a.approved_by, 'at', a.approved_at, 'comment', a.comment)
                                                ORDER BY a.approved_at), '[]')
                                FROM pgprompt.prompt_approvals a WHERE a.template_id = t.id AND a.version = v.version),
                'labels', (SELECT coalesce(jsonb_agg(l.label ORDER BY l.label <> 'production', l.label), '[]')
                             FROM pgprompt.v_labels l WHERE l.template_id = t.id AND l.version = v.version))
              ORDER BY v.version DESC)
              FROM pgprompt.prompt_versions v WHERE v.template_id = t.id),
           'labels', (SELECT jsonb_agg(jsonb_build_object('label', l.label, 'version', l.version, 'moved_at', l.moved_at, 'moved_by', l.moved_by)
                                       ORDER BY l.label <> 'production', l.label)
                        FROM pgprompt.v_labels l WHERE l.template_id = t.id))::text
           FROM pgprompt.prompt_templates t WHERE t.name = $1",
        &[&name],
    )
}

/// One version as `prompt_get` gives it (default: the release), as JSON.
pub fn version(c: &mut Client, name: &str, version: Option<i32>, label: Option<&str>) -> Result<Value> {
    json(c, "SELECT to_jsonb(g)::text FROM pgprompt.prompt_get($1, $2, $3) g", &[&name, &version, &label])
}
