//! The SQL the pages and the API read with. Each query builds its JSON in
//! the database (one round trip, one shape for both), is parameterised,
//! and names pgprompt's objects with their schema, whatever the role's
//! search_path.

use pgprompt_client::postgres::types::ToSql;
use pgprompt_client::postgres::{Client, GenericClient};
use pgprompt_client::{Error, Result};
use serde_json::Value;

use super::session::Privileges;

/// Runs a query whose row's one column is JSON text; no row is null.
pub fn json(c: &mut impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Value> {
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

/// The analytics of the last `days` days (UTC), optionally of one template:
/// every day of the range (`days`), cost per day and template (`costs`),
/// and per day calls, errors, error rate and latency p50/p95 from the
/// statistics' latency sketches (`daily`).
pub fn analytics(c: &mut Client, days: i32, template: &str) -> Result<Value> {
    json(
        c,
        "WITH range AS (
           SELECT d::date AS day
             FROM generate_series((now() AT TIME ZONE 'UTC')::date - ($1 - 1), (now() AT TIME ZONE 'UTC')::date, interval '1 day') d
         ), stats AS (
           SELECT (s.hour AT TIME ZONE 'UTC')::date AS day, s.*
             FROM pgprompt.prompt_stats_rows s
            WHERE s.experiment IS NULL AND s.hour >= ((now() AT TIME ZONE 'UTC')::date - ($1 - 1)) AT TIME ZONE 'UTC'
              AND ($2 = '' OR s.template_name = $2)
         )
         SELECT jsonb_build_object(
           'days', (SELECT jsonb_agg(day::text ORDER BY day) FROM range),
           'costs', (SELECT coalesce(jsonb_agg(r ORDER BY r.day, r.template), '[]') FROM (
                       SELECT day::text AS day, max(template_name) AS template, sum(executions)::bigint AS executions,
                              sum(cost_usd) AS cost_usd, (sum(executions) - sum(priced_executions))::bigint AS unpriced_executions
                         FROM stats GROUP BY day, template_id) r),
           'daily', (SELECT coalesce(jsonb_agg(r ORDER BY r.day), '[]') FROM (
                       SELECT day::text AS day, sum(executions)::bigint AS calls,
                              (sum(executions) - sum(successes))::bigint AS errors,
                              round((sum(executions) - sum(successes))::numeric / nullif(sum(executions), 0), 4) AS error_rate,
                              pgprompt.prompt_latency_quantile(pgprompt.prompt_latency_histogram(latency_histogram), 0.5) AS p50_ms,
                              pgprompt.prompt_latency_quantile(pgprompt.prompt_latency_histogram(latency_histogram), 0.95) AS p95_ms
                         FROM stats GROUP BY day) r),
           'templates', (SELECT coalesce(jsonb_agg(DISTINCT template_name), '[]') FROM pgprompt.prompt_stats_rows WHERE experiment IS NULL))::text",
        &[&days, &template],
    )
}

/// Experiments, newest first, with their template and variants.
pub fn experiments(c: &mut Client) -> Result<Value> {
    json(
        c,
        "SELECT coalesce(jsonb_agg(r ORDER BY r.created_at DESC), '[]')::text FROM (
           SELECT e.name, t.name AS template, e.status, e.variants, e.control_variant, e.primary_metric,
                  e.min_sample_size, e.started_at, e.stopped_at, e.concluded_at, e.winner, e.created_at, e.description
             FROM pgprompt.ab_test_experiments e JOIN pgprompt.prompt_templates t ON t.id = e.template_id) r",
        &[],
    )
}

/// One experiment: its settings, the results per variant, every metric per
/// variant with intervals, and the primary metric's evolution: per variant
/// and day (UTC), its value over the calls so far with the interval
/// (success rate, or mean latency or cost; for a score, the success rate).
/// NULL when there is none.
pub fn experiment(c: &mut Client, name: &str) -> Result<Value> {
    json(
        c,
        "SELECT jsonb_build_object(
           'experiment', to_jsonb(x),
           'results', (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'metrics' ORDER BY r.is_control DESC, r.variant), '[]')
                         FROM pgprompt.v_ab_test_results r WHERE r.experiment = x.name),
           'metrics', (SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY m.metric, m.is_control DESC, m.variant), '[]')
                         FROM pgprompt.v_ab_test_metrics m WHERE m.experiment = x.name),
           'evolution_metric', CASE WHEN x.primary_metric IN ('latency_ms', 'cost_usd') THEN x.primary_metric ELSE 'success_rate' END,
           'evolution', (SELECT coalesce(jsonb_agg(e ORDER BY e.day, e.variant), '[]') FROM (
                SELECT day::text AS day, variant, n, m.value, m.ci[1] AS ci_low, m.ci[2] AS ci_high
                  FROM (SELECT day, variant,
                               sum(sum(executions)) OVER w::bigint AS n,
                               sum(sum(successes)) OVER w::bigint AS s,
                               sum(sum(latency_count)) OVER w::bigint AS lat_n,
                               sum(sum(latency_sum_ms)) OVER w::float8 AS lat_sum,
                               sum(sum(latency_sum_squares)) OVER w::float8 AS lat_sq,
                               sum(sum(priced_executions)) OVER w::bigint AS cost_n,
                               sum(sum(cost_usd)) OVER w::float8 AS cost_sum,
                               sum(sum(cost_sum_squares)) OVER w::float8 AS cost_sq
                          FROM (SELECT (hour AT TIME ZONE 'UTC')::date AS day, *
                                  FROM pgprompt.ab_test_stats WHERE experiment = x.name) h
                         GROUP BY day, variant
                        WINDOW w AS (PARTITION BY variant ORDER BY day)) c
                 CROSS JOIN LATERAL (
                    -- The primary metric so far: a rate with Wilson's interval,
                    -- or a mean with its t interval (variance from the sums).
                    SELECT CASE x.primary_metric WHEN 'latency_ms' THEN c.lat_sum / nullif(c.lat_n, 0)
                                                 WHEN 'cost_usd' THEN c.cost_sum / nullif(c.cost_n, 0)
                                                 ELSE c.s::float8 / nullif(c.n, 0) END AS value,
                           CASE x.primary_metric
                                WHEN 'latency_ms' THEN CASE WHEN c.lat_n > 1 THEN pgprompt.prompt_mean_interval(c.lat_n, c.lat_sum / c.lat_n,
                                                                (c.lat_sq - c.lat_sum * c.lat_sum / c.lat_n) / (c.lat_n - 1)) END
                                WHEN 'cost_usd' THEN CASE WHEN c.cost_n > 1 THEN pgprompt.prompt_mean_interval(c.cost_n, c.cost_sum / c.cost_n,
                                                                (c.cost_sq - c.cost_sum * c.cost_sum / c.cost_n) / (c.cost_n - 1)) END
                                ELSE pgprompt.prompt_wilson_interval(c.s, c.n) END AS ci) m) e))::text
           FROM (SELECT e.name, t.name AS template, e.status, e.variants, e.control_variant, e.primary_metric,
                        e.guardrail_metrics, e.min_sample_size, e.significance_level, e.started_at, e.stopped_at,
                        e.concluded_at, e.winner, e.description, e.created_at, e.created_by
                   FROM pgprompt.ab_test_experiments e JOIN pgprompt.prompt_templates t ON t.id = e.template_id
                  WHERE e.name = $1) x",
        &[&name],
    )
}

/// The guardrails, built-in first.
pub fn guardrails(c: &mut Client) -> Result<Value> {
    json(
        c,
        "SELECT coalesce(jsonb_agg(to_jsonb(g) - 'id' ORDER BY g.builtin DESC, g.name), '[]')::text FROM pgprompt.prompt_guardrails g",
        &[],
    )
}

/// What the enabled guardrails find in `text` for `direction`, with
/// character offsets.
pub fn scan(c: &mut Client, text: &str, direction: &str) -> Result<Value> {
    json(
        c,
        "SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.start_pos, f.end_pos), '[]')::text FROM pgprompt.prompt_guard_scan($1, $2) f",
        &[&text, &direction],
    )
}

/// The price in effect now for each model.
pub fn prices(c: &mut Client) -> Result<Value> {
    json(
        c,
        "SELECT coalesce(jsonb_agg(p ORDER BY p.model), '[]')::text FROM (
           SELECT DISTINCT ON (model) model, provider, match_pattern, effective_from, input_usd_per_mtok, output_usd_per_mtok,
                  cached_input_usd_per_mtok, long_context_threshold, long_input_usd_per_mtok, long_output_usd_per_mtok, source
             FROM pgprompt.prompt_model_prices WHERE effective_from <= now() ORDER BY model, effective_from DESC) p",
        &[],
    )
}

/// The alert rules and what each says now. `prompt_check_alerts()` also
/// notifies `pgprompt_alerts` for firing rules; run in a transaction that
/// is rolled back, looking never sends anything.
pub fn alerts(c: &mut Client) -> Result<Value> {
    let mut tx = c.transaction()?;
    let v = json(
        &mut tx,
        "SELECT jsonb_build_object(
           'rules', (SELECT coalesce(jsonb_agg(r ORDER BY r.name), '[]') FROM (
                       SELECT a.name, a.metric, t.name AS template, a.threshold, a.time_window::text AS time_window,
                              a.min_executions, a.enabled, a.description, a.builtin
                         FROM pgprompt.prompt_alert_rules a LEFT JOIN pgprompt.prompt_templates t ON t.id = a.template_id) r),
           'now', (SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('window', c.\"window\"::text) ORDER BY c.firing DESC, c.rule), '[]')
                     FROM pgprompt.prompt_check_alerts() c))::text",
        &[],
    );
    tx.rollback()?;
    v
}

/// The audit log, newest first, filtered by template (object name), actor
/// and action; at most `limit` entries.
pub fn audit(c: &mut Client, object: &str, actor: &str, action: &str, limit: i64) -> Result<Value> {
    json(
        c,
        "SELECT coalesce(jsonb_agg(a ORDER BY a.id DESC), '[]')::text FROM (
           SELECT id, occurred_at, actor, application, action, object_type, object_name, version, before, after
             FROM pgprompt.prompt_audit_logs
            WHERE ($1 = '' OR object_name = $1 OR object_name LIKE $1 || '@%')
              AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3)
            ORDER BY id DESC LIMIT $4) a",
        &[&object, &actor, &action, &limit],
    )
}

/// A template's test cases.
pub fn test_cases(c: &mut Client, name: &str) -> Result<Value> {
    json(
        c,
        "SELECT coalesce(jsonb_agg(r ORDER BY r.name), '[]')::text FROM (
           SELECT c.name, c.description, c.vars, c.assertions, c.updated_at, c.updated_by
             FROM pgprompt.prompt_test_cases c JOIN pgprompt.prompt_templates t ON t.id = c.template_id WHERE t.name = $1) r",
        &[&name],
    )
}
