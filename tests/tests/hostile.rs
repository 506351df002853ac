//! The hostile input catalogue: over a hundred inputs meant to break the
//! extension, and generated templates nested or chained deep and long. Each
//! gives an ERROR with its documented SQLSTATE, or the documented result;
//! the failing ones write nothing; and none crashes a backend.
//!
//! A crash is seen two ways, because `pg_postmaster_start_time()` does not
//! change when the postmaster restarts after one: a sentinel session opened
//! before the catalogue must still answer after it (a crash restart ends
//! every session), and the server log written meanwhile must not report a
//! process "terminated by signal".

use pgprompt_tests::*;

/// What a case must do.
enum Expect {
    /// Fail with this SQLSTATE.
    Error(&'static str),
    /// Succeed, returning this text (first column of the first row).
    Returns(&'static str),
    /// Succeed (whatever it returns).
    Runs,
    /// Succeed, or fail with one of the documented limits and errors
    /// (never an internal error, never a crash).
    Clean,
}

/// What a generated template may end in besides success.
const DOCUMENTED: [&str; 6] = ["54001", "54000", "42601", "38000", "42P02", "22023"];

/// Templates nested or chained `n` deep or long, for several `n`, each
/// construct that recurses somewhere (parsing, compiling, analysing,
/// printing, comparing, dropping): operator chains, prefix operators,
/// postfix chains, brackets, literals, blocks, values built up by
/// statements and by namespaces.
fn generated() -> Vec<(String, Expect)> {
    let mut out = Vec::new();
    for n in [10, 150, 499, 501, 2_000, 40_000] {
        let shapes: Vec<String> = vec![
            format!("{{{{ 1{} }}}}", "~1".repeat(n)),
            format!("{{{{ 1{} }}}}", "+1".repeat(n)),
            format!("{{{{ true{} }}}}", " and true".repeat(n)),
            format!("{{{{ {}1 }}}}", "-".repeat(n)),
            format!("{{{{ {}true }}}}", "not ".repeat(n)),
            format!("{{{{ 1{} }}}}", "|string".repeat(n)),
            format!("{{{{ x{} }}}}", ".a".repeat(n)),
            format!("{{{{ x{} }}}}", "[0]".repeat(n)),
            format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n)),
            format!("{{{{ {}1{} }}}}", "[".repeat(n), "]".repeat(n)),
            format!("{{{{ {}1{} }}}}", "{'a': ".repeat(n), "}".repeat(n)),
            format!("{{{{ 0{} }}}}", " if x else 0".repeat(n)),
            format!("{}x{}", "{% if true %}".repeat(n), "{% endif %}".repeat(n)),
            format!("{}x{}", "{% for i in [1] %}".repeat(n), "{% endfor %}".repeat(n)),
            format!("{{% set a = 1 %}}{}{{{{ a|length }}}}", "{% set a = [a] %}".repeat(n.min(5_000))),
            format!("{{% set a = 1 %}}{}{{{{ a }}}}", "{% set a = [a] %}".repeat(n.min(5_000))),
            format!("{{% set ns = namespace(x=1) %}}{{% for i in range({n}) %}}{{% set ns.x = [ns.x] %}}{{% endfor %}}{{{{ ns.x }}}}"),
            format!("{{% set ns = namespace(x={{}}) %}}{{% for i in range({n}) %}}{{% set ns.x = {{'k': ns.x}} %}}{{% endfor %}}{{{{ ns.x|tojson }}}}"),
            format!("{{% set ns = namespace(x=1, y=1) %}}{{% for i in range({n}) %}}{{% set ns.x = [ns.x] %}}{{% set ns.y = [ns.y] %}}{{% endfor %}}{{{{ ns.x == ns.y }}}}"),
            format!("{{% macro m(k) %}}{{% if k > 0 %}}[{{{{ m(k - 1) }}}}]{{% endif %}}{{% endmacro %}}{{{{ m({n}) }}}}"),
        ];
        for body in shapes {
            let sql = format!("SELECT prompt_render_text({}, '{{\"x\": [[1]]}}')", quote(&body));
            out.push((sql, Clean));
        }
    }
    // Namespaces that would hold themselves or each other are refused.
    for body in [
        "{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}",
        "{% set ns = namespace(x=1) %}{% set ns.x = [ns] %}{{ ns.x }}",
        "{% set a = namespace(x=1) %}{% set b = namespace(y=a) %}{{ b }}",
        "{% set a = namespace(x=1) %}{% set b = namespace(y=1) %}{% set a.x = b %}{% set b.y = a %}{{ a }}",
    ] {
        out.push((format!("SELECT prompt_render_text({})", quote(body)), Error("38000")));
    }
    out
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
use Expect::*;

const MB: usize = 1 << 20;

/// The cases; `major` is the server's major version (what a few inputs
/// mean changed between versions).
fn cases(major: i32) -> Vec<(String, Expect)> {
    let s = |sql: &str| sql.to_string();
    let big = |n: usize| format!("repeat('x', {n})");
    vec![
        // --- Templates: malformed -------------------------------------------------
        (s("SELECT prompt_save('h', '{{ unclosed')"), Error("42601")),
        (s("SELECT prompt_save('h', '{% if %}')"), Error("42601")),
        (s("SELECT prompt_save('h', '{% for x in %}{% endfor %}')"), Error("42601")),
        (s("SELECT prompt_save('h', '{% endif %}')"), Error("42601")),
        (s("SELECT prompt_save('h', '{{ x | }}')"), Error("42601")),
        (s("SELECT prompt_save('h', '{% macro %}{% endmacro %}')"), Error("42601")),
        (s("SELECT prompt_save('h', '{# unclosed comment')"), Error("42601")),
        (s("SELECT prompt_save('h', '{% raw %} never ends')"), Error("42601")),
        (s("SELECT prompt_save('h', '[{\"role\": \"user\"}]', kind => 'chat')"), Error("42601")),
        (s("SELECT prompt_save('h', 'not json', kind => 'chat')"), Error("42601")),
        (s("SELECT prompt_save('h', '[]', kind => 'chat')"), Error("42601")),
        (s("SELECT prompt_save('h', 'x', kind => 'html')"), Error("22023")),
        (s("SELECT prompt_save('', 'x')"), Error("22023")),
        (s("SELECT prompt_save('a b', 'x')"), Error("22023")),
        (s("SELECT prompt_save(repeat('n', 201), 'x')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', '[1, 2]')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', 'null')"), Error("22023")),
        (format!("SELECT prompt_save('h', {})", big(100 * MB)), Error("54000")),
        (s("SELECT prompt_save('ctl', E'bell \\x07 and tab \\t and escape \\x1b[31m')"), Returns("1")),
        (s("SELECT prompt_render('ctl')"), Returns("bell \u{7} and tab \t and escape \u{1b}[31m")),
        (s("SELECT prompt_save('h', convert_from('\\xff'::bytea, 'UTF8'))"), Error("22021")),
        (s("SELECT prompt_save('h', convert_from('\\xc328'::bytea, 'UTF8'))"), Error("22021")),
        (s("SELECT prompt_save('h', 'é {{ \u{200b}x }}')"), Error("42601")),
        // --- Templates: deep nesting, recursion, loops ------------------------------
        (format!("SELECT prompt_render_text('{}x{}')", "{% if true %}".repeat(500), "{% endif %}".repeat(500)), Error("54001")),
        (format!("SELECT prompt_render_text('{}')", "{{ (".repeat(300) + "1" + &")".repeat(300) + " }}"), Error("54001")),
        // What crashed the cluster in 0.1.0: a list nested 99,000 deep
        // through a namespace, and a chain of 40,000 operators.
        (s("SELECT prompt_render_text('{% set ns = namespace(x=1) %}{% for i in range(99000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|length }}')"), Error("54001")),
        (format!("SELECT prompt_render_text('{{{{ 1{} }}}}')", "~1".repeat(40_000)), Error("54001")),
        (s("SELECT prompt_render_text('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}')"), Error("54001")),
        (s("SELECT prompt_render_text('{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}')"), Error("54001")),
        (s("SELECT prompt_render_text('{% for i in range(100000000) %}x{% endfor %}')"), Error("54000")),
        (s("SELECT prompt_render_text('{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}')"), Error("54001")),
        (s("SELECT prompt_render_text('{% set x = \"ab\" %}{% for i in range(40) %}{% set x = x ~ x %}{% endfor %}{{ x }}')"), Returns("ab")),
        (s("SELECT prompt_render_text('{{ \"x\" * 1000000000 }}')"), Error("54001")),
        (s("SELECT prompt_render_text('{{ \"x\" | indent(1000000000) }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ x | tojson(indent=100000000) }}', '{\"x\": [1]}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ range(10000000) | list | length }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{% for i in range(20000) %}{{ \"abcdefghij\" * 100 }}{% endfor %}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ 1 / 0 }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ 1 // 0 }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ x.y.z }}', '{\"x\": 1}')"), Error("42P02")),
        (s("SELECT prompt_render_text('{{ x | nosuchfilter }}', '{\"x\": 1}')"), Error("38000")),
        (s("SELECT prompt_render_text('{% include \"other\" %}')"), Error("42601")),
        (s("SELECT prompt_render_text('{% import \"x\" as y %}')"), Error("42601")),
        (s("SELECT prompt_render_text('{{ missing }}')"), Error("42P02")),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": \"\\u0000\"}'::jsonb)"), Error("22P05")),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": \"\\u0000\"}')"), Error("22021")),
        (s("SELECT prompt_render_text('{{ x|length }}', '{\"x\": \"\\u0000\"}')"), Returns("1")),
        (s("SELECT prompt_render_text('a{{ x }}b', '{\"x\": \"nul \\u0001 ok\"}')"), Returns("anul \u{1} okb")),
        (s("SELECT prompt_render_text('{{ 9223372036854775807 + 1 }}')"), Runs),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": 1e308}')"), Runs),
        (s("SELECT prompt_render_text('{{ x * 10 }}', '{\"x\": 1e308}')"), Clean),
        // --- Python's methods and the chat-template globals ----------------------------
        (s("SELECT prompt_render_text('{{ \"x\".center(1000000000) }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ \"x\".ljust(2147483648) }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ \"7\".zfill(100000000) }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ \"{:>1000000000}\".format(1) }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ \"{:{w}}\".format(1, w=1000000000) }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ \"%1000000000s\"|format(1) }}')"), Error("54000")),
        (s("SELECT prompt_render_text('{{ \"Order 123456789012 for {}\".format(\"x\") }}')"), Returns("Order 123456789012 for x")),
        (s("SELECT prompt_render_text('{{ \"x\".center(-5) }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ (\"ab\" * 100000).split(\"\") }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ (\"a \" * 3000000).split()|length }}')"), Error("54001")),
        (s("SELECT prompt_render_text('{{ (\"a,\" * 300000).rsplit(\",\")|length }}')"), Clean),
        (s("SELECT prompt_render_text('{% for i in range(100000) %}{{ \"abc\".partition(\"b\") }}{% endfor %}')"), Clean),
        (s("SELECT prompt_render_text('{{ {}.get(1, 2, 3) }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ \"x\".no_such_method() }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ strftime_now(\"%Y\" * 1000000) }}')"), Clean),
        (s("SELECT prompt_render_text('{{ strftime_now(\"%Q\") }}')"), Clean),
        (s("SELECT prompt_render_text('{{ strftime_now(none) }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ raise_exception(\"x\" * 2000000) }}')"), Error("P0001")),
        (s("SELECT prompt_render_text('{{ raise_exception(\"stop\") }}')"), Error("P0001")),
        (s("SELECT prompt_render_text('{{ raise_exception() }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ raise_exception(namespace(a=1)) }}')"), Error("P0001")),
        (s("SELECT prompt_render_text('{% set ns = namespace(a=1) %}{{ ns|tojson }}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ x|tojson(indent=\"\\t\" * 100000) }}', '{\"x\": [1]}')"), Clean),
        (s("SELECT prompt_render_text('{{ x|tojson(separators=(1, 2)) }}', '{\"x\": [1]}')"), Error("38000")),
        (s("SELECT prompt_render_text('{{ x|tojson(nope=1) }}', '{\"x\": [1]}')"), Error("38000")),
        (s("SELECT prompt_render_text('{% generation %}{% generation %}x{% endgeneration %}{% endgeneration %}')"), Returns("x")),
        (s("SELECT prompt_render_text('{% generation %}never closed')"), Error("42601")),
        (s("SELECT prompt_render_text('x', '{}', '{\"trim_blocks\": 1}')"), Error("22023")),
        (s("SELECT prompt_render_text('x', '{}', '[true]')"), Error("22023")),
        (s("SELECT prompt_render_text('x', '{}', '{\"undefined\": \"chaos\"}')"), Error("22023")),
        (s("SELECT prompt_render_text('x', '{}', NULL)"), Error("22004")),
        // --- vars: huge, deep, odd --------------------------------------------------
        (format!("SELECT prompt_render_text('{{{{ x | length }}}}', jsonb_build_object('x', {}))", big(2 * MB)), Error("54000")),
        (format!("SELECT prompt_render_text('{{{{ a }}}}', ('{}1{}')::jsonb)", "{\"a\":".repeat(200), "}".repeat(200)), Error("54000")),
        (format!("SELECT prompt_render_text('{{{{ x }}}}', ('{{\"x\": {}1{}}}')::jsonb)", "[".repeat(1000), "]".repeat(1000)), Error("54000")),
        (s("SELECT prompt_render_text('{{ x | length }}', jsonb_build_object('x', (SELECT jsonb_agg(i) FROM generate_series(1, 50000) i)))"), Returns("50000")),
        (s("SELECT prompt_render_text('hi', '[1, 2]')"), Error("22023")),
        (s("SELECT prompt_render_text('hi', '\"string\"')"), Error("22023")),
        (s("SELECT prompt_render_text('hi', 'null')"), Error("22023")),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": NaN}')"), Error("22P02")),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": 1e1000}'::jsonb)"), Runs),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": 1e1000}')"), Error("22P02")),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": -0}'::jsonb)"), Returns("0")),
        (s("SELECT prompt_render_text('{{ x }}', '{\"x\": -0}')"), Returns("-0.0")),
        (s("SELECT prompt_render_text('{{ x }}', '{\"\": 1, \"x\": \"ok\"}')"), Returns("ok")),
        (s("SELECT prompt_render_text('{{ x[\"\\ud83d\\ude00\"] }}', '{\"x\": {\"😀\": \"emoji key\"}}')"), Returns("emoji key")),
        (s("SELECT prompt_render_text('{{ x[\"😀\"] }}', '{\"x\": {\"😀\": \"emoji key\"}}')"), Returns("emoji key")),
        // --- model configurations, input schemas and options: deep, hostile ------------
        (format!("SELECT prompt_render_text('x', '{{}}', ('{}1{}')::jsonb)", "{\"a\":".repeat(300), "}".repeat(300)), Error("54000")),
        (format!("SELECT prompt_save('h', 'x', ('{}1{}')::jsonb)", "{\"a\":".repeat(300), "}".repeat(300)), Error("54000")),
        (format!("SELECT prompt_save('h', 'x', input_schema => ('{}{{}}{}')::jsonb)", "{\"not\":".repeat(300), "}".repeat(300)), Error("54000")),
        (format!("SELECT prompt_save('h', 'x', input_schema => ('{}{{}}{}')::jsonb)", "{\"not\":".repeat(60), "}".repeat(60)), Clean),
        (s("SELECT prompt_save('h', 'x', input_schema => '{\"properties\": {\"a\": {\"pattern\": \"(a+)+$\"}}}')"), Clean),
        (format!("SELECT prompt_render('h', jsonb_build_object('a', repeat('a', 100000) || 'b'))"), Clean),
        (s("SELECT prompt_save('h', 'x', input_schema => '{\"pattern\": \"(a)\\\\1\"}')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', input_schema => '{\"$ref\": \"file:///etc/passwd\"}')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', input_schema => '{\"$ref\": \"#/nowhere\"}')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', input_schema => '{\"properties\": {\"a\": {\"$ref\": \"#\"}}}')"), Clean),
        (format!("SELECT prompt_render('h', ('{}1{}')::jsonb)", "{\"a\":".repeat(120), "}".repeat(120)), Clean),
        (s("SELECT prompt_save('h', 'x', '{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"pattern\": \"(?<=x)a\"}}}}}]}')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', '{\"temperature\": 1e1000}')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', '{\"max_tokens\": 1e30}')"), Error("22023")),
        (s("SELECT prompt_save('h', 'x', input_schema => '1')"), Error("22023")),
        // --- NULLs everywhere -------------------------------------------------------
        (s("SELECT prompt_save(NULL, 'x')"), Error("22004")),
        (s("SELECT prompt_save('h', NULL)"), Error("22004")),
        (s("SELECT prompt_save('h', 'x', 'null')"), Error("22023")),
        (s("SELECT prompt_render(NULL)"), Error("22004")),
        (s("SELECT prompt_render('h', NULL)"), Error("22004")),
        (s("SELECT prompt_render_text(NULL)"), Error("22004")),
        (s("SELECT prompt_activate(NULL, 1)"), Error("22004")),
        (s("SELECT prompt_activate('h', NULL)"), Error("22004")),
        (s("SELECT prompt_label('h', 1, NULL)"), Error("22004")),
        (s("SELECT prompt_rollback(NULL)"), Error("22004")),
        (s("SELECT prompt_guard_scan(NULL)"), Error("22004")),
        (s("SELECT prompt_guard_redact(NULL)"), Error("22004")),
        (s("SELECT prompt_guard_enforce(NULL)"), Error("22004")),
        (s("SELECT prompt_guard_scan('x', NULL)"), Error("22004")),
        (s("SELECT prompt_cost(NULL, 1, 1)"), Returns("")),
        (s("SELECT prompt_cost('gpt-4o', NULL, 1)"), Returns("")),
        (s("SELECT prompt_log_execution(NULL)"), Error("22004")),
        (s("SELECT prompt_log_execution('h', model => 'gpt-4o', success => NULL)"), Error("22004")),
        (s("SELECT prompt_log_execution('h', model => 'gpt-4o', metadata => NULL)"), Error("22004")),
        (s("SELECT prompt_bucket(NULL)"), Error("22004")),
        (s("SELECT prompt_assign(NULL, 'u')"), Error("22004")),
        (s("SELECT prompt_assign('h', NULL)"), Error("22004")),
        (s("SELECT prompt_experiment_create(NULL, 'h', '[]')"), Error("22004")),
        (s("SELECT prompt_experiment_start(NULL)"), Error("22004")),
        (s("SELECT * FROM prompt_run_tests(NULL)"), Error("22004")),
        (s("SELECT prompt_test_case_save('h', NULL, '[]')"), Error("22004")),
        (s("SELECT prompt_import_prices(NULL)"), Error("22004")),
        (s("SELECT prompt_purge_executions(NULL)"), Error("22004")),
        (s("SELECT prompt_latency_quantile(NULL, 0.5)"), Returns("")),
        (s("SELECT prompt_wilson_interval(NULL, 1)"), Returns("")),
        // --- Guardrails: regexes, sizes, control characters -------------------------
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g1', 'regex', '{\"patterns\": [\"(unclosed\"]}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g2', 'regex', '{\"patterns\": [\"(?<=x)y\"]}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g3', 'regex', '{\"patterns\": [\"\\\\1\"]}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g4', 'regex', '{\"patterns\": [\"(a{1000}){1000}\"]}')"), Error("54000")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g5', 'regex', '{\"patterns\": [\"\\\\w{1000}\\\\w{1000}\\\\w{1000}\"]}')"), Error("54000")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g6', 'regex', '{\"patterns\": []}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g7', 'regex', '{\"patterns\": [\"\"]}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g8', 'regex', '{\"patterns\": [42]}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g9', 'pii', '{\"entities\": [\"SOUL\"]}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g10', 'keywords', '{\"keywords\": \"not a list\"}')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, action) VALUES ('g11', 'regex', 'explode')"), Error("22023")),
        (s("INSERT INTO prompt_guardrails (name, kind, config) VALUES ('g12', 'regex', '{\"patterns\": [\"(a+)+$\"]}')"), Runs),
        (format!("SELECT count(*) FROM prompt_guard_scan({} || '!')", big(100_000)), Returns("0")),
        (format!("SELECT count(*) FROM prompt_guard_scan({})", big(100 * MB)), Error("54000")),
        (format!("SELECT length(prompt_guard_redact({}))", big(100 * MB)), Error("54000")),
        (s("SELECT count(*) FROM prompt_guard_scan(E'\\x01\\x02\\x03 ada@example.com \\x7f')"), Returns("1")),
        (s("SELECT count(*) FROM prompt_guard_scan(repeat(E'\\u200b', 100000))"), Returns("0")),
        (s("SELECT count(*) FROM prompt_guard_scan(repeat('%41', 100000))"), Runs),
        (s("SELECT count(*) FROM prompt_guard_scan(repeat('QUFB', 100000))"), Runs),
        (s("SELECT count(*) FROM prompt_guard_scan('x', 'sideways')"), Error("22023")),
        (s("SELECT prompt_guard_redact(convert_from('\\xeda080'::bytea, 'UTF8'))"), Error("22021")),
        // --- Costs and logging: NaN, infinity, negatives, overflow -------------------
        (s("SELECT prompt_cost('gpt-4o', -1, 0)"), Error("22023")),
        (s("SELECT prompt_cost('gpt-4o', 10, 0, 11)"), Error("22023")),
        (s("SELECT prompt_cost('gpt-4o', 9223372036854775807, 9223372036854775807)::text"), Runs),
        (s("SELECT prompt_cost('gpt-4o', 1000000, 0, at => 'infinity')::text"), Returns("2.5")),
        (s("SELECT prompt_cost('gpt-4o', 1000000, 0, at => '-infinity')"), Returns("")),
        (s("SELECT prompt_cost(repeat('m', 100000), 1, 1)"), Returns("")),
        (s("SELECT prompt_cost(E'\\x01gpt-4o', 1, 1)"), Returns("")),
        (s("INSERT INTO prompt_model_prices (model, input_usd_per_mtok, output_usd_per_mtok) VALUES ('nanmodel', 'NaN', 1)"), Error("22023")),
        (s("INSERT INTO prompt_model_prices (model, input_usd_per_mtok, output_usd_per_mtok) VALUES ('infmodel', 'Infinity', 1)"), Error("22023")),
        (s("INSERT INTO prompt_model_prices (model, input_usd_per_mtok, output_usd_per_mtok, effective_from) VALUES ('m', 1, 1, 'infinity')"), Error("23514")),
        (s("INSERT INTO prompt_model_prices (model, input_usd_per_mtok, output_usd_per_mtok, match_pattern) VALUES ('m', 1, 1, '((')"), Error("22023")),
        (s("SELECT prompt_import_prices('[1, 2]')"), Error("22023")),
        (s("SELECT prompt_import_prices('{\"m\": {\"input_cost_per_token\": \"NaN\", \"output_cost_per_token\": 1}}')"), Error("22023")),
        (s("SELECT prompt_import_prices('{\"m\": {\"input_cost_per_token\": -1, \"output_cost_per_token\": 1}}')"), Error("22023")),
        (s("SELECT prompt_import_prices('{\"m\": {\"input_cost_per_token\": 1e400, \"output_cost_per_token\": 1}}')"), Error("22003")),
        (s("SELECT prompt_import_prices('{\"m\": {\"mode\": \"image_generation\"}}')"), Returns("0")),
        (s("SELECT prompt_log_execution('h', model => 'gpt-4o', latency_ms => -1)"), Error("22023")),
        (s("SELECT prompt_log_execution('h', model => '   ')"), Error("22023")),
        (s("SELECT prompt_log_execution('h', model => 'gpt-4o', metadata => '[1]')"), Error("22023")),
        (s("SELECT prompt_log_execution('h', model => 'gpt-4o', executed_at => 'infinity')"), Error("22008")),
        (s("SELECT prompt_log_execution('nope', model => 'gpt-4o')"), Error("42704")),
        (s("SELECT prompt_log_execution('h', 99, model => 'gpt-4o')"), Error("42704")),
        (format!("SELECT prompt_log_execution('h', model => 'gpt-4o', metadata => jsonb_build_object('x', {})) IS NOT NULL", big(10 * MB)), Returns("t")),
        (s("SELECT prompt_log_execution('h', model => 'gpt-4o', executed_at => '1900-01-01')"), Error("22008")),
        (s("SELECT prompt_purge_executions('-1 day')"), Error("22023")),
        (s("SELECT prompt_latency_quantile('{1,2,3}', 'NaN')"), Error("22023")),
        (s("SELECT prompt_latency_quantile('{1,2,3}', 2)"), Error("22023")),
        (s("SELECT prompt_latency_quantile('{-1,-2}', 0.5)"), Error("22023")),
        // --- Experiments, statistics, gates, alerts ----------------------------------
        (s("SELECT prompt_experiment_create('e', 'h', '[{\"version\": 1, \"weight\": 1e400}]')"), Error("22023")),
        (s("SELECT prompt_experiment_create('e', 'h', '[{\"version\": 1.5, \"weight\": 100}]')"), Error("22023")),
        (s("SELECT prompt_experiment_create('e', 'h', '[{\"version\": -1, \"weight\": 100}]')"), Error("22023")),
        (s("SELECT prompt_experiment_create('e', 'h', (SELECT jsonb_agg(jsonb_build_object('version', 1, 'weight', 1, 'name', 'v' || i)) FROM generate_series(1, 100) i))"), Error("22023")),
        (s("SELECT prompt_experiment_create('e', 'h', '[{\"version\": 1, \"weight\": 100}]', significance_level => 'NaN')"), Error("22023")),
        (s("SELECT prompt_bucket(repeat('u', 1000000))"), Runs),
        (s("SELECT prompt_bucket(E'\\x01\\x02', E'\\x7f')"), Runs),
        (s("SELECT prompt_wilson_interval(-1, 10)"), Error("22023")),
        (s("SELECT prompt_two_proportion_p(1, 0, 1, 0)"), Returns("")),
        (s("SELECT prompt_sample_ratio_p('{1,2}', '{NaN, 1}')"), Error("22023")),
        (s("SELECT prompt_sample_ratio_p('{1,2}', '{1}')"), Error("22023")),
        (s("SELECT prompt_test_case_save('h', 't', '[{\"matches\": \"(?<=a)\"}]')"), Error("22023")),
        (s("SELECT prompt_test_case_save('h', 't', '[{\"matches\": \"a{100000}{100000}\"}]')"), Error("22023")),
        (s("SELECT prompt_test_case_save('h', 't', '[{\"max_length\": 1e400}]')"), Error("22023")),
        (s("SELECT prompt_test_case_save('h', 'huge number', '[{\"contains\": \"x\"}]', '{\"n\": 1e400}') > 0"), Returns("t")),
        (s("SELECT detail FROM prompt_run_tests('h') WHERE test = 'huge number'"), Returns("invalid test case: vars: number out of range at line 1 column 407")),
        (s("SELECT prompt_test_case_delete('h', 'huge number')"), Returns("t")),
        (s("INSERT INTO prompt_alert_rules (name, metric, threshold, time_window) VALUES ('a', 'error_rate', 'NaN', '1 hour')"), Error("22023")),
        // An infinite interval: not one before PostgreSQL 17 (22007), refused
        // as a window since (22023).
        (
            s("INSERT INTO prompt_alert_rules (name, metric, threshold, time_window) VALUES ('a', 'error_rate', 0.1, 'infinity')"),
            Error(if major >= 17 { "22023" } else { "22007" }),
        ),
        // --- The append-only audit ---------------------------------------------------
        (s("UPDATE prompt_versions SET body = 'rewritten'"), Error("55000")),
        (s("DELETE FROM prompt_versions"), Error("55000")),
        (s("TRUNCATE prompt_versions CASCADE"), Error("55000")),
    ]
}

#[test]
fn hostile_inputs_fail_cleanly_and_the_server_survives() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(r#"SELECT prompt_save('h', 'Hello {{ name | default("you") }}', '{"model": "gpt-4o"}');"#).unwrap();
    let started: String = one(&mut c, "SELECT pg_postmaster_start_time()::text");
    // Bodies up to 1 MB, so the generated ones are compiled, not refused by size.
    c.batch_execute("SET pgprompt.max_template_bytes = '1MB'").unwrap();
    // The sentinel: a session that a crash restart would end.
    let mut sentinel = db.connect();
    let log = LogWatch::start(&mut c);
    let major: i32 = one(&mut c, "SELECT current_setting('server_version_num')::int / 10000");
    let mut cases = cases(major);
    assert!(cases.len() >= 100, "{} cases", cases.len());
    cases.extend(generated());
    let mut failures = Vec::new();
    for (sql, expect) in &cases {
        let short: String = sql.chars().take(140).collect();
        // Each case in its own transaction: a failing one must leave nothing behind.
        let before = snapshot(&mut c) + &log_fingerprint(&mut c);
        let result = c.simple_query(sql);
        match (expect, result) {
            (Error(code), Err(e)) => {
                let got = e.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no SQLSTATE: {e}"));
                if got != *code {
                    failures.push(format!("{short}\n    expected {code}, got {got}: {e}"));
                }
                let after = snapshot(&mut c) + &log_fingerprint(&mut c);
                if after != before {
                    failures.push(format!("{short}\n    failed but wrote something"));
                }
            }
            (Error(code), Ok(_)) => failures.push(format!("{short}\n    expected {code}, it succeeded")),
            (Returns(want), Ok(msgs)) => {
                let got = msgs.iter().find_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
                    _ => None,
                });
                if got.as_deref() != Some(*want) {
                    failures.push(format!("{short}\n    expected {want:?}, got {got:?}"));
                }
            }
            (Runs | Clean, Ok(_)) => {}
            (Clean, Err(e)) => {
                let got = e.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no SQLSTATE: {e}"));
                if !DOCUMENTED.contains(&got.as_str()) {
                    failures.push(format!("{short}\n    expected success or one of {DOCUMENTED:?}, got {got}: {e}"));
                }
            }
            (_, Err(e)) => failures.push(format!("{short}\n    expected success, got {:?}: {e}", e.code().map(|c| c.code().to_string()))),
        }
        assert!(!c.is_closed(), "the session died at: {short}");
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(one::<i32>(&mut sentinel, "SELECT 1"), 1, "the sentinel session survived: no backend crashed");
    let crashes = log.lines_since(&mut c, "terminated by signal");
    assert!(crashes.is_empty(), "the server log reports crashes: {crashes:?}");
    // A template that doubles a string every iteration runs out of fuel
    // (fuel pays for every byte made)...
    let e = c
        .simple_query("SELECT prompt_render_text('{% set ns = namespace(x=\"ab\") %}{% for i in range(60) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}')")
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("54001"), "{e:?}");
    // ...and with all the fuel a superuser may give, the render memory
    // budget ends that session with FATAL, and nothing else.
    let mut doomed = db.connect();
    doomed.batch_execute("SET pgprompt.render_fuel = 2147483647").unwrap();
    let budget_log = LogWatch::start(&mut c);
    let e = doomed
        .simple_query("SELECT prompt_render_text('{% set ns = namespace(x=\"ab\") %}{% for i in range(60) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}')")
        .unwrap_err();
    match e.as_db_error() {
        Some(d) => {
            assert_eq!((d.severity(), d.code().code()), ("FATAL", "54000"), "{}", d.message());
            assert!(d.message().contains("terminating this session"), "{}", d.message());
        }
        // On a loaded machine the client may see the socket close before
        // it reads the FATAL report (as after a terminate, see cancel.rs):
        // the server's log says what the session was told.
        None if e.is_closed() => {
            let told = budget_log.lines_since(&mut c, "template rendering needed more than");
            assert!(told.iter().any(|l| l.contains("FATAL") && l.contains("terminating this session")), "{told:?}");
        }
        None => panic!("not a server error: {e:?}"),
    }
    assert!(doomed.simple_query("SELECT 1").is_err(), "the session is gone");
    let mut fresh = db.connect();
    assert_eq!(one::<String>(&mut fresh, "SELECT pg_postmaster_start_time()::text"), started, "the server restarted");
    assert_eq!(one::<String>(&mut fresh, r#"SELECT prompt_render('h', '{"name": "Ada"}')"#), "Hello Ada");
}

/// The server's log from a point on (read through the server, as the test
/// may run elsewhere): where a crash restart reports a process
/// "terminated by signal".
struct LogWatch {
    file: Option<String>,
    from: i64,
}

impl LogWatch {
    fn start(c: &mut Client) -> LogWatch {
        let file: Option<String> = one(c, "SELECT pg_current_logfile()");
        assert!(file.is_some(), "the test cluster logs to files (logging_collector = on), which the crash check reads");
        let from = one(c, &format!("SELECT (pg_stat_file({})).size", lit(file.as_deref().unwrap())));
        LogWatch { file, from }
    }

    /// Lines written since `start` that contain `needle`.
    fn lines_since(&self, c: &mut Client, needle: &str) -> Vec<String> {
        let Some(start_file) = &self.file else { return Vec::new() };
        let now: String = one(c, "SELECT pg_current_logfile()");
        let f = lit(start_file);
        let mut text: String = one(c, &format!("SELECT pg_read_file({f}, {0}, (pg_stat_file({f})).size - {0})", self.from));
        if &now != start_file {
            // The log rotated meanwhile: the new file is all new.
            text += &one::<String>(c, &format!("SELECT pg_read_file({})", lit(&now)));
        }
        text.lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
    }
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
