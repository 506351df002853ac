//! `pgprompt doctor`: the seeds' verification script. One line per check:
//! `ok`, `WARN` for a deliberate change of policy (a default guardrail or
//! alert rule switched off or changed, an active version released over its
//! failing test cases with force), `FAIL` for a broken installation (a
//! missing table, view, trigger, index, role or extension). Exit status 1
//! when anything fails; warnings alone exit 0. `--json` prints the checks
//! as an array of {status, check, detail}.

use postgres::Client;
use pgprompt_client::Result;
use serde_json::json;

use super::{Done, Out};

const TABLES: [&str; 14] = [
    "prompt_templates",
    "prompt_versions",
    "prompt_labels",
    "prompt_activations",
    "prompt_audit_logs",
    "prompt_guardrails",
    "prompt_guardrail_violations",
    "prompt_model_prices",
    "prompt_executions",
    "prompt_stats_pending",
    "prompt_stats_hourly",
    "ab_test_experiments",
    "prompt_test_cases",
    "prompt_alert_rules",
];

const VIEWS: [&str; 10] = [
    "v_template_performance",
    "v_recent_execution_errors",
    "v_guardrail_violations_summary",
    "v_ab_test_results",
    "v_active_ab_tests",
    "v_daily_costs",
    "v_hourly_error_rates",
    "prompt_template_stats",
    "ab_test_stats",
    "prompt_stats",
];

const TRIGGERS: [(&str, &str); 3] = [
    ("trigger_update_template_statistics", "prompt_executions"),
    ("trigger_update_ab_test_statistics", "prompt_executions"),
    ("trigger_enforce_single_active_template", "prompt_templates"),
];

const GUARDRAILS: [(&str, &str, &str); 3] = [
    ("pii_detection_basic", "critical", "block"),
    ("toxic_content_filter", "high", "warn"),
    ("prompt_injection_detection", "high", "warn"),
];

/// What a check found.
#[derive(Clone, Copy, PartialEq)]
enum Status {
    Ok,
    /// A deliberate change of the defaults: reported, not a failure.
    Warn,
    /// The installation is broken.
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Default)]
struct Report {
    checks: Vec<(Status, String, String)>,
}

impl Report {
    fn line(&mut self, ok: bool, what: &str, detail: String) {
        self.add(if ok { Status::Ok } else { Status::Fail }, what, detail);
    }

    fn add(&mut self, status: Status, what: &str, detail: String) {
        self.checks.push((status, what.to_string(), detail));
    }

    /// Prints the checks and says how the command ends.
    fn finish(self, out: &Out) -> Done {
        if out.json {
            let checks: Vec<_> =
                self.checks.iter().map(|(s, what, detail)| json!({"status": s.word(), "check": what, "detail": detail})).collect();
            out.print(&serde_json::to_string_pretty(&checks).unwrap_or_default());
        } else {
            let style = out.style();
            let mut text = String::new();
            for (status, what, detail) in &self.checks {
                let label = match status {
                    Status::Ok => style.green("ok  "),
                    Status::Warn => style.yellow("WARN"),
                    Status::Fail => style.red("FAIL"),
                };
                text.push_str(&format!("{label}  {what}: {detail}\n"));
            }
            out.print(&text);
        }
        if self.checks.iter().any(|c| c.0 == Status::Fail) {
            Done::Failed
        } else {
            Done::Ok
        }
    }

    /// Which of `names` are missing, by `sql` (returning the ones present).
    fn present(&mut self, c: &mut Client, what: &str, sql: &str, names: &[&str]) -> Result<()> {
        let list: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let found: Vec<String> = c.query(sql, &[&list])?.iter().map(|r| r.get(0)).collect();
        let missing: Vec<&str> = names.iter().copied().filter(|n| !found.iter().any(|f| f == n)).collect();
        let detail = if missing.is_empty() {
            format!("{} of {}", names.len(), names.len())
        } else {
            format!("{} of {}; missing {}", names.len() - missing.len(), names.len(), missing.join(", "))
        };
        self.line(missing.is_empty(), what, detail);
        Ok(())
    }
}

pub fn run(url: Option<&str>, out: &Out) -> Result<Done> {
    let mut r = Report::default();
    let mut c = match pgprompt_client::connect(url) {
        Ok(c) => c,
        Err(e) => {
            r.line(false, "connection", e.to_string());
            return Ok(r.finish(out));
        }
    };
    let info = pgprompt_client::server_info(&mut c)?;
    r.line(true, "connection", format!("PostgreSQL {}", info.server_version));
    let Some(version) = info.extension_version else {
        r.line(false, "extension", "pgprompt is not installed in this database (CREATE EXTENSION pgprompt)".into());
        return Ok(r.finish(out));
    };
    r.line(true, "extension", format!("pgprompt {version}"));
    r.present(
        &mut c,
        "tables",
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'pgprompt'::regnamespace AND relkind IN ('r', 'p') AND relname = ANY ($1)",
        &TABLES,
    )?;
    r.present(
        &mut c,
        "views",
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'pgprompt'::regnamespace AND relkind = 'v' AND relname = ANY ($1)",
        &VIEWS,
    )?;
    let triggers: Vec<&str> = TRIGGERS.iter().map(|t| t.0).collect();
    r.present(
        &mut c,
        "seed triggers",
        "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'pgprompt'::regnamespace AND t.tgname = ANY ($1)",
        &triggers,
    )?;
    // Indexes: the named ones, and the four every month partition of the calls needs.
    r.present(
        &mut c,
        "indexes",
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'pgprompt'::regnamespace AND relkind = 'i' AND relname = ANY ($1)",
        &[
            "prompt_templates_pkey",
            "prompt_templates_name_key",
            "prompt_versions_template_id_version_key",
            "prompt_guardrail_violations_occurred_idx",
            "ab_test_experiments_one_running",
            "prompt_stats_hourly_key",
        ],
    )?;
    let partitions = c.query(
        "SELECT p.relid::regclass::text, count(i.indexrelid)
           FROM pg_partition_tree('pgprompt.prompt_executions') p LEFT JOIN pg_index i ON i.indrelid = p.relid
          WHERE p.isleaf GROUP BY p.relid ORDER BY 1",
        &[],
    )?;
    let short: Vec<String> = partitions.iter().filter(|p| p.get::<_, i64>(1) < 4).map(|p| p.get(0)).collect();
    r.line(
        short.is_empty(),
        "execution partitions",
        if short.is_empty() {
            format!("{} month(s), each with its 4 indexes", partitions.len())
        } else {
            format!("missing indexes on {}", short.join(", "))
        },
    );
    // The defaults are policy: an administrator may switch them off or
    // change them (audited), which is worth a warning, not a failure.
    for (name, severity, action) in GUARDRAILS {
        let row = c.query_opt("SELECT severity, action, enabled FROM pgprompt.prompt_guardrails WHERE name = $1", &[&name])?;
        match row {
            None => r.add(Status::Warn, "default guardrail", format!("{name} was deleted")),
            Some(row) => {
                let (s, a, on): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
                let ok = on && s == severity && a == action;
                let detail = format!("{name} ({s}, {a}{})", if on { "" } else { ", disabled" });
                if ok {
                    r.add(Status::Ok, "default guardrail", detail);
                } else {
                    r.add(Status::Warn, "default guardrail", format!("{detail}; the default is {severity}, {action}, enabled"));
                }
            }
        }
    }
    let rules = c.query_one("SELECT count(*), count(*) FILTER (WHERE enabled) FROM pgprompt.prompt_alert_rules WHERE builtin", &[])?;
    let (rules, enabled): (i64, i64) = (rules.get(0), rules.get(1));
    if rules == 4 && enabled == 4 {
        r.add(Status::Ok, "default alert rules", "4 of 4, enabled".into());
    } else {
        r.add(Status::Warn, "default alert rules", format!("{rules} of 4, {enabled} enabled"));
    }
    r.present(
        &mut c,
        "roles",
        "SELECT rolname::text FROM pg_roles WHERE rolname = ANY ($1)",
        &["pgprompt_admin", "pgprompt_app", "pgprompt_reader"],
    )?;
    // Active versions that fail their own test cases.
    let failing = c.query(
        "SELECT t.name, t.active_version, string_agg(r.test, ', ' ORDER BY r.test)
           FROM pgprompt.prompt_templates t
          CROSS JOIN LATERAL pgprompt.prompt_run_tests(t.name, t.active_version) r
          WHERE NOT r.passed GROUP BY t.name, t.active_version ORDER BY t.name",
        &[],
    )?;
    let tested: i64 = c.query_one("SELECT count(DISTINCT template_id) FROM pgprompt.prompt_test_cases", &[])?.get(0);
    if failing.is_empty() {
        r.line(true, "test cases", format!("the active versions of {tested} tested template(s) pass"));
    }
    // Only a forced (audited) release puts a failing version in production.
    for f in &failing {
        let (name, v, tests): (String, i32, String) = (f.get(0), f.get(1), f.get(2));
        r.add(Status::Warn, "test cases", format!("active version {v} of {name} fails: {tests} (released with force)"));
    }
    Ok(r.finish(out))
}
