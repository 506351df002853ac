-- Roles and privileges.
--
--   pgprompt_reader  the analytics views, nothing else (BI tools, Grafana).
--   pgprompt_app     what an application does: render, assign, guard, log;
--                    plus what readers may. It reads the configuration
--                    (templates, guardrails, prices, experiments) but
--                    changes none of it and writes no table directly.
--   pgprompt_admin   manages everything: templates, guardrails, prices,
--                    experiments, test cases, alert rules; plus what apps
--                    may. The audit log is append-only even for admins.
--   pgprompt_releaser  what admins may, plus releases of templates that
--                    require approval and moves of protected labels
--                    (approvals.sql).
--
-- Grant them to login roles: GRANT pgprompt_app TO my_service;
--
-- Functions that write run SECURITY DEFINER with a pinned search_path, so
-- the tables they write need no privilege of their callers: an app logs
-- calls without being able to INSERT into prompt_executions. Audit rows are
-- written by _audit, which no role may call: only the audit triggers, which
-- run as the owner too. Rendering does not write and runs as the caller (a
-- definer switch per call would cost the render path).
--
-- Roles belong to the cluster, not the database: CREATE EXTENSION makes
-- them once, DROP EXTENSION keeps them.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pgprompt_reader', 'pgprompt_app', 'pgprompt_admin', 'pgprompt_releaser'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION
                -- Another database's CREATE EXTENSION made it at the same moment.
                WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
    END LOOP;
END
$$;

-- Each role includes the one below it. (Memberships are cluster-wide too;
-- granting one that exists already is a no-op with a NOTICE.)
DO $$
BEGIN
    IF NOT pg_catalog.pg_has_role('pgprompt_app', 'pgprompt_reader', 'MEMBER') THEN
        GRANT pgprompt_reader TO pgprompt_app;
    END IF;
    IF NOT pg_catalog.pg_has_role('pgprompt_admin', 'pgprompt_app', 'MEMBER') THEN
        GRANT pgprompt_app TO pgprompt_admin;
    END IF;
    IF NOT pg_catalog.pg_has_role('pgprompt_releaser', 'pgprompt_admin', 'MEMBER') THEN
        GRANT pgprompt_admin TO pgprompt_releaser;
    END IF;
END
$$;

------------------------------------------------------------------------------
-- Writers run as the extension's owner
------------------------------------------------------------------------------

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pgprompt'::regnamespace
           AND p.proname = ANY (ARRAY[
               -- applications
               'prompt_log_execution', 'prompt_guard_enforce',
               -- administration
               'prompt_save', 'prompt_activate', 'prompt_rollback', 'prompt_label', 'prompt_unlabel', 'prompt_delete',
               'prompt_approve', 'prompt_protect', 'prompt_import_version', 'prompt_import_approval',
               'prompt_experiment_create', 'prompt_experiment_start', 'prompt_experiment_stop', 'prompt_experiment_promote',
               'prompt_test_case_save', 'prompt_test_case_delete', 'prompt_import_prices', 'prompt_purge_executions',
               'prompt_stats_compact', 'prompt_check_alerts'])
           -- Not the SQL overloads for typed driver parameters (drivers.sql),
           -- which call these as the caller.
           AND NOT (p.proname = 'prompt_log_execution'
                    AND p.prolang = (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'sql'))
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pgprompt, pg_catalog, pg_temp', f);
    END LOOP;
    -- prompt_score and prompt_score_trace (Rust) set no search_path: on
    -- their usual path they resolve no name (index lookups and inserts by
    -- OID, pg/direct.rs and pg/probe.rs), and they pin the path around the
    -- SQL they run now and then (pg/spi.rs: pinned). Setting it for every
    -- call cost a twentieth of a score. (Not their SQL overloads for typed
    -- driver parameters, drivers.sql, which call these as the caller.)
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'pgprompt'::regnamespace AND p.proname IN ('prompt_score', 'prompt_score_trace')
                AND p.prolang = (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'c')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgprompt FROM PUBLIC;
GRANT USAGE ON SCHEMA pgprompt TO pgprompt_reader;

-- Readers: the views and the functions they call.
GRANT SELECT ON v_template_performance, v_recent_execution_errors, v_guardrail_violations_summary,
                v_daily_costs, v_hourly_error_rates, v_ab_test_results, v_active_ab_tests,
                prompt_template_stats, ab_test_stats, prompt_stats, prompt_stats_rows,
                v_trace_calls, v_traces, v_sessions, v_template_scores, v_experiment_scores, prompt_score_stats,
                v_ab_test_metrics
   TO pgprompt_reader;
GRANT EXECUTE ON FUNCTION prompt_latency_quantile(bigint[], double precision), _hist_of(smallint, bigint),
                          _hist_merge(bigint[], bigint[]), prompt_wilson_interval(bigint, bigint),
                          prompt_two_proportion_p(bigint, bigint, bigint, bigint),
                          prompt_sample_ratio_p(bigint[], double precision[]),
                          prompt_compare_means(bigint, double precision, double precision, bigint, double precision, double precision, double precision),
                          prompt_compare_rates(bigint, bigint, bigint, bigint, double precision),
                          prompt_mean_interval(bigint, double precision, double precision, double precision),
                          prompt_rate_interval(bigint, bigint, double precision)
   TO pgprompt_reader;
GRANT EXECUTE ON FUNCTION prompt_latency_histogram(bigint[]) TO pgprompt_reader;

-- Applications: read the configuration; render, assign, guard, log.
GRANT SELECT ON prompt_templates, prompt_versions, prompt_labels, v_labels, prompt_approvals, prompt_includes,
                prompt_guardrails, prompt_model_prices,
                ab_test_experiments, prompt_test_cases, prompt_score_definitions
   TO pgprompt_app;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pgprompt'::regnamespace
           AND p.proname = ANY (ARRAY[
               'prompt_render', 'prompt_render_chat', 'prompt_render_text', 'prompt_render_for', 'prompt_variables',
               'prompt_get', 'prompt_assign', 'prompt_bucket', 'prompt_guard_scan', 'prompt_guard_redact',
               'prompt_guard_enforce', 'prompt_guard_patterns', 'prompt_log_execution', 'prompt_cost',
               'prompt_model_price', 'prompt_run_tests', 'prompt_cache_stats', 'prompt_cache_reset',
               'prompt_score', 'prompt_score_trace',
               -- helpers those call as the caller
               '_model_price_id', '_require'])
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO pgprompt_app', f);
    END LOOP;
END
$$;

-- Administrators: every function and table but the audit writer; the audit
-- log read-only (its rows come from _audit, and the table refuses changes
-- anyway).
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgprompt TO pgprompt_admin;
REVOKE EXECUTE ON FUNCTION _audit(text, text, text, bigint, integer, jsonb, jsonb) FROM pgprompt_admin;
-- Events come from the extension alone (prompt_events, which webhooks trust).
REVOKE EXECUTE ON FUNCTION _publish(text, text) FROM pgprompt_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pgprompt TO pgprompt_admin;
REVOKE INSERT, UPDATE, DELETE ON prompt_audit_logs FROM pgprompt_admin;
-- Scores are written by prompt_score alone, which keeps their statistics.
REVOKE INSERT, UPDATE, DELETE ON prompt_scores FROM pgprompt_admin;
-- Approvals are written by prompt_approve alone, as the session user;
-- imported ones by prompt_import_approval.
REVOKE INSERT, UPDATE, DELETE ON prompt_approvals, prompt_imported_approvals FROM pgprompt_admin;
-- The webhook delivery log is append-only (DELETE prunes it).
REVOKE UPDATE ON prompt_webhook_deliveries FROM pgprompt_admin;
-- Events are written by _publish alone (DELETE prunes them).
REVOKE INSERT, UPDATE ON prompt_events FROM pgprompt_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA pgprompt TO pgprompt_admin;
