-- pgprompt 0.1.0 -> 0.2.0 (ALTER EXTENSION pgprompt UPDATE TO '0.2.0').
--
-- Every schema change since 0.1.0 is here, in the order it was made, so
-- that an updated database ends up object for object like a fresh 0.2.0
-- install (the upgrade test in tests/tests/upgrade.rs compares the two
-- catalogs). Released scripts are never edited: 0.2.0's changes go here
-- until 0.2.0 is released, later ones into a 0.2.0--<next> script.

\echo Use "ALTER EXTENSION pgprompt UPDATE" to load this file. \quit

-- As in the install script: objects are created in pgprompt, and the
-- caller's search_path comes back when the update ends.
SET LOCAL search_path = pgprompt, pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Pinned search_path: pg_temp last
------------------------------------------------------------------------------

-- 0.1.0 set search_path = pgprompt, pg_catalog on its functions. A path
-- that does not name pg_temp searches it first, so a caller's temporary
-- table named like one of ours was used instead, and its triggers ran as
-- the owner of a SECURITY DEFINER function. Every function that sets a
-- path now names pg_temp last, where nothing is looked up before ours.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pgprompt'::regnamespace
           AND 'search_path=pgprompt, pg_catalog' = ANY (p.proconfig)
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pgprompt, pg_catalog, pg_temp', f);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Audit integrity: the session, not the row, says what is restored history
------------------------------------------------------------------------------

-- 0.1.0 took a row stamped before the transaction (or builtin = true) for
-- restored history and skipped its audit entry, history and notification,
-- so an administrator could change releases and guardrails unrecorded.
CREATE  FUNCTION "_restoring"() RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_restoring_wrapper';

COMMENT ON FUNCTION _restoring() IS
    'Internal: true while the extension''s own script runs (CREATE or ALTER EXTENSION) and in a superuser''s restoring session (pg_restore, or session_replication_role = replica); rows written then are history, not new events.';

CREATE FUNCTION _stamp_new_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_columns jsonb := to_jsonb(NEW);
    v_stamps jsonb := jsonb_build_object(
        'created_at', now(), 'created_by', session_user,
        'updated_at', now(), 'updated_by', session_user,
        'activated_at', now(), 'activated_by', session_user,
        'builtin', false);
BEGIN
    IF _restoring() THEN
        RETURN NEW;
    END IF;
    -- The stamps this table has columns for.
    RETURN jsonb_populate_record(NEW, (SELECT jsonb_object_agg(s.key, s.value)
                                         FROM jsonb_each(v_stamps) s WHERE v_columns ? s.key));
END
$$;

COMMENT ON FUNCTION _stamp_new_row() IS
    'Trigger: sets created_at/by, updated_at/by, activated_at/by (now(), session_user) and builtin (false) of a new row, unless the extension''s script or a restore writes it.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_templates
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_templates IS
    'created_at/by and updated_at/by of a new template are now and the session user.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_versions
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_versions IS
    'created_at/by of a new version are now and the session user.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_labels
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_labels IS
    'created_at/by and updated_at/by of a new label are now and the session user.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_activations
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_activations IS
    'activated_at/by of a new activation are now and the session user.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_guardrails
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_guardrails IS
    'created_at/by and updated_at/by of a new guardrail are now and the session user, builtin is false.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_model_prices
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_model_prices IS
    'created_at/by and updated_at/by of a new price are now and the session user, builtin is false.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_alert_rules
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_alert_rules IS
    'created_at/by and updated_at/by of a new alert rule are now and the session user, builtin is false.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON ab_test_experiments
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON ab_test_experiments IS
    'created_at/by and updated_at/by of a new experiment are now and the session user.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_test_cases
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_test_cases IS
    'created_at/by and updated_at/by of a new test case are now and the session user.';

CREATE OR REPLACE FUNCTION _audit_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_old jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    v_new jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    v_name text := coalesce(v_new, v_old) ->> TG_ARGV[1];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT _restoring() THEN
            PERFORM _audit('create', TG_ARGV[0], v_name, NULL, NULL, NULL, v_new);
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF (v_old - 'updated_at' - 'updated_by') IS DISTINCT FROM (v_new - 'updated_at' - 'updated_by') THEN
            PERFORM _audit(CASE WHEN (v_old ->> 'enabled')::boolean AND NOT (v_new ->> 'enabled')::boolean THEN 'disable'
                                WHEN NOT (v_old ->> 'enabled')::boolean AND (v_new ->> 'enabled')::boolean THEN 'enable'
                                -- Experiments: the lifecycle step.
                                WHEN (v_old ->> 'status') IS DISTINCT FROM (v_new ->> 'status') THEN
                                    CASE v_new ->> 'status' WHEN 'running' THEN 'start' WHEN 'stopped' THEN 'stop'
                                                            WHEN 'concluded' THEN 'conclude' ELSE 'update' END
                                ELSE 'update' END,
                           TG_ARGV[0], v_name, NULL, NULL, v_old, v_new);
        END IF;
    ELSIF NOT _restoring() THEN
        PERFORM _audit('delete', TG_ARGV[0], v_name, NULL, NULL, v_old, NULL);
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION _audit_row() IS
    'Trigger: audits creation, changes (enable, disable, start, stop, conclude, update) and deletion of a configuration row. Arguments: object type, name column.';

CREATE OR REPLACE FUNCTION _replace_builtin(p_table regclass, p_name_column text, p_id bigint, p_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT _restoring() THEN
        RETURN;
    END IF;
    EXECUTE format('DELETE FROM %s t WHERE t.builtin AND (t.id = $1 OR t.%I = $2)', p_table, p_name_column)
      USING p_id, p_name;
END
$$;

COMMENT ON FUNCTION _replace_builtin(regclass, text, bigint, text) IS
    'Internal: during a restore, deletes the built-in row a restored row (same id or name) replaces; otherwise nothing.';

CREATE OR REPLACE FUNCTION _check_new_template_version()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF _restoring() THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM prompt_templates WHERE id = NEW.id)
       AND NOT EXISTS (SELECT 1 FROM prompt_versions v
                        JOIN prompt_templates t ON t.id = v.template_id AND t.active_version = v.version
                       WHERE t.id = NEW.id) THEN
        RAISE EXCEPTION 'template "%" has no version %, its active version', NEW.name, NEW.active_version
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Create templates with prompt_save(name, body).';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION _audit_templates()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_before jsonb;
    v_after jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT _restoring() THEN
            PERFORM _audit('create', 'template', NEW.name, NEW.id, NULL, NULL, to_jsonb(NEW));
            PERFORM _notify_change(NEW.name, NEW.active_version, 'create');
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        -- BEFORE DELETE: the versions and labels are still there to count.
        PERFORM _audit('delete', 'template', OLD.name, OLD.id, OLD.active_version,
            to_jsonb(OLD) || jsonb_build_object(
                'versions', (SELECT count(*) FROM prompt_versions WHERE template_id = OLD.id),
                'labels', (SELECT coalesce(jsonb_object_agg(label, version), '{}')
                             FROM v_labels WHERE template_id = OLD.id)),
            NULL);
        PERFORM _notify_change(OLD.name, OLD.active_version, 'delete');
        RETURN OLD;
    END IF;
    -- UPDATE: activations are audited from prompt_activations; record the
    -- other columns that changed, if any.
    SELECT jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, n.value)
      INTO v_before, v_after
      FROM jsonb_each(to_jsonb(OLD)) o
      JOIN jsonb_each(to_jsonb(NEW)) n USING (key)
     WHERE o.value IS DISTINCT FROM n.value
       AND o.key NOT IN ('active_version', 'updated_at', 'updated_by');
    IF v_before IS NOT NULL THEN
        PERFORM _audit('update', 'template', NEW.name, NEW.id, NULL, v_before, v_after);
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _audit_templates() IS
    'Trigger: audits creation, deletion and changes of templates; notifies pgprompt_changes on create and delete.';

CREATE OR REPLACE FUNCTION _audit_versions()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT _restoring() THEN
        PERFORM _audit('new_version', 'version',
            (SELECT name FROM prompt_templates WHERE id = NEW.template_id),
            NEW.template_id, NEW.version, NULL, to_jsonb(NEW));
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION _audit_activations()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := (SELECT name FROM prompt_templates WHERE id = NEW.template_id);
BEGIN
    IF NEW.action <> 'create' AND NOT _restoring() THEN
        PERFORM _audit(NEW.action, 'activation', v_name, NEW.template_id, NEW.version,
            jsonb_build_object('active_version', NEW.previous_version),
            jsonb_build_object('active_version', NEW.version));
        -- The release moved: production names the new version.
        PERFORM _notify_change(v_name, NEW.version, NEW.action, 'production');
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _audit_activations() IS
    'Trigger: audits activations and rollbacks (moves of the release, production) and notifies pgprompt_changes with label production.';

CREATE OR REPLACE FUNCTION _audit_labels()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_row prompt_labels := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    v_name text := (SELECT name FROM prompt_templates WHERE id = v_row.template_id);
BEGIN
    IF v_name IS NULL THEN
        RETURN NULL; -- removed with its template; the template's delete event says so
    END IF;
    IF TG_OP = 'INSERT' AND _restoring() THEN
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM _audit('label_set', 'label', v_name || '@' || NEW.label, NEW.template_id, NEW.version,
            NULL, to_jsonb(NEW));
        PERFORM _notify_change(v_name, NEW.version, 'label', NEW.label);
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.version IS DISTINCT FROM OLD.version THEN
            PERFORM _audit('label_move', 'label', v_name || '@' || NEW.label, NEW.template_id, NEW.version,
                to_jsonb(OLD), to_jsonb(NEW));
            PERFORM _notify_change(v_name, NEW.version, 'label', NEW.label);
        END IF;
    ELSE
        PERFORM _audit('label_remove', 'label', v_name || '@' || OLD.label, OLD.template_id, OLD.version,
            to_jsonb(OLD), NULL);
        PERFORM _notify_change(v_name, OLD.version, 'unlabel', OLD.label);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION _guardrails_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' AND _restoring() THEN
        PERFORM _replace_builtin(TG_RELID, 'name', NEW.id, NEW.name);
    END IF;
    PERFORM _guardrail_check(NEW.name, NEW.kind, NEW.action, NEW.direction, NEW.config);
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION _guardrails_keep_builtin()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    -- A restore replaces built-in rows with the restored ones (_replace_builtin).
    IF OLD.builtin AND NOT _restoring() THEN
        RAISE EXCEPTION 'guardrail "%" is built in and cannot be deleted', OLD.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Disable it instead: UPDATE pgprompt.prompt_guardrails SET enabled = false WHERE name = %L;', OLD.name);
    END IF;
    RETURN OLD;
END
$$;

CREATE OR REPLACE FUNCTION _prices_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' AND _restoring() THEN
        -- A restored row replaces the shipped one CREATE EXTENSION put in its place.
        DELETE FROM prompt_model_prices p
         WHERE p.builtin AND (p.id = NEW.id OR (p.model, p.effective_from) = (NEW.model, NEW.effective_from));
    END IF;
    -- One spelling per price: 2.50 is stored as 2.5.
    NEW.input_usd_per_mtok := trim_scale(NEW.input_usd_per_mtok);
    NEW.output_usd_per_mtok := trim_scale(NEW.output_usd_per_mtok);
    NEW.cached_input_usd_per_mtok := trim_scale(NEW.cached_input_usd_per_mtok);
    NEW.long_input_usd_per_mtok := trim_scale(NEW.long_input_usd_per_mtok);
    NEW.long_output_usd_per_mtok := trim_scale(NEW.long_output_usd_per_mtok);
    NEW.long_cached_input_usd_per_mtok := trim_scale(NEW.long_cached_input_usd_per_mtok);
    PERFORM _model_price_check(NEW.match_pattern,
        ARRAY[NEW.input_usd_per_mtok, NEW.output_usd_per_mtok, NEW.cached_input_usd_per_mtok,
              NEW.long_input_usd_per_mtok, NEW.long_output_usd_per_mtok, NEW.long_cached_input_usd_per_mtok]::text[]);
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION _alert_rules_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' AND _restoring() THEN
        PERFORM _replace_builtin(TG_RELID, 'name', NEW.id, NEW.name);
    END IF;
    IF NEW.metric IS NULL OR NEW.metric NOT IN ('daily_cost_usd', 'p95_latency_ms', 'error_rate', 'success_rate') THEN
        RAISE EXCEPTION 'unknown alert metric "%"', NEW.metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Metrics: daily_cost_usd, p95_latency_ms, error_rate, success_rate.';
    END IF;
    IF NEW.time_window IS NULL OR NEW.time_window <= interval '0' OR NEW.time_window > interval '366 days' THEN
        RAISE EXCEPTION 'alert window must be positive and at most 366 days (got %)', NEW.time_window
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.threshold IS NULL OR NEW.threshold < 0 OR NEW.threshold = 'NaN'
       OR (NEW.metric IN ('error_rate', 'success_rate') AND NEW.threshold > 1) THEN
        RAISE EXCEPTION 'threshold % does not suit %', NEW.threshold, NEW.metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Rates are fractions from 0 to 1; costs and latencies are not negative.';
    END IF;
    IF NEW.min_executions < 1 THEN
        RAISE EXCEPTION 'min_executions must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION _experiments_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_item jsonb;
    v_position bigint;
    v_name text;
    v_names text[] := '{}';
    v_normal jsonb := '[]';
    v_sum integer := 0;
    v_missing integer;
    v_template text := (SELECT t.name FROM prompt_templates t WHERE t.id = NEW.template_id);
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status <> NEW.status AND NOT (OLD.status, NEW.status) IN
               (('draft', 'running'), ('running', 'stopped'), ('stopped', 'running'),
                ('running', 'concluded'), ('stopped', 'concluded')) THEN
            RAISE EXCEPTION 'experiment "%" cannot go from % to %', OLD.name, OLD.status, NEW.status
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'draft -> running <-> stopped -> concluded.';
        END IF;
        -- Fixed once started: changing the split would move users between
        -- variants, and changing the decision rules after seeing data is
        -- how false winners are made.
        IF OLD.status <> 'draft' AND (NEW.name, NEW.template_id, NEW.variants, NEW.hash_salt, NEW.control_variant,
                                      NEW.primary_metric, NEW.min_sample_size, NEW.significance_level)
                IS DISTINCT FROM (OLD.name, OLD.template_id, OLD.variants, OLD.hash_salt, OLD.control_variant,
                                  OLD.primary_metric, OLD.min_sample_size, OLD.significance_level) THEN
            RAISE EXCEPTION 'experiment "%" has started: its name, template, variants, control, salt, metric, minimum sample and significance level are fixed', OLD.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Create a new experiment instead.';
        END IF;
    END IF;
    IF jsonb_typeof(NEW.variants) IS DISTINCT FROM 'array' OR jsonb_array_length(NEW.variants) NOT BETWEEN 1 AND 20 THEN
        RAISE EXCEPTION 'variants must be a JSON array of 1 to 20 objects'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '[{"name": "control", "version": 1, "weight": 50}, {"name": "treatment", "version": 2, "weight": 50}]';
    END IF;
    FOR v_item, v_position IN SELECT e, o FROM jsonb_array_elements(NEW.variants) WITH ORDINALITY AS a(e, o) LOOP
        IF jsonb_typeof(v_item) IS DISTINCT FROM 'object'
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(v_item) k WHERE k NOT IN ('name', 'version', 'weight')) THEN
            RAISE EXCEPTION 'variant % must be an object with the keys name, version and weight', v_position
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v_item -> 'version') IS DISTINCT FROM 'number' OR (v_item ->> 'version') !~ '^[0-9]{1,9}$'
           OR (v_item ->> 'version')::integer < 1 THEN
            RAISE EXCEPTION 'variant %: version must be a positive integer', v_position
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v_item -> 'weight') IS DISTINCT FROM 'number' OR (v_item ->> 'weight') !~ '^[0-9]{1,3}$'
           OR (v_item ->> 'weight')::integer NOT BETWEEN 1 AND 100 THEN
            RAISE EXCEPTION 'variant %: weight must be an integer from 1 to 100 (percent of users)', v_position
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_item ? 'name' AND jsonb_typeof(v_item -> 'name') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'variant %: name must be a string', v_position USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_name := coalesce(v_item ->> 'name', 'v' || (v_item ->> 'version'));
        IF v_name !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$' THEN
            RAISE EXCEPTION 'variant %: name "%" is not valid', v_position, v_name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Up to 64 letters, digits, _ . and -, not starting with . or -.';
        END IF;
        IF v_name = ANY (v_names) THEN
            RAISE EXCEPTION 'variant name "%" is used twice', v_name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name the variants when two of them test the same version.';
        END IF;
        v_names := v_names || v_name;
        v_sum := v_sum + (v_item ->> 'weight')::integer;
        v_normal := v_normal || jsonb_build_object('name', v_name, 'version', (v_item ->> 'version')::integer,
                                                   'weight', (v_item ->> 'weight')::integer);
    END LOOP;
    IF v_sum <> 100 THEN
        RAISE EXCEPTION 'variant weights sum to %, not 100', v_sum
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Weights are percentages of users.';
    END IF;
    NEW.variants := v_normal;
    NEW.control_variant := coalesce(NEW.control_variant, v_names[1]);
    IF NOT NEW.control_variant = ANY (v_names) THEN
        RAISE EXCEPTION 'control variant "%" is not one of the variants (%)', NEW.control_variant, array_to_string(v_names, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.winner IS NOT NULL AND NOT NEW.winner = ANY (v_names) THEN
        RAISE EXCEPTION 'winner "%" is not one of the variants (%)', NEW.winner, array_to_string(v_names, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.hash_salt := coalesce(NEW.hash_salt, NEW.name);

    -- Restored rows may arrive before the versions they name.
    IF NOT (TG_OP = 'INSERT' AND _restoring()) THEN
        SELECT count(*) INTO v_missing
          FROM jsonb_array_elements(NEW.variants) e
         WHERE NOT EXISTS (SELECT 1 FROM prompt_versions v
                            WHERE v.template_id = NEW.template_id AND v.version = (e ->> 'version')::integer);
        IF v_missing > 0 THEN
            RAISE EXCEPTION 'variant versions % are not all versions of template "%"',
                  (SELECT string_agg(e ->> 'version', ', ') FROM jsonb_array_elements(NEW.variants) e), v_template
                USING ERRCODE = 'undefined_object',
                      DETAIL = format('Versions of "%s": %s.', v_template,
                          (SELECT string_agg(v.version::text, ', ' ORDER BY v.version) FROM prompt_versions v
                            WHERE v.template_id = NEW.template_id));
        END IF;
    END IF;

    IF NEW.status = 'running' AND jsonb_array_length(NEW.variants) < 2 THEN
        RAISE EXCEPTION 'experiment "%" has % variant; it needs at least two to run', NEW.name, jsonb_array_length(NEW.variants)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _audit(text, text, text, bigint, integer, jsonb, jsonb) IS
    'Internal: appends a row to prompt_audit_logs. No role may call it: the audit triggers, which run as the extension''s owner, do.';

-- _audit ran as its owner and administrators could call it (and forge
-- entries); now only the audit triggers, running as the owner, can.
ALTER FUNCTION _audit(text, text, text, bigint, integer, jsonb, jsonb) SECURITY INVOKER;
REVOKE EXECUTE ON FUNCTION _audit(text, text, text, bigint, integer, jsonb, jsonb) FROM pgprompt_admin;

DROP FUNCTION _is_restored(timestamptz);

REVOKE ALL ON FUNCTION _restoring(), _stamp_new_row() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _restoring(), _stamp_new_row() TO pgprompt_admin;

------------------------------------------------------------------------------
-- Guardrails: decoding budgeted by bytes, error messages redacted
------------------------------------------------------------------------------

COMMENT ON FUNCTION prompt_guard_scan(text, text) IS
$$Findings of the enabled guardrails covering the direction (input, output or both): guardrail, kind, entity, character offsets into the content (start_pos from 0, end_pos excluded), severity, action. The text is folded against evasions (Unicode compatibility forms, invisible characters, look-alike letters) and base64, hex, percent-encoded and \uNNNN-escaped runs are decoded and scanned too (up to 1 MB of runs per text; runs beyond that are findings of entity UNSCANNED_ENCODING for every guardrail, so blocking and redaction fail closed). Writes nothing.
Errors: 22004 NULL argument, 22023 bad direction, 54000 content over pgprompt.max_scan_bytes.$$;

COMMENT ON COLUMN prompt_executions.error_message IS 'Why it failed, redacted like rendered_prompt.';
COMMENT ON FUNCTION prompt_log_execution(text, integer, text, bigint, bigint, integer, boolean, text, text, text, text, bigint, text, text, jsonb, timestamptz) IS
$$Logs one LLM call and returns its id: prices it (cost_usd, NULL with a WARNING when the model has no price), stores the rendered prompt, response and error message with PII and what redact guardrails find replaced by <ENTITY> (raw when pgprompt.store_raw_text is on), records what log and redact guardrails find in prompt_guardrail_violations, and counts it in the statistics. version defaults to the active one, model to the version's model_config.model. In an experiment, a call with a user_id counts for the variant the user's bucket owns: variant may be left out, and one that contradicts the bucket is refused. With pgprompt.log_executions off it writes nothing and returns NULL. Nothing here fails the caller for a missing price or a guardrail finding.
Errors: 22004 NULL template or no model, 22023 negative tokens or latency, cached tokens above input tokens, empty model, metadata not an object, a variant without an experiment, an experiment without variant or user, a variant that is not the user's, a variant of another experiment or template; 42704 unknown template, version or experiment.$$;

COMMENT ON FUNCTION _record_violations_detached(jsonb, text, text) IS
    'Internal: queues blocked findings for pgprompt''s background worker (one for all sessions), which records them in a transaction of their own, so the ERROR that blocks the text does not erase them.';

------------------------------------------------------------------------------
-- Partitions: UTC bounds whatever the session, months held under any name,
-- one creator at a time (made by the worker, in a transaction of its own)
------------------------------------------------------------------------------

CREATE FUNCTION _executions_partition_of(p_at timestamptz)
RETURNS regclass
LANGUAGE sql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
    SELECT c.oid::regclass
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) bound
      LEFT JOIN LATERAL regexp_match(bound, $re$^FOR VALUES FROM \((?:'([^']+)'|MINVALUE)\) TO \((?:'([^']+)'|MAXVALUE)\)$re$) b ON true
     WHERE i.inhparent = 'pgprompt.prompt_executions'::regclass
       AND (bound = 'DEFAULT'
            OR b IS NOT NULL AND (b[1] IS NULL OR p_at >= b[1]::timestamptz) AND (b[2] IS NULL OR p_at < b[2]::timestamptz))
     -- A month's own partition before a default one.
     ORDER BY bound = 'DEFAULT'
     LIMIT 1
$$;

COMMENT ON FUNCTION _executions_partition_of(timestamptz) IS
    'Internal: the partition of prompt_executions that holds a time (whatever its name), or NULL.';

CREATE OR REPLACE FUNCTION _executions_create_partition(p_at timestamptz, p_wait boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    v_month timestamp := date_trunc('month', p_at AT TIME ZONE 'UTC');
    v_from text := to_char(v_month, 'YYYY-MM-DD') || ' 00:00:00+00';
    v_to text := to_char(v_month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
    v_name text := 'prompt_executions_' || to_char(v_month, 'YYYY_MM');
    v_timeout text := current_setting('lock_timeout');
BEGIN
    IF _executions_partition_of(p_at) IS NOT NULL THEN
        RETURN;
    END IF;
    IF p_wait THEN
        PERFORM pg_advisory_xact_lock('pgprompt.prompt_executions'::regclass::oid::integer, 0);
    ELSIF NOT pg_try_advisory_xact_lock('pgprompt.prompt_executions'::regclass::oid::integer, 0) THEN
        RETURN;
    END IF;
    -- Another creator may have made it while this one waited.
    IF _executions_partition_of(p_at) IS NOT NULL THEN
        RETURN;
    END IF;
    IF to_regclass(format('pgprompt.%I', v_name)) IS NOT NULL THEN
        IF NOT p_wait THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'pgprompt.% exists but is not the partition of prompt_executions for % (UTC)', v_name, to_char(v_month, 'YYYY-MM')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'It may be a month detached from prompt_executions; calls of that month cannot be logged until it is back.',
                  HINT = format('Attach it: ALTER TABLE pgprompt.prompt_executions ATTACH PARTITION pgprompt.%I FOR VALUES FROM (%L) TO (%L); or rename it.',
                                v_name, v_from, v_to);
    END IF;
    BEGIN
        IF NOT p_wait THEN
            PERFORM set_config('lock_timeout', '50ms', true);
        END IF;
        EXECUTE format('CREATE TABLE pgprompt.%I (LIKE pgprompt.prompt_executions INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', v_name);
        -- Ids are unique across partitions (one sequence); the key is per partition.
        EXECUTE format('ALTER TABLE pgprompt.%I ADD PRIMARY KEY (id)', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (template_id, executed_at)', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (executed_at) WHERE NOT success', v_name);
        -- Recent calls of all templates (the alert windows): calls arrive in
        -- time order, so a BRIN index finds them at almost no cost per insert.
        EXECUTE format('CREATE INDEX ON pgprompt.%I USING brin (executed_at) WITH (pages_per_range = 16)', v_name);
        -- The bound as a constraint lets ATTACH skip its validation scan.
        EXECUTE format('ALTER TABLE pgprompt.%I ADD CONSTRAINT %I CHECK (executed_at >= %L AND executed_at < %L)',
                       v_name, v_name || '_bound', v_from, v_to);
        EXECUTE format('ALTER TABLE pgprompt.prompt_executions ATTACH PARTITION pgprompt.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_from, v_to);
        EXECUTE format('ALTER TABLE pgprompt.%I DROP CONSTRAINT %I', v_name, v_name || '_bound');
        EXECUTE format('COMMENT ON TABLE pgprompt.%I IS %L', v_name,
                       format('Calls of %s (UTC), a partition of prompt_executions.', to_char(v_month, 'YYYY-MM')));
        PERFORM set_config('lock_timeout', v_timeout, true);
    EXCEPTION
        -- Ahead of time, a lock that is not free is no reason to wait or fail.
        WHEN lock_not_available THEN
            IF p_wait THEN
                RAISE;
            END IF;
            RETURN;
    END;
    -- What was made holds exactly the month.
    IF (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = format('pgprompt.%I', v_name)::regclass)
           IS DISTINCT FROM format('FOR VALUES FROM (%L) TO (%L)', v_from, v_to)
       OR _executions_partition_of(p_at) IS DISTINCT FROM format('pgprompt.%I', v_name)::regclass THEN
        RAISE EXCEPTION 'the partition made for % (UTC) does not hold exactly that month', to_char(v_month, 'YYYY-MM')
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = format('pgprompt.%I', v_name)::regclass);
    END IF;
END
$$;

COMMENT ON FUNCTION _executions_create_partition(timestamptz, boolean) IS
    'Internal: creates, attaches and checks the month partition (UTC) of prompt_executions holding a time, unless a partition holds it; 55000 when a table of that name is in the way.';

CREATE OR REPLACE FUNCTION _executions_partition(p_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
BEGIN
    PERFORM _executions_create_partition(p_at, true);
    -- Ahead of time is a convenience: what stands in its way (a partition of
    -- the user's own overlapping next month, say) is reported, and left to
    -- the first call of that month, which fails with it if it still holds.
    BEGIN
        PERFORM _executions_create_partition(((date_trunc('month', p_at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'), false);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'the partition of prompt_executions for the month after % could not be made ahead of time: %', p_at, SQLERRM;
    END;
END
$$;

COMMENT ON FUNCTION _executions_partition(timestamptz) IS
    'Internal: makes sure prompt_executions has a partition for the month of a time (and tries the next month).';

CREATE OR REPLACE FUNCTION prompt_purge_executions(older_than interval)
RETURNS TABLE (partition text, range_start timestamptz, range_end timestamptz)
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    p record;
BEGIN
    PERFORM _require(older_than, 'older_than');
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative (got %)', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR p IN
        SELECT c.relname, b[1]::timestamptz AS lo, b[2]::timestamptz AS hi
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) b
         WHERE i.inhparent = 'pgprompt.prompt_executions'::regclass
         ORDER BY 2
    LOOP
        CONTINUE WHEN p.hi > now() - older_than;
        EXECUTE format('DROP TABLE pgprompt.%I', p.relname);
        partition := p.relname;
        range_start := p.lo;
        range_end := p.hi;
        RETURN NEXT;
    END LOOP;
END
$$;

-- CREATE OR REPLACE reset what roles.sql set.
ALTER FUNCTION prompt_purge_executions(interval) SECURITY DEFINER;

REVOKE ALL ON FUNCTION _executions_partition_of(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _executions_partition_of(timestamptz) TO pgprompt_admin;

------------------------------------------------------------------------------
-- Render options per version; templates that render as Jinja2 does
------------------------------------------------------------------------------

-- Existing versions keep rendering as they did: Jinja2's whitespace
-- defaults and strict undefined variables.
ALTER TABLE prompt_versions ADD COLUMN options jsonb NOT NULL
    DEFAULT '{"trim_blocks": false, "lstrip_blocks": false, "keep_trailing_newline": false, "undefined": "strict"}'
    CHECK (jsonb_typeof(options) = 'object');
COMMENT ON COLUMN prompt_versions.options IS
    'How the version renders: trim_blocks, lstrip_blocks, keep_trailing_newline (Jinja2''s whitespace switches, off by default) and undefined (strict: printing, iterating or measuring a missing variable is an error; lenient: Jinja2''s default Undefined). Every key, as prompt_save stored them.';

CREATE  FUNCTION "_render_options"(
	"options" jsonb /* Option < JsonB > */
) RETURNS jsonb /* JsonB */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_render_options_wrapper';

DROP FUNCTION prompt_render_text(text, jsonb);
CREATE  FUNCTION "prompt_render_text"(
	"body" TEXT, /* Option < & str > */
	"vars" jsonb DEFAULT '{}', /* Option < JsonbArg > */
	"options" jsonb DEFAULT '{}' /* Option < JsonB > */
) RETURNS TEXT /* String */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_text_with_wrapper';

COMMENT ON FUNCTION prompt_render_text(text, jsonb, jsonb) IS
$$Renders a template body that is not stored (a dry run before saving), with the render options it would be saved with (see prompt_save). Same rules and errors as prompt_render, plus 42601 for syntax errors, 54000 for bodies over pgprompt.max_template_bytes 22023 for a bad option and 22004 for NULL options.$$;

COMMENT ON FUNCTION _render_options(jsonb) IS
    'Internal: checks render options (22023 naming an unknown option or a bad value) and returns every option, as stored with a version.';

COMMENT ON FUNCTION prompt_render(text, jsonb, integer, text) IS
$$Renders a text template with Jinja2 semantics (minijinja, with Python's methods and json.dumps as tojson): the active version, or the version or label asked for (label may be latest or active), with the version's render options.
Undefined "strict" (the default): a variable the template prints, iterates or measures but vars lacks is an error naming it; {% if x %}, comparisons, tests and default(...) treat it as Jinja2 does. "lenient": Jinja2's default Undefined. Compiles are cached per session by immutable version id, so a render is never stale.
Errors: 22004 NULL name or vars, 22023 vars not an object or both version and label, 42704 unknown template/version/label, 42809 chat template, 42P02 missing variable, 38000 template error, 54000 output or vars too large, 54001 out of fuel (pgprompt.render_fuel) or too complex, P0001 (raise_exception) the template called raise_exception(message), with its message.$$;

REVOKE ALL ON FUNCTION _render_options(jsonb), prompt_render_text(text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_render_text(text, jsonb, jsonb) TO pgprompt_app;
GRANT EXECUTE ON FUNCTION _render_options(jsonb), prompt_render_text(text, jsonb, jsonb) TO pgprompt_admin;

DROP FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer);
CREATE FUNCTION prompt_save(
    name        text,
    body        text,
    config      jsonb   DEFAULT '{}',
    message     text    DEFAULT NULL,
    kind        text    DEFAULT 'text',
    description text    DEFAULT NULL,
    category    text    DEFAULT NULL,
    parent      integer DEFAULT NULL,
    options     jsonb   DEFAULT '{}'
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_variables text[];
    v_template_id bigint;
    v_version integer;
    v_options jsonb;
BEGIN
    PERFORM _require(prompt_save.name, 'name');
    PERFORM _require(prompt_save.body, 'body');
    PERFORM _require(prompt_save.config, 'config');
    PERFORM _require(prompt_save.kind, 'kind');
    IF jsonb_typeof(prompt_save.config) <> 'object' THEN
        RAISE EXCEPTION 'config must be a JSON object, not %', jsonb_typeof(prompt_save.config)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: ''{"model": "gemini-2.5-flash", "temperature": 0.2}''';
    END IF;
    IF length(prompt_save.name) NOT BETWEEN 1 AND 200
       OR prompt_save.name !~ '^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$' THEN
        RAISE EXCEPTION 'invalid template name "%"', prompt_save.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use letters, digits and _ . : / - (up to 200 characters), not starting with punctuation other than _.';
    END IF;

    -- Parses the body (42601 with line and column), checks its size (54000)
    -- and the kind (22023), and lists the variables it reads.
    v_variables := prompt_variables(prompt_save.body, prompt_save.kind);
    -- Every option, checked (22023 naming an unknown one or a bad value).
    v_options := _render_options(prompt_save.options);

    -- A new template starts with this version active. ON CONFLICT waits for a
    -- concurrent creator of the same name and then takes the other branch.
    INSERT INTO prompt_templates AS t (name, description, category, active_version)
    VALUES (prompt_save.name, prompt_save.description, prompt_save.category, 1)
    ON CONFLICT ON CONSTRAINT prompt_templates_name_key DO NOTHING
    RETURNING t.id INTO v_template_id;

    IF v_template_id IS NOT NULL THEN
        v_version := 1;
        IF prompt_save.parent IS NOT NULL THEN
            RAISE EXCEPTION 'parent % does not exist: "%" is a new template', prompt_save.parent, prompt_save.name
                USING ERRCODE = 'undefined_object';
        END IF;
    ELSE
        -- Lock the template (serialising concurrent saves) and touch it.
        UPDATE prompt_templates t
           SET description = coalesce(prompt_save.description, t.description),
               category = coalesce(prompt_save.category, t.category)
         WHERE t.name = prompt_save.name
        RETURNING t.id INTO v_template_id;
        SELECT max(v.version) + 1 INTO v_version FROM prompt_versions v WHERE v.template_id = v_template_id;
        IF prompt_save.parent IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM prompt_versions v
             WHERE v.template_id = v_template_id AND v.version = prompt_save.parent) THEN
            RAISE EXCEPTION 'parent version % of template "%" does not exist', prompt_save.parent, prompt_save.name
                USING ERRCODE = 'undefined_object';
        END IF;
    END IF;

    INSERT INTO prompt_versions (template_id, version, kind, body, model_config, variables, message, parent_version, options)
    VALUES (v_template_id, v_version, prompt_save.kind, prompt_save.body, prompt_save.config, v_variables,
            prompt_save.message,
            CASE WHEN v_version > 1 THEN coalesce(prompt_save.parent, v_version - 1) END,
            v_options);

    IF v_version = 1 THEN
        INSERT INTO prompt_activations (template_id, version, action)
        VALUES (v_template_id, 1, 'create');
    END IF;
    RETURN v_version;
END
$$;

COMMENT ON FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb) IS
$$Saves a new immutable version of a template and returns its number. Creates the template if it is new; its first version becomes active, later ones wait for prompt_activate.
config: model settings (a JSON object). kind: text or chat. parent: the version this one derives from (default: the newest). options: how it renders, {"trim_blocks", "lstrip_blocks", "keep_trailing_newline": true/false, "undefined": "strict"/"lenient"} (Jinja2's whitespace defaults, strict undefined; chat templates written for transformers want trim_blocks and lstrip_blocks).
Errors: 22004 NULL argument, 22023 config not an object / bad name / bad kind / unknown render option or a value of the wrong type, 42601 syntax error (with line and column), 54000 body over pgprompt.max_template_bytes.$$;

ALTER FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb) SECURITY DEFINER;
REVOKE ALL ON FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb) TO pgprompt_admin;

ALTER TYPE prompt_version_info ADD ATTRIBUTE options jsonb;
COMMENT ON COLUMN prompt_version_info.options IS 'How it renders (trim_blocks, lstrip_blocks, keep_trailing_newline, undefined).';

CREATE OR REPLACE FUNCTION prompt_get(name text, version integer DEFAULT NULL, label text DEFAULT NULL)
RETURNS SETOF prompt_version_info
LANGUAGE plpgsql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates;
    v_version integer;
BEGIN
    PERFORM _require(prompt_get.name, 'name');
    IF prompt_get.version IS NOT NULL AND prompt_get.label IS NOT NULL THEN
        RAISE EXCEPTION 'pass either a version or a label, not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_template FROM prompt_templates t WHERE t.name = prompt_get.name;
    IF v_template.id IS NULL THEN
        RAISE EXCEPTION 'template "%" does not exist', prompt_get.name
            USING ERRCODE = 'undefined_object';
    END IF;
    v_version := CASE
        WHEN prompt_get.version IS NOT NULL THEN prompt_get.version
        WHEN prompt_get.label IS NULL OR prompt_get.label = 'active' THEN v_template.active_version
        WHEN prompt_get.label = 'latest' THEN
            (SELECT max(v.version) FROM prompt_versions v WHERE v.template_id = v_template.id)
        ELSE (SELECT l.version FROM prompt_labels l
               WHERE l.template_id = v_template.id AND l.label = prompt_get.label)
    END;
    RETURN QUERY
        SELECT v_template.name, v.version, v.kind, v.body, v.model_config, v.variables,
               v.version = v_template.active_version,
               coalesce((SELECT array_agg(l.label ORDER BY l.label) FROM prompt_labels l
                          WHERE l.template_id = v.template_id AND l.version = v.version), '{}'),
               v.message, v.parent_version, v.created_at, v.created_by, v.options
          FROM prompt_versions v
         WHERE v.template_id = v_template.id AND v.version = v_version;
    IF NOT FOUND THEN
        IF prompt_get.label IS NOT NULL THEN
            RAISE EXCEPTION 'label "%" of template "%" does not exist', prompt_get.label, prompt_get.name
                USING ERRCODE = 'undefined_object';
        END IF;
        RAISE EXCEPTION 'version % of template "%" does not exist', prompt_get.version, prompt_get.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION prompt_get(text, integer, text) IS
$$One version of a template: body, kind, config, render options, variables, number, whether it is active and its labels. Default: the active version; label may also be latest or active.
Errors: 22004 NULL name, 22023 both version and label, 42704 unknown template, version or label.$$;

------------------------------------------------------------------------------
-- Vars as JSON text, keys in the order written: text and json overloads of
-- the render functions (an untyped literal now resolves to text).
------------------------------------------------------------------------------

CREATE FUNCTION "prompt_render"(
	"name" TEXT, /* Option < & str > */
	"vars" text, /* Option < TextArg > */
	"version" INT DEFAULT NULL, /* Option < i32 > */
	"label" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS text /* Text */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_ordered_wrapper';

CREATE FUNCTION "prompt_render"(
	"name" TEXT, /* Option < & str > */
	"vars" json, /* Option < JsonArg > */
	"version" INT DEFAULT NULL, /* Option < i32 > */
	"label" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS text /* Text */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_json_wrapper';

CREATE FUNCTION "prompt_render_chat"(
	"name" TEXT, /* Option < & str > */
	"vars" text, /* Option < TextArg > */
	"version" INT DEFAULT NULL, /* Option < i32 > */
	"label" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_chat_ordered_wrapper';

CREATE FUNCTION "prompt_render_chat"(
	"name" TEXT, /* Option < & str > */
	"vars" json, /* Option < JsonArg > */
	"version" INT DEFAULT NULL, /* Option < i32 > */
	"label" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* JsonB */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_chat_json_wrapper';

CREATE FUNCTION "prompt_render_text"(
	"body" TEXT, /* Option < & str > */
	"vars" text, /* Option < TextArg > */
	"options" jsonb DEFAULT '{}' /* Option < JsonB > */
) RETURNS TEXT /* String */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_text_ordered_wrapper';

CREATE FUNCTION "prompt_render_text"(
	"body" TEXT, /* Option < & str > */
	"vars" json, /* Option < JsonArg > */
	"options" jsonb DEFAULT '{}' /* Option < JsonB > */
) RETURNS TEXT /* String */
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_text_json_wrapper';

CREATE FUNCTION "prompt_render_for"(
	"template" TEXT, /* Option < & str > */
	"user_id" TEXT, /* Option < & str > */
	"vars" text /* Option < TextArg > */
) RETURNS TABLE (
	"prompt" TEXT,  /* Option < String > */
	"messages" jsonb,  /* Option < JsonB > */
	"version" INT,  /* i32 */
	"experiment" TEXT,  /* Option < String > */
	"variant" TEXT,  /* Option < String > */
	"config" jsonb  /* JsonB */
)
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_for_ordered_wrapper';

CREATE FUNCTION "prompt_render_for"(
	"template" TEXT, /* Option < & str > */
	"user_id" TEXT, /* Option < & str > */
	"vars" json /* Option < JsonArg > */
) RETURNS TABLE (
	"prompt" TEXT,  /* Option < String > */
	"messages" jsonb,  /* Option < JsonB > */
	"version" INT,  /* i32 */
	"experiment" TEXT,  /* Option < String > */
	"variant" TEXT,  /* Option < String > */
	"config" jsonb  /* JsonB */
)
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_for_json_wrapper';

COMMENT ON FUNCTION prompt_render(text, text, integer, text) IS
$$prompt_render with vars as JSON text, which is what an untyped literal such as '{"a": 1}' resolves to: object keys keep the order they are written in, as Python's json.loads keeps them, so loops over mappings and tojson show the caller's order (jsonb vars render in alphabetical key order). Integers beyond 64 bits are read as doubles.
Errors as prompt_render, plus 22P02 vars that are not JSON and 22030 a key repeated within one object.$$;

COMMENT ON FUNCTION prompt_render(text, json, integer, text) IS
$$prompt_render with json vars: keys keep the order they are written in (see prompt_render(text, text, integer, text)). Errors as that one.$$;

COMMENT ON FUNCTION prompt_render_chat(text, text, integer, text) IS
$$prompt_render_chat with vars as JSON text, which is what an untyped literal such as '{"a": 1}' resolves to: object keys keep the order they are written in, as Python's json.loads keeps them, so loops over mappings and tojson show the caller's order (jsonb vars render in alphabetical key order). Integers beyond 64 bits are read as doubles.
Errors as prompt_render_chat, plus 22P02 vars that are not JSON and 22030 a key repeated within one object.$$;

COMMENT ON FUNCTION prompt_render_chat(text, json, integer, text) IS
$$prompt_render_chat with json vars: keys keep the order they are written in (see prompt_render_chat(text, text, integer, text)). Errors as that one.$$;

COMMENT ON FUNCTION prompt_render_text(text, text, jsonb) IS
$$prompt_render_text with vars as JSON text, which is what an untyped literal such as '{"a": 1}' resolves to: object keys keep the order they are written in, as Python's json.loads keeps them, so loops over mappings and tojson show the caller's order (jsonb vars render in alphabetical key order). Integers beyond 64 bits are read as doubles.
Errors as prompt_render_text, plus 22P02 vars that are not JSON and 22030 a key repeated within one object.$$;

COMMENT ON FUNCTION prompt_render_text(text, json, jsonb) IS
$$prompt_render_text with json vars: keys keep the order they are written in (see prompt_render_text(text, text, jsonb)). Errors as that one.$$;

COMMENT ON FUNCTION prompt_render_for(text, text, text) IS
$$prompt_render_for with vars as JSON text, which is what an untyped literal such as '{"a": 1}' resolves to: object keys keep the order they are written in, as Python's json.loads keeps them, so loops over mappings and tojson show the caller's order (jsonb vars render in alphabetical key order). Integers beyond 64 bits are read as doubles.
Errors as prompt_render_for, plus 22P02 vars that are not JSON and 22030 a key repeated within one object.$$;

COMMENT ON FUNCTION prompt_render_for(text, text, json) IS
$$prompt_render_for with json vars: keys keep the order they are written in (see prompt_render_for(text, text, text)). Errors as that one.$$;

REVOKE ALL ON FUNCTION prompt_render(text, text, integer, text), prompt_render(text, json, integer, text), prompt_render_chat(text, text, integer, text), prompt_render_chat(text, json, integer, text), prompt_render_text(text, text, jsonb), prompt_render_text(text, json, jsonb), prompt_render_for(text, text, text), prompt_render_for(text, text, json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_render(text, text, integer, text), prompt_render(text, json, integer, text), prompt_render_chat(text, text, integer, text), prompt_render_chat(text, json, integer, text), prompt_render_text(text, text, jsonb), prompt_render_text(text, json, jsonb), prompt_render_for(text, text, text), prompt_render_for(text, text, json) TO pgprompt_app, pgprompt_admin;

------------------------------------------------------------------------------
-- Experiments: promotion waits for the minimum sample (or force); calls
-- with a user id count for the user's variant (checked in the library).
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION prompt_experiment_promote(name text, variant text DEFAULT NULL, version integer DEFAULT NULL,
                                          force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_experiment ab_test_experiments := _lock_experiment(prompt_experiment_promote.name);
    v_wanted text;
    v_chosen jsonb;
    v_short text;
BEGIN
    IF v_experiment.status NOT IN ('running', 'stopped') THEN
        RAISE EXCEPTION 'experiment "%" is %; only a running or stopped experiment can be promoted', v_experiment.name, v_experiment.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF prompt_experiment_promote.variant IS NOT NULL AND prompt_experiment_promote.version IS NOT NULL THEN
        RAISE EXCEPTION 'pass either a variant or a version, not both' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_wanted := prompt_experiment_promote.variant;
    IF v_wanted IS NULL AND prompt_experiment_promote.version IS NULL THEN
        -- No choice given: the significant winner, if there is one.
        SELECT r.variant INTO v_wanted FROM v_ab_test_results r
         WHERE r.experiment = v_experiment.name AND r.significant AND r.lift_abs > 0
         ORDER BY r.success_rate DESC LIMIT 1;
        IF v_wanted IS NULL THEN
            RAISE EXCEPTION 'experiment "%" has no variant significantly better than the control "%"', v_experiment.name, v_experiment.control_variant
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Look at v_ab_test_results, then name the variant to promote: prompt_experiment_promote(name, variant => ...).';
        END IF;
    END IF;
    -- By name, or the first variant of the version given.
    SELECT a.e INTO v_chosen FROM jsonb_array_elements(v_experiment.variants) WITH ORDINALITY a(e, position)
     WHERE CASE WHEN v_wanted IS NOT NULL THEN a.e ->> 'name' = v_wanted
                ELSE (a.e ->> 'version')::integer = prompt_experiment_promote.version END
     ORDER BY a.position LIMIT 1;
    IF v_chosen IS NULL AND v_wanted IS NOT NULL THEN
        RAISE EXCEPTION 'experiment "%" has no variant "%"', v_experiment.name, v_wanted
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Variants: ' || (SELECT string_agg(e ->> 'name', ', ') FROM jsonb_array_elements(v_experiment.variants) e) || '.';
    ELSIF v_chosen IS NULL THEN
        RAISE EXCEPTION 'version % is not a variant of experiment "%"', prompt_experiment_promote.version, v_experiment.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Variant versions: ' || (SELECT string_agg(e ->> 'version', ', ') FROM jsonb_array_elements(v_experiment.variants) e) || '.';
    END IF;

    -- A winner read off too few calls is noise: every variant needs the
    -- experiment's minimum sample, unless the caller forces it.
    SELECT string_agg(format('%s (%s calls)', r.variant, r.executions), ', ' ORDER BY r.variant) INTO v_short
      FROM v_ab_test_results r
     WHERE r.experiment = v_experiment.name AND r.executions < v_experiment.min_sample_size;
    IF v_short IS NOT NULL AND NOT prompt_experiment_promote.force THEN
        RAISE EXCEPTION 'experiment "%" has fewer than its minimum sample of % calls per variant: %',
                        v_experiment.name, v_experiment.min_sample_size, v_short
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for more calls, or pass force => true to promote anyway.';
    END IF;

    IF (SELECT t.active_version FROM prompt_templates t WHERE t.id = v_experiment.template_id) <> (v_chosen ->> 'version')::integer THEN
        PERFORM prompt_activate((SELECT t.name FROM prompt_templates t WHERE t.id = v_experiment.template_id),
                                (v_chosen ->> 'version')::integer, prompt_experiment_promote.force);
    END IF;
    UPDATE ab_test_experiments e
       SET status = 'concluded', winner = v_chosen ->> 'name', stopped_at = coalesce(e.stopped_at, now()), concluded_at = now()
     WHERE e.id = v_experiment.id;
    RETURN (v_chosen ->> 'version')::integer;
END
$$;

COMMENT ON FUNCTION prompt_experiment_promote(text, text, integer, boolean) IS
$$Concludes an experiment in one transaction: activates the winning variant's version (gated by its test cases like prompt_activate; force passes through) and records it as the winner; returns that version. The winner is the variant (by name) or version given, or else the variant v_ab_test_results calls significantly better than the control. Every variant needs min_sample_size calls first; force => true promotes anyway (and passes through to the activation's gate).
Errors: 22004 NULL name, 22023 not a variant of the experiment, 42704 unknown experiment, 55000 not running or stopped, a variant short of the minimum sample, or no significant winner when none was named, PG002 failing test cases.$$;
ALTER FUNCTION prompt_experiment_promote(text, text, integer, boolean) SECURITY DEFINER;

------------------------------------------------------------------------------
-- prompt_render_for also returns the version's model configuration.
------------------------------------------------------------------------------

DROP FUNCTION prompt_render_for(text, text, jsonb);
CREATE FUNCTION "prompt_render_for"(
	"template" TEXT, /* Option < & str > */
	"user_id" TEXT, /* Option < & str > */
	"vars" jsonb DEFAULT '{}' /* Option < JsonbArg > */
) RETURNS TABLE (
	"prompt" TEXT,  /* Option < String > */
	"messages" jsonb,  /* Option < JsonB > */
	"version" INT,  /* i32 */
	"experiment" TEXT,  /* Option < String > */
	"variant" TEXT,  /* Option < String > */
	"config" jsonb  /* JsonB */
)
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_render_for_config_wrapper';

COMMENT ON FUNCTION prompt_render_for(text, text, jsonb) IS
$$Renders the version prompt_assign picks for the user and says which it was: prompt (text templates) or messages (chat templates), version, the experiment and variant (NULL outside an experiment), ready for prompt_log_execution, and config, the version's model configuration (model, temperature, ...): one call gives everything the request needs.
Errors: those of prompt_assign and prompt_render.$$;

REVOKE ALL ON FUNCTION prompt_render_for(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_render_for(text, text, jsonb) TO pgprompt_app, pgprompt_admin;

------------------------------------------------------------------------------
-- Traces: every call may name its trace, its parent call and its session.
------------------------------------------------------------------------------

ALTER TABLE prompt_executions
    ADD COLUMN trace_id text CONSTRAINT prompt_executions_trace_id_check CHECK (btrim(trace_id) <> '' AND length(trace_id) <= 200),
    ADD COLUMN parent_id bigint,
    ADD COLUMN session_id text CONSTRAINT prompt_executions_session_id_check CHECK (btrim(session_id) <> '' AND length(session_id) <= 200);
COMMENT ON COLUMN prompt_executions.trace_id IS 'The application''s unit of work the call was part of (a request, a turn): the calls of one trace are one answer.';
COMMENT ON COLUMN prompt_executions.parent_id IS 'The call that caused this one (its id), in the same trace.';
COMMENT ON COLUMN prompt_executions.session_id IS 'The user''s session (a conversation) the trace belongs to.';
COMMENT ON TABLE prompt_executions IS
    'One row per LLM call (prompt_log_execution), partitioned by month (UTC); partitions are created as calls arrive (each with a primary key on id, indexes on (template_id, executed_at), on failed calls'' executed_at, on trace_id and on session_id, and a BRIN index on executed_at) and dropped by prompt_purge_executions. Statistics: prompt_template_stats, ab_test_stats.';


-- Months logged already get the indexes new months are made with.
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT i.inhrelid::regclass FROM pg_inherits i WHERE i.inhparent = 'pgprompt.prompt_executions'::regclass LOOP
        EXECUTE format('CREATE INDEX ON %s (trace_id) WHERE trace_id IS NOT NULL', p);
        EXECUTE format('CREATE INDEX ON %s (session_id) WHERE session_id IS NOT NULL', p);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION _executions_keep_measures()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    -- The trace too: scores of a trace count for the calls it had.
    IF (NEW.id, NEW.executed_at, NEW.template_id, NEW.template_name, NEW.version, NEW.experiment, NEW.variant,
        NEW.model, NEW.input_tokens, NEW.output_tokens, NEW.cached_input_tokens, NEW.cost_usd, NEW.latency_ms, NEW.success,
        NEW.trace_id, NEW.parent_id, NEW.session_id)
       IS DISTINCT FROM
       (OLD.id, OLD.executed_at, OLD.template_id, OLD.template_name, OLD.version, OLD.experiment, OLD.variant,
        OLD.model, OLD.input_tokens, OLD.output_tokens, OLD.cached_input_tokens, OLD.cost_usd, OLD.latency_ms, OLD.success,
        OLD.trace_id, OLD.parent_id, OLD.session_id) THEN
        RAISE EXCEPTION 'the measures of execution % cannot change', OLD.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Statistics count what was logged. Only rendered_prompt, response, error_message, user_id and metadata can be updated.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION _executions_create_partition(p_at timestamptz, p_wait boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    v_month timestamp := date_trunc('month', p_at AT TIME ZONE 'UTC');
    v_from text := to_char(v_month, 'YYYY-MM-DD') || ' 00:00:00+00';
    v_to text := to_char(v_month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
    v_name text := 'prompt_executions_' || to_char(v_month, 'YYYY_MM');
    v_timeout text := current_setting('lock_timeout');
BEGIN
    IF _executions_partition_of(p_at) IS NOT NULL THEN
        RETURN;
    END IF;
    IF p_wait THEN
        PERFORM pg_advisory_xact_lock('pgprompt.prompt_executions'::regclass::oid::integer, 0);
    ELSIF NOT pg_try_advisory_xact_lock('pgprompt.prompt_executions'::regclass::oid::integer, 0) THEN
        RETURN;
    END IF;
    -- Another creator may have made it while this one waited.
    IF _executions_partition_of(p_at) IS NOT NULL THEN
        RETURN;
    END IF;
    IF to_regclass(format('pgprompt.%I', v_name)) IS NOT NULL THEN
        IF NOT p_wait THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'pgprompt.% exists but is not the partition of prompt_executions for % (UTC)', v_name, to_char(v_month, 'YYYY-MM')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'It may be a month detached from prompt_executions; calls of that month cannot be logged until it is back.',
                  HINT = format('Attach it: ALTER TABLE pgprompt.prompt_executions ATTACH PARTITION pgprompt.%I FOR VALUES FROM (%L) TO (%L); or rename it.',
                                v_name, v_from, v_to);
    END IF;
    BEGIN
        IF NOT p_wait THEN
            PERFORM set_config('lock_timeout', '50ms', true);
        END IF;
        EXECUTE format('CREATE TABLE pgprompt.%I (LIKE pgprompt.prompt_executions INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', v_name);
        -- Ids are unique across partitions (one sequence); the key is per partition.
        EXECUTE format('ALTER TABLE pgprompt.%I ADD PRIMARY KEY (id)', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (template_id, executed_at)', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (executed_at) WHERE NOT success', v_name);
        -- A trace's and a session's calls (the trace views, scores by trace).
        EXECUTE format('CREATE INDEX ON pgprompt.%I (trace_id) WHERE trace_id IS NOT NULL', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (session_id) WHERE session_id IS NOT NULL', v_name);
        -- Recent calls of all templates (the alert windows): calls arrive in
        -- time order, so a BRIN index finds them at almost no cost per insert.
        EXECUTE format('CREATE INDEX ON pgprompt.%I USING brin (executed_at) WITH (pages_per_range = 16)', v_name);
        -- The bound as a constraint lets ATTACH skip its validation scan.
        EXECUTE format('ALTER TABLE pgprompt.%I ADD CONSTRAINT %I CHECK (executed_at >= %L AND executed_at < %L)',
                       v_name, v_name || '_bound', v_from, v_to);
        EXECUTE format('ALTER TABLE pgprompt.prompt_executions ATTACH PARTITION pgprompt.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_from, v_to);
        EXECUTE format('ALTER TABLE pgprompt.%I DROP CONSTRAINT %I', v_name, v_name || '_bound');
        EXECUTE format('COMMENT ON TABLE pgprompt.%I IS %L', v_name,
                       format('Calls of %s (UTC), a partition of prompt_executions.', to_char(v_month, 'YYYY-MM')));
        PERFORM set_config('lock_timeout', v_timeout, true);
    EXCEPTION
        -- Ahead of time, a lock that is not free is no reason to wait or fail.
        WHEN lock_not_available THEN
            IF p_wait THEN
                RAISE;
            END IF;
            RETURN;
    END;
    -- What was made holds exactly the month.
    IF (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = format('pgprompt.%I', v_name)::regclass)
           IS DISTINCT FROM format('FOR VALUES FROM (%L) TO (%L)', v_from, v_to)
       OR _executions_partition_of(p_at) IS DISTINCT FROM format('pgprompt.%I', v_name)::regclass THEN
        RAISE EXCEPTION 'the partition made for % (UTC) does not hold exactly that month', to_char(v_month, 'YYYY-MM')
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = format('pgprompt.%I', v_name)::regclass);
    END IF;
END
$$;

DROP FUNCTION prompt_log_execution(text, integer, text, bigint, bigint, integer, boolean, text, text, text, text, bigint, text, text, jsonb, timestamptz);
CREATE  FUNCTION "prompt_log_execution"(
	"template" TEXT, /* Option < & str > */
	"version" INT DEFAULT NULL, /* Option < i32 > */
	"model" TEXT DEFAULT NULL, /* Option < & str > */
	"input_tokens" bigint DEFAULT 0, /* Option < i64 > */
	"output_tokens" bigint DEFAULT 0, /* Option < i64 > */
	"latency_ms" double precision DEFAULT NULL, /* Option < f64 > */
	"success" bool DEFAULT true, /* Option < bool > */
	"user_id" TEXT DEFAULT NULL, /* Option < & str > */
	"rendered_prompt" TEXT DEFAULT NULL, /* Option < & str > */
	"response" TEXT DEFAULT NULL, /* Option < & str > */
	"error_message" TEXT DEFAULT NULL, /* Option < & str > */
	"cached_input_tokens" bigint DEFAULT 0, /* Option < i64 > */
	"experiment" TEXT DEFAULT NULL, /* Option < & str > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT '{}', /* Option < JsonbArg > */
	"executed_at" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"trace_id" TEXT DEFAULT NULL, /* Option < & str > */
	"parent_id" bigint DEFAULT NULL, /* Option < i64 > */
	"session_id" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_log_execution_traced_wrapper';

COMMENT ON FUNCTION prompt_log_execution(text, integer, text, bigint, bigint, double precision, boolean, text, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text) IS
$$Logs one LLM call and returns its id: prices it (cost_usd, NULL with a WARNING when the model has no price), stores the rendered prompt, response and error message with PII and what redact guardrails find replaced by <ENTITY> (raw when pgprompt.store_raw_text is on), records what log and redact guardrails find in prompt_guardrail_violations, and counts it in the statistics. latency_ms may have a fraction (drivers send a measured duration as double precision): it is kept in whole milliseconds, rounded half away from zero. version defaults to the active one, model to the version's model_config.model (or model_name, the seeds' key). In an experiment, a call with a user_id counts for the variant the user's bucket owns: variant may be left out, and one that contradicts the bucket is refused. trace_id, parent_id (the id of the call that caused this one) and session_id place the call in the application's work (v_trace_calls, v_traces, v_sessions); a call with a parent belongs to the parent's trace and session, taken from it when left out. With pgprompt.log_executions off it writes nothing and returns NULL. Nothing here fails the caller for a missing price or a guardrail finding.
Errors: 22004 NULL template or no model, 22023 negative tokens or latency, a latency that is not finite or beyond 2147483647 ms, cached tokens above input tokens, empty model, metadata not an object, a variant without an experiment, an experiment without variant or user, a variant that is not the user's, a variant of another experiment or template, an empty or overlong (200 characters) trace or session id, a parent that is not a logged call or whose trace or session contradicts the given one; 42704 unknown template, version or experiment.$$;

ALTER FUNCTION prompt_log_execution(text, integer, text, bigint, bigint, double precision, boolean, text, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text) SECURITY DEFINER SET search_path = pgprompt, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION prompt_log_execution(text, integer, text, bigint, bigint, double precision, boolean, text, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_log_execution(text, integer, text, bigint, bigint, double precision, boolean, text, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text) TO pgprompt_app, pgprompt_admin;

------------------------------------------------------------------------------
-- Purged months are remembered (a late score of their calls says so).
------------------------------------------------------------------------------

-- What prompt_purge_executions dropped: so that a late score of a call of
-- a purged month is told so (its id lies in the month's range), rather
-- than that the call never was.
CREATE TABLE prompt_executions_purged (
    partition   text NOT NULL,
    range_start timestamptz NOT NULL,
    range_end   timestamptz NOT NULL,
    min_id      bigint,
    max_id      bigint,
    purged_at   timestamptz NOT NULL DEFAULT now(),
    purged_by   text NOT NULL DEFAULT session_user
);

COMMENT ON TABLE prompt_executions_purged IS 'Month partitions of prompt_executions dropped by prompt_purge_executions.';
COMMENT ON COLUMN prompt_executions_purged.partition IS 'The partition dropped.';
COMMENT ON COLUMN prompt_executions_purged.range_start IS 'Start of the range it held.';
COMMENT ON COLUMN prompt_executions_purged.range_end IS 'End of the range it held (exclusive).';
COMMENT ON COLUMN prompt_executions_purged.min_id IS 'The least id of its calls (NULL: it held none).';
COMMENT ON COLUMN prompt_executions_purged.max_id IS 'The greatest id of its calls.';
COMMENT ON COLUMN prompt_executions_purged.purged_at IS 'When it was dropped.';
COMMENT ON COLUMN prompt_executions_purged.purged_by IS 'Session user who dropped it.';

CREATE OR REPLACE FUNCTION prompt_purge_executions(older_than interval)
RETURNS TABLE (partition text, range_start timestamptz, range_end timestamptz)
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    p record;
BEGIN
    PERFORM _require(older_than, 'older_than');
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative (got %)', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR p IN
        SELECT c.relname, b[1]::timestamptz AS lo, b[2]::timestamptz AS hi
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) b
         WHERE i.inhparent = 'pgprompt.prompt_executions'::regclass
         ORDER BY 2
    LOOP
        CONTINUE WHEN p.hi > now() - older_than;
        -- (min and max come from the partition's key: no scan.)
        EXECUTE format('INSERT INTO pgprompt.prompt_executions_purged (partition, range_start, range_end, min_id, max_id)
                        SELECT %L, %L, %L, min(id), max(id) FROM pgprompt.%I', p.relname, p.lo, p.hi, p.relname);
        EXECUTE format('DROP TABLE pgprompt.%I', p.relname);
        partition := p.relname;
        range_start := p.lo;
        range_end := p.hi;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION prompt_purge_executions(interval) IS
$$Drops the month partitions of prompt_executions whose every call is older than older_than (whole partitions only: a month goes once its last day is that old), records them in prompt_executions_purged and returns them. Statistics are kept.
Errors: 22004 NULL, 22023 negative interval.$$;

ALTER FUNCTION prompt_purge_executions(interval) SECURITY DEFINER;
SELECT pg_catalog.pg_extension_config_dump('prompt_executions_purged', '');
GRANT SELECT, INSERT, UPDATE, DELETE ON prompt_executions_purged TO pgprompt_admin;

-- Traces and sessions.
--
-- A trace is the application's unit of work: one request or one turn of a
-- conversation, often several calls (classify, retrieve, answer). Calls
-- name it with prompt_log_execution(trace_id =>, parent_id =>, session_id =>);
-- a session (a conversation) groups traces. These views read the calls
-- through the per-partition indexes on trace_id and session_id, so asking
-- for one trace or session touches only its rows.

CREATE VIEW v_trace_calls AS
SELECT e.trace_id,
       row_number() OVER (PARTITION BY e.trace_id ORDER BY e.executed_at, e.id) AS step,
       e.id,
       e.parent_id,
       e.session_id,
       e.executed_at,
       e.template_name AS template,
       e.version,
       e.experiment,
       e.variant,
       e.model,
       e.input_tokens,
       e.output_tokens,
       e.cost_usd,
       e.latency_ms,
       e.success,
       e.error_message
  FROM prompt_executions e
 WHERE e.trace_id IS NOT NULL;

COMMENT ON VIEW v_trace_calls IS
    'The calls of each trace in the order they were made (filter on trace_id: SELECT * FROM v_trace_calls WHERE trace_id = ... ORDER BY step).';
COMMENT ON COLUMN v_trace_calls.trace_id IS 'The trace.';
COMMENT ON COLUMN v_trace_calls.step IS 'Position of the call in its trace (1 = first), by executed_at then id.';
COMMENT ON COLUMN v_trace_calls.id IS 'The call (prompt_executions.id).';
COMMENT ON COLUMN v_trace_calls.parent_id IS 'The call that caused it, if given.';
COMMENT ON COLUMN v_trace_calls.session_id IS 'Its session, if given.';
COMMENT ON COLUMN v_trace_calls.executed_at IS 'When the call was made.';
COMMENT ON COLUMN v_trace_calls.template IS 'Template name at the time.';
COMMENT ON COLUMN v_trace_calls.version IS 'Template version.';
COMMENT ON COLUMN v_trace_calls.experiment IS 'Experiment, if any.';
COMMENT ON COLUMN v_trace_calls.variant IS 'Experiment variant.';
COMMENT ON COLUMN v_trace_calls.model IS 'Model.';
COMMENT ON COLUMN v_trace_calls.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_trace_calls.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_trace_calls.cost_usd IS 'Cost in USD (NULL: the model has no price).';
COMMENT ON COLUMN v_trace_calls.latency_ms IS 'Latency in milliseconds.';
COMMENT ON COLUMN v_trace_calls.success IS 'Whether the call succeeded.';
COMMENT ON COLUMN v_trace_calls.error_message IS 'Why it failed (redacted as stored).';

CREATE VIEW v_traces AS
SELECT e.trace_id,
       (array_agg(e.session_id ORDER BY e.executed_at, e.id) FILTER (WHERE e.session_id IS NOT NULL))[1] AS session_id,
       min(e.executed_at) AS started_at,
       max(e.executed_at + coalesce(e.latency_ms, 0) * interval '1 millisecond') AS ended_at,
       count(*) AS calls,
       count(*) FILTER (WHERE NOT e.success) AS failed_calls,
       sum(e.input_tokens)::bigint AS input_tokens,
       sum(e.output_tokens)::bigint AS output_tokens,
       sum(e.cost_usd) AS cost_usd,
       count(*) FILTER (WHERE e.cost_usd IS NULL) AS unpriced_calls,
       sum(e.latency_ms)::bigint AS latency_ms,
       (extract(epoch FROM max(e.executed_at + coalesce(e.latency_ms, 0) * interval '1 millisecond') - min(e.executed_at))
            * 1000)::bigint AS duration_ms,
       array_agg(DISTINCT e.template_name ORDER BY e.template_name) AS templates
  FROM prompt_executions e
 WHERE e.trace_id IS NOT NULL
 GROUP BY e.trace_id;

COMMENT ON VIEW v_traces IS
    'One row per trace: its calls, tokens, cost and latency in total (filter on trace_id or session_id).';
COMMENT ON COLUMN v_traces.trace_id IS 'The trace.';
COMMENT ON COLUMN v_traces.session_id IS 'The session of its first call that names one.';
COMMENT ON COLUMN v_traces.started_at IS 'When its first call was made.';
COMMENT ON COLUMN v_traces.ended_at IS 'When its last call ended (executed_at plus latency).';
COMMENT ON COLUMN v_traces.calls IS 'Calls in the trace.';
COMMENT ON COLUMN v_traces.failed_calls IS 'Of which failed.';
COMMENT ON COLUMN v_traces.input_tokens IS 'Input tokens of all its calls.';
COMMENT ON COLUMN v_traces.output_tokens IS 'Output tokens of all its calls.';
COMMENT ON COLUMN v_traces.cost_usd IS 'Cost of its priced calls in USD, exact (see unpriced_calls).';
COMMENT ON COLUMN v_traces.unpriced_calls IS 'Calls of models without a price, not in cost_usd.';
COMMENT ON COLUMN v_traces.latency_ms IS 'Sum of its calls'' latencies in milliseconds (the time spent waiting on models).';
COMMENT ON COLUMN v_traces.duration_ms IS 'Wall time from its first call to the end of its last, in milliseconds (less than latency_ms when calls overlapped).';
COMMENT ON COLUMN v_traces.templates IS 'Templates its calls used.';

CREATE VIEW v_sessions AS
SELECT e.session_id,
       count(DISTINCT e.trace_id) AS traces,
       count(*) AS calls,
       count(*) FILTER (WHERE NOT e.success) AS failed_calls,
       min(e.executed_at) AS started_at,
       max(e.executed_at + coalesce(e.latency_ms, 0) * interval '1 millisecond') AS ended_at,
       sum(e.input_tokens)::bigint AS input_tokens,
       sum(e.output_tokens)::bigint AS output_tokens,
       sum(e.cost_usd) AS cost_usd,
       count(*) FILTER (WHERE e.cost_usd IS NULL) AS unpriced_calls,
       array_agg(DISTINCT e.trace_id ORDER BY e.trace_id) FILTER (WHERE e.trace_id IS NOT NULL) AS trace_ids
  FROM prompt_executions e
 WHERE e.session_id IS NOT NULL
 GROUP BY e.session_id;

COMMENT ON VIEW v_sessions IS
    'One row per session: its traces and calls, tokens and cost (filter on session_id).';
COMMENT ON COLUMN v_sessions.session_id IS 'The session.';
COMMENT ON COLUMN v_sessions.traces IS 'Traces of the session.';
COMMENT ON COLUMN v_sessions.calls IS 'Calls of the session.';
COMMENT ON COLUMN v_sessions.failed_calls IS 'Of which failed.';
COMMENT ON COLUMN v_sessions.started_at IS 'Its first call.';
COMMENT ON COLUMN v_sessions.ended_at IS 'When its last call ended.';
COMMENT ON COLUMN v_sessions.input_tokens IS 'Input tokens of all its calls.';
COMMENT ON COLUMN v_sessions.output_tokens IS 'Output tokens of all its calls.';
COMMENT ON COLUMN v_sessions.cost_usd IS 'Cost of its priced calls in USD, exact.';
COMMENT ON COLUMN v_sessions.unpriced_calls IS 'Calls of models without a price.';
COMMENT ON COLUMN v_sessions.trace_ids IS 'Its traces, by id.';

GRANT SELECT ON v_trace_calls, v_traces, v_sessions TO pgprompt_reader;
-- As roles.sql grants every relation to administrators.
GRANT SELECT, INSERT, UPDATE, DELETE ON v_trace_calls, v_traces, v_sessions TO pgprompt_admin;

------------------------------------------------------------------------------
-- Feedback scores (tables and views below; the scoring functions in Rust).
------------------------------------------------------------------------------

CREATE  FUNCTION "prompt_score"(
	"execution" bigint, /* Option < i64 > */
	"name" TEXT, /* Option < & str > */
	"value" NUMERIC, /* Option < AnyNumeric > */
	"comment" TEXT DEFAULT NULL, /* Option < & str > */
	"source" TEXT DEFAULT 'api' /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_score_numeric_wrapper';

CREATE  FUNCTION "prompt_score"(
	"execution" bigint, /* Option < i64 > */
	"name" TEXT, /* Option < & str > */
	"value" bool, /* Option < bool > */
	"comment" TEXT DEFAULT NULL, /* Option < & str > */
	"source" TEXT DEFAULT 'api' /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_score_boolean_wrapper';

CREATE  FUNCTION "prompt_score"(
	"execution" bigint, /* Option < i64 > */
	"name" TEXT, /* Option < & str > */
	"value" TEXT, /* Option < & str > */
	"comment" TEXT DEFAULT NULL, /* Option < & str > */
	"source" TEXT DEFAULT 'api' /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_score_text_wrapper';

CREATE  FUNCTION "prompt_score_trace"(
	"trace_id" TEXT, /* Option < & str > */
	"name" TEXT, /* Option < & str > */
	"value" NUMERIC, /* Option < AnyNumeric > */
	"comment" TEXT DEFAULT NULL, /* Option < & str > */
	"source" TEXT DEFAULT 'api' /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_score_trace_numeric_wrapper';

CREATE  FUNCTION "prompt_score_trace"(
	"trace_id" TEXT, /* Option < & str > */
	"name" TEXT, /* Option < & str > */
	"value" bool, /* Option < bool > */
	"comment" TEXT DEFAULT NULL, /* Option < & str > */
	"source" TEXT DEFAULT 'api' /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_score_trace_boolean_wrapper';

CREATE  FUNCTION "prompt_score_trace"(
	"trace_id" TEXT, /* Option < & str > */
	"name" TEXT, /* Option < & str > */
	"value" TEXT, /* Option < & str > */
	"comment" TEXT DEFAULT NULL, /* Option < & str > */
	"source" TEXT DEFAULT 'api' /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_score_trace_text_wrapper';

-- Feedback scores: what a call or a trace was worth, known later.
--
-- The signal of a prompt arrives after the call: a thumbs-up, a resolved
-- ticket, an evaluator's grade. prompt_score attaches one to a logged call
-- (or prompt_score_trace to a trace) at any time. Score names are declared
-- first (prompt_score_define), so a typo or a value out of range is an
-- error rather than a new series.
--
-- Scores are immutable: a correction is a new score that supersedes the
-- current one (same call or trace, same name), and history keeps both.
-- Each score records what it counts for (counted_for: the call's template
-- version and experiment variant; for a trace, every version and variant
-- its calls used), so a correction takes back exactly what the score it
-- supersedes added.
--
-- Statistics are kept as the call statistics are (see executions.sql): a
-- score appends deltas to an unindexed table, folded now and then into an
-- hourly rollup, and the views read both, so they are exact and no two
-- scorers wait on one row.

------------------------------------------------------------------------------
-- Definitions
------------------------------------------------------------------------------

CREATE TABLE prompt_score_definitions (
    name        text PRIMARY KEY
                CONSTRAINT prompt_score_definitions_name_check CHECK (name ~ '^[A-Za-z][A-Za-z0-9_.-]{0,62}$'),
    kind        text NOT NULL CHECK (kind IN ('numeric', 'boolean', 'categorical')),
    min_value   numeric,
    max_value   numeric,
    categories  text[],
    description text,
    higher_is_better boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT session_user,
    CONSTRAINT prompt_score_definitions_range CHECK (kind = 'numeric' OR (min_value IS NULL AND max_value IS NULL)),
    CONSTRAINT prompt_score_definitions_bounds CHECK (min_value <= max_value),
    CONSTRAINT prompt_score_definitions_categories CHECK ((kind = 'categorical') = (categories IS NOT NULL))
);

COMMENT ON TABLE prompt_score_definitions IS
    'Declared score names (prompt_score_define): what kind of value each takes and which values are allowed.';
COMMENT ON COLUMN prompt_score_definitions.name IS 'Score name (a letter, then letters, digits, _ . -; at most 63).';
COMMENT ON COLUMN prompt_score_definitions.kind IS 'numeric (a rating, an eval score), boolean (thumbs, resolved) or categorical.';
COMMENT ON COLUMN prompt_score_definitions.min_value IS 'Numeric scores: the least value allowed (NULL: no bound).';
COMMENT ON COLUMN prompt_score_definitions.max_value IS 'Numeric scores: the greatest value allowed (NULL: no bound).';
COMMENT ON COLUMN prompt_score_definitions.categories IS 'Categorical scores: the values allowed.';
COMMENT ON COLUMN prompt_score_definitions.description IS 'What the score means, for people reading the results.';
COMMENT ON COLUMN prompt_score_definitions.higher_is_better IS 'Which way is better when experiments compare it (boolean scores: true is better when set).';
COMMENT ON COLUMN prompt_score_definitions.created_at IS 'When it was first defined.';
COMMENT ON COLUMN prompt_score_definitions.created_by IS 'Session user who defined it.';

-- Sessions cache declarations (prompt_score): a change reaches them all at commit.
CREATE TRIGGER trigger_invalidate_score_definitions
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prompt_score_definitions
    FOR EACH STATEMENT EXECUTE FUNCTION _invalidate_caches_trigger('pgprompt.prompt_score_definitions');
COMMENT ON TRIGGER trigger_invalidate_score_definitions ON prompt_score_definitions IS
    'Drops the sessions'' cached score declarations at commit.';

------------------------------------------------------------------------------
-- Scores
------------------------------------------------------------------------------

CREATE SEQUENCE prompt_scores_id_seq;
COMMENT ON SEQUENCE prompt_scores_id_seq IS 'Ids of prompt_scores.';

-- No foreign keys: a key check locks the referenced row (every scorer of a
-- name would share one definition row), and calls live in partitions that
-- are dropped whole. prompt_score checks both; definitions with scores
-- cannot be dropped (_score_definitions_keep).
CREATE TABLE prompt_scores (
    id            bigint PRIMARY KEY DEFAULT nextval('prompt_scores_id_seq'),
    name          text NOT NULL,
    execution_id  bigint,
    trace_id      text,
    numeric_value numeric,
    boolean_value boolean,
    category      text,
    comment       text,
    source        text NOT NULL CHECK (btrim(source) <> '' AND length(source) <= 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL DEFAULT session_user,
    supersedes    bigint,
    counted_for   jsonb NOT NULL CHECK (jsonb_typeof(counted_for) = 'array'),
    CONSTRAINT prompt_scores_target CHECK ((execution_id IS NULL) <> (trace_id IS NULL)),
    CONSTRAINT prompt_scores_one_value CHECK (num_nonnulls(numeric_value, boolean_value, category) = 1)
);

ALTER SEQUENCE prompt_scores_id_seq OWNED BY prompt_scores.id;

-- A call's (or trace's) scores of one name form one chain: the first
-- supersedes nothing (0 here), each correction the score before it, and a
-- correction's id is above the id it supersedes. These unique indexes keep
-- it one chain when scorers race (two scores superseding the same one, or
-- two firsts: the later insert finds the conflict, reads the chain again
-- and supersedes the winner), with no lock held per scored call, so a
-- transaction may score any number of calls. Read backwards, they give the
-- score in force without a sort.
CREATE UNIQUE INDEX prompt_scores_execution ON prompt_scores (execution_id, name, coalesce(supersedes, 0))
    WHERE execution_id IS NOT NULL;
CREATE UNIQUE INDEX prompt_scores_trace ON prompt_scores (trace_id, name, coalesce(supersedes, 0))
    WHERE trace_id IS NOT NULL;
COMMENT ON INDEX prompt_scores_execution IS 'A call''s scores by name, one chain of corrections; the last is the score in force.';
COMMENT ON INDEX prompt_scores_trace IS 'A trace''s scores by name, one chain of corrections; the last is the score in force.';
-- Which score corrects a given one (prompt_scores_current). Not declared
-- unique: the chain's indexes above already make it so, and a second unique
-- index would be checked before them and fail a racing scorer instead of
-- letting them read again.
CREATE INDEX prompt_scores_supersedes ON prompt_scores (supersedes) WHERE supersedes IS NOT NULL;
COMMENT ON INDEX prompt_scores_supersedes IS 'The correction of each corrected score (unique by the chain''s indexes).';

COMMENT ON TABLE prompt_scores IS
    'Feedback on logged calls and traces (prompt_score, prompt_score_trace), immutable: a correction is a new row that supersedes the current one. prompt_scores_current shows the scores in force.';
COMMENT ON COLUMN prompt_scores.id IS 'Order of scoring.';
COMMENT ON COLUMN prompt_scores.name IS 'The score (prompt_score_definitions.name).';
COMMENT ON COLUMN prompt_scores.execution_id IS 'The scored call (prompt_executions.id), or NULL for a trace''s score.';
COMMENT ON COLUMN prompt_scores.trace_id IS 'The scored trace, or NULL for a call''s score.';
COMMENT ON COLUMN prompt_scores.numeric_value IS 'Value of a numeric score.';
COMMENT ON COLUMN prompt_scores.boolean_value IS 'Value of a boolean score.';
COMMENT ON COLUMN prompt_scores.category IS 'Value of a categorical score.';
COMMENT ON COLUMN prompt_scores.comment IS 'Why, in words (a reviewer''s note, an evaluator''s reasoning).';
COMMENT ON COLUMN prompt_scores.source IS 'Where the score came from: api (default), a user, an annotator, an evaluator...';
COMMENT ON COLUMN prompt_scores.created_at IS 'When it was given.';
COMMENT ON COLUMN prompt_scores.created_by IS 'Session user who gave it.';
COMMENT ON COLUMN prompt_scores.supersedes IS 'The score this one corrects (same call or trace and name), if any.';
COMMENT ON COLUMN prompt_scores.counted_for IS
    'What the score counts for in the statistics: objects of hour, template_id, template_name, version, experiment and variant (the scored call''s; for a trace, each version and variant its calls used).';

-- Scores are history: nothing changes or goes, or the statistics would lie.
CREATE FUNCTION _scores_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'scores cannot be changed or removed'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'To correct a score, score again: the new score supersedes it (prompt_score).';
END
$$;

COMMENT ON FUNCTION _scores_immutable() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE of prompt_scores (55000).';

CREATE TRIGGER trigger_scores_immutable
    BEFORE UPDATE OR DELETE ON prompt_scores
    FOR EACH ROW EXECUTE FUNCTION _scores_immutable();
COMMENT ON TRIGGER trigger_scores_immutable ON prompt_scores IS 'Scores are immutable.';

CREATE TRIGGER trigger_scores_no_truncate
    BEFORE TRUNCATE ON prompt_scores
    FOR EACH STATEMENT EXECUTE FUNCTION _scores_immutable();
COMMENT ON TRIGGER trigger_scores_no_truncate ON prompt_scores IS 'Scores are immutable.';

CREATE VIEW prompt_scores_current AS
SELECT s.id, s.name, s.execution_id, s.trace_id, s.numeric_value, s.boolean_value, s.category,
       s.comment, s.source, s.created_at, s.created_by, s.supersedes
  FROM prompt_scores s
 WHERE NOT EXISTS (SELECT 1 FROM prompt_scores n WHERE n.supersedes = s.id);

COMMENT ON VIEW prompt_scores_current IS 'The scores in force: those no later score supersedes.';
COMMENT ON COLUMN prompt_scores_current.id IS 'The score.';
COMMENT ON COLUMN prompt_scores_current.name IS 'Its name.';
COMMENT ON COLUMN prompt_scores_current.execution_id IS 'The scored call, or NULL.';
COMMENT ON COLUMN prompt_scores_current.trace_id IS 'The scored trace, or NULL.';
COMMENT ON COLUMN prompt_scores_current.numeric_value IS 'Value of a numeric score.';
COMMENT ON COLUMN prompt_scores_current.boolean_value IS 'Value of a boolean score.';
COMMENT ON COLUMN prompt_scores_current.category IS 'Value of a categorical score.';
COMMENT ON COLUMN prompt_scores_current.comment IS 'Why.';
COMMENT ON COLUMN prompt_scores_current.source IS 'Where it came from.';
COMMENT ON COLUMN prompt_scores_current.created_at IS 'When it was given.';
COMMENT ON COLUMN prompt_scores_current.created_by IS 'Who gave it.';
COMMENT ON COLUMN prompt_scores_current.supersedes IS 'The score it corrected, if any.';

------------------------------------------------------------------------------
-- Statistics
------------------------------------------------------------------------------

-- Deltas, appended by prompt_score and folded by prompt_score_stats_compact.
CREATE TABLE prompt_score_stats_pending (
    hour              timestamptz NOT NULL,
    template_id       bigint NOT NULL,
    template_name     text NOT NULL,
    version           integer NOT NULL,
    experiment        text,
    variant           text,
    score             text NOT NULL,
    category          text,
    scores            bigint NOT NULL,
    value_sum         numeric NOT NULL,
    value_sum_squares numeric NOT NULL
);

ALTER TABLE prompt_score_stats_pending SET (autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_scale_factor = 0,
                                            autovacuum_vacuum_cost_delay = 0);

CREATE TABLE prompt_score_stats_hourly (
    hour              timestamptz NOT NULL,
    template_id       bigint NOT NULL,
    template_name     text NOT NULL,
    version           integer NOT NULL,
    experiment        text,
    variant           text,
    score             text NOT NULL,
    category          text,
    scores            bigint NOT NULL,
    value_sum         numeric NOT NULL,
    value_sum_squares numeric NOT NULL,
    CONSTRAINT prompt_score_stats_hourly_key UNIQUE NULLS NOT DISTINCT (hour, template_id, version, experiment, variant, score, category)
);

COMMENT ON TABLE prompt_score_stats_pending IS
    'Score statistics not yet folded into prompt_score_stats_hourly: one row per score and group it counts for (negative when a correction takes one back). Read prompt_score_stats.';
COMMENT ON TABLE prompt_score_stats_hourly IS
    'Folded score statistics per hour (UTC, of the scored calls) and score: per template version (experiment NULL) and per experiment variant. Read prompt_score_stats, which adds the pending deltas.';

CREATE VIEW prompt_score_stats AS
SELECT hour, template_id, max(template_name) AS template_name, version, experiment, variant, score, category,
       sum(scores)::bigint AS scores, sum(value_sum) AS value_sum, sum(value_sum_squares) AS value_sum_squares
  FROM (SELECT hour, template_id, template_name, version, experiment, variant, score, category,
               scores, value_sum, value_sum_squares
          FROM prompt_score_stats_hourly
        UNION ALL
        SELECT hour, template_id, template_name, version, experiment, variant, score, category,
               scores, value_sum, value_sum_squares
          FROM prompt_score_stats_pending) s
 GROUP BY hour, template_id, version, experiment, variant, score, category;

COMMENT ON VIEW prompt_score_stats IS
    'Exact score statistics per hour (UTC, of the scored calls), the rollup plus pending deltas: rows without an experiment are per template version, rows with one per experiment variant. Only scores in force count.';

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['prompt_score_stats_pending', 'prompt_score_stats_hourly', 'prompt_score_stats'] LOOP
        EXECUTE format($c$
            COMMENT ON COLUMN %1$I.hour IS 'Hour (UTC) of the scored calls.';
            COMMENT ON COLUMN %1$I.template_id IS 'Template of the scored calls (prompt_templates.id).';
            COMMENT ON COLUMN %1$I.template_name IS 'Its name when the call was logged.';
            COMMENT ON COLUMN %1$I.version IS 'Template version.';
            COMMENT ON COLUMN %1$I.experiment IS 'Experiment (NULL in per-version rows).';
            COMMENT ON COLUMN %1$I.variant IS 'Experiment variant.';
            COMMENT ON COLUMN %1$I.score IS 'Score name.';
            COMMENT ON COLUMN %1$I.category IS 'Categorical scores: the category counted (NULL for other kinds).';
            COMMENT ON COLUMN %1$I.scores IS 'Scores in force.';
            COMMENT ON COLUMN %1$I.value_sum IS 'Sum of their values (boolean: true counts 1, so this is the trues; categorical: 0).';
            COMMENT ON COLUMN %1$I.value_sum_squares IS 'Sum of their squares (for variances).';
        $c$, r);
    END LOOP;
END
$$;

-- Folds pending deltas into the rollup; never waits (another folder: 0).
CREATE FUNCTION prompt_score_stats_compact()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock('pgprompt.prompt_score_stats_pending'::regclass::oid::integer, 0) THEN
        RETURN 0;
    END IF;
    WITH moved AS (
        DELETE FROM prompt_score_stats_pending RETURNING *
    ), folded AS (
        INSERT INTO prompt_score_stats_hourly AS s
        SELECT hour, template_id, max(template_name), version, experiment, variant, score, category,
               sum(scores), sum(value_sum), sum(value_sum_squares)
          FROM moved
         GROUP BY hour, template_id, version, experiment, variant, score, category
         -- One order for every folder: no two can deadlock on rollup rows.
         ORDER BY hour, template_id, version, experiment, variant, score, category
        ON CONFLICT ON CONSTRAINT prompt_score_stats_hourly_key DO UPDATE SET
               template_name = excluded.template_name,
               scores = s.scores + excluded.scores,
               value_sum = s.value_sum + excluded.value_sum,
               value_sum_squares = s.value_sum_squares + excluded.value_sum_squares
    )
    SELECT count(*) INTO v_folded FROM moved;
    RETURN v_folded;
END
$$;

COMMENT ON FUNCTION prompt_score_stats_compact() IS
    'Folds pending score deltas into prompt_score_stats_hourly and returns how many it folded (0 when another session is folding). prompt_score calls it now and then; cron may too. prompt_score_stats reads the same before and after.';

------------------------------------------------------------------------------
-- Defining and scoring
------------------------------------------------------------------------------

-- Whether any score of this name was ever counted (from the rollups: cheap).
CREATE FUNCTION _score_used(p_name text)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM prompt_score_stats_hourly WHERE score = p_name)
        OR EXISTS (SELECT 1 FROM prompt_score_stats_pending WHERE score = p_name)
$$;

COMMENT ON FUNCTION _score_used(text) IS 'Internal: whether scores of this name exist.';

CREATE FUNCTION prompt_score_define(name text, kind text, min_value numeric DEFAULT NULL, max_value numeric DEFAULT NULL,
                                    categories text[] DEFAULT NULL, description text DEFAULT NULL,
                                    higher_is_better boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_old prompt_score_definitions;
BEGIN
    PERFORM _require(name, 'name');
    PERFORM _require(kind, 'kind');
    PERFORM _require(higher_is_better, 'higher_is_better');
    IF name !~ '^[A-Za-z][A-Za-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid score name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A letter, then letters, digits, _ . or -; at most 63 characters.';
    END IF;
    IF kind NOT IN ('numeric', 'boolean', 'categorical') THEN
        RAISE EXCEPTION 'unknown score kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value', HINT = 'numeric, boolean or categorical.';
    END IF;
    IF kind <> 'numeric' AND num_nonnulls(min_value, max_value) > 0 THEN
        RAISE EXCEPTION 'only numeric scores take min_value and max_value (score "%" is %)', name, kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_value IN ('NaN', 'Infinity', '-Infinity') OR max_value IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'min_value and max_value must be finite numbers'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave a bound NULL for none.';
    END IF;
    IF min_value > max_value THEN
        RAISE EXCEPTION 'min_value % is above max_value %', min_value, max_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (kind = 'categorical') <> (categories IS NOT NULL) THEN
        RAISE EXCEPTION '%', CASE WHEN kind = 'categorical' THEN format('categorical score "%s" needs its categories', name)
                                  ELSE format('only categorical scores take categories (score "%s" is %s)', name, kind) END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kind = 'categorical' AND (cardinality(categories) = 0 OR cardinality(categories) > 100
                                 OR EXISTS (SELECT 1 FROM unnest(categories) c WHERE c IS NULL OR btrim(c) = '')
                                 OR (SELECT count(DISTINCT c) FROM unnest(categories) c) <> cardinality(categories)) THEN
        RAISE EXCEPTION 'categories must be 1 to 100 distinct, non-empty texts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO v_old FROM prompt_score_definitions d WHERE d.name = prompt_score_define.name FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO prompt_score_definitions (name, kind, min_value, max_value, categories, description, higher_is_better)
        VALUES (name, kind, min_value, max_value, categories, description, higher_is_better);
        RETURN;
    END IF;
    -- A definition in use may change only so that every score given stays valid.
    IF _score_used(name) AND (
           kind <> v_old.kind
           OR min_value IS DISTINCT FROM v_old.min_value AND (min_value > v_old.min_value OR min_value IS NOT NULL AND v_old.min_value IS NULL)
           OR max_value IS DISTINCT FROM v_old.max_value AND (max_value < v_old.max_value OR max_value IS NOT NULL AND v_old.max_value IS NULL)
           OR NOT (categories @> v_old.categories)) THEN
        RAISE EXCEPTION 'score "%" has scores: its kind cannot change, its range only widen, its categories only grow', name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Defined as %s%s.', v_old.kind,
                                  CASE v_old.kind WHEN 'numeric' THEN format(' from %s to %s', coalesce(v_old.min_value::text, '-∞'), coalesce(v_old.max_value::text, '∞'))
                                                  WHEN 'categorical' THEN ' of ' || array_to_string(v_old.categories, ', ') ELSE '' END),
                  HINT = 'Define a score of another name.';
    END IF;
    UPDATE prompt_score_definitions d
       SET kind = prompt_score_define.kind, min_value = prompt_score_define.min_value, max_value = prompt_score_define.max_value,
           categories = prompt_score_define.categories, description = prompt_score_define.description,
           higher_is_better = prompt_score_define.higher_is_better
     WHERE d.name = prompt_score_define.name;
END
$$;

COMMENT ON FUNCTION prompt_score_define(text, text, numeric, numeric, text[], text, boolean) IS
$$Declares a score name, or changes its declaration: kind numeric (optionally bounded by min_value and max_value, inclusive), boolean, or categorical (with its categories), a description, and which way is better when experiments compare it (higher_is_better). Once scores of the name exist, its kind cannot change, its range can only widen and its categories only grow.
Errors: 22004 NULL name or kind, 22023 a name that is not an identifier, an unknown kind, bounds or categories that do not fit the kind, bounds not finite or crossed, categories empty, repeated or more than 100; 55000 a change that would make given scores invalid.$$;

-- Definitions with scores stay, or the scores would have no meaning.
CREATE FUNCTION _score_definitions_keep()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name = OLD.name THEN
        RETURN NEW;
    END IF;
    IF _score_used(OLD.name) THEN
        RAISE EXCEPTION 'score "%" has scores and cannot be %', OLD.name, CASE TG_OP WHEN 'DELETE' THEN 'dropped' ELSE 'renamed' END
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

COMMENT ON FUNCTION _score_definitions_keep() IS 'Trigger: refuses to drop or rename a score definition that has scores (55000).';

CREATE TRIGGER trigger_score_definitions_keep
    BEFORE UPDATE OR DELETE ON prompt_score_definitions
    FOR EACH ROW EXECUTE FUNCTION _score_definitions_keep();
COMMENT ON TRIGGER trigger_score_definitions_keep ON prompt_score_definitions IS 'Definitions with scores stay.';

-- prompt_score and prompt_score_trace are written in Rust (pg/scores.rs):
-- they check the value against the declaration, find what the score
-- counts for and the score in force, insert the score superseding it (if
-- another scorer got there first, the unique index says so and they read
-- again) and append the deltas, each a kept plan. They run as the owner
-- (roles.sql), so applications score without writing these tables.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['numeric', 'boolean', 'text'] LOOP
        EXECUTE format($c$COMMENT ON FUNCTION prompt_score(bigint, text, %1$s, text, text) IS %2$L$c$, t,
$t$Scores a logged call (execution: the id prompt_log_execution returned) and returns the score's id. value is a number, true or false, or a text (a category, or a number or boolean written out), as the declared score name wants; comment says why, source who or what gave it. Scoring the same call and name again records a correction that supersedes the score in force (history keeps both; statistics count the new one only). Any role in pgprompt_app may score.
Errors: 22004 NULL execution, name, value or source; 22023 a value of the wrong kind, out of the declared range or not one of the categories, an empty or overlong source; 42704 an undeclared score name, a call that is not logged (or whose month was purged); 40001 under REPEATABLE READ or SERIALIZABLE, when a concurrent score of the same call and name got ahead (retry the transaction).$t$);
        EXECUTE format($c$COMMENT ON FUNCTION prompt_score_trace(text, text, %1$s, text, text) IS %2$L$c$, t,
$t$Scores a trace (every call logged with that trace_id) and returns the score's id: it counts once for each template version and experiment variant the trace's calls used. Otherwise as prompt_score.
Errors: 22004 NULL trace_id, name, value or source; 22023 a value of the wrong kind, out of range or not a category; 42704 an undeclared score name, a trace without logged calls; 40001 as prompt_score.$t$);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

-- Per group and score: count, sum and sum of squares, categories folded
-- into one object. The mean of a boolean score is its rate of true.
CREATE VIEW v_template_scores AS
WITH g AS (
    SELECT template_id, max(template_name) AS template_name, version, score, category,
           sum(scores) AS n, sum(value_sum) AS s, sum(value_sum_squares) AS ss
      FROM prompt_score_stats
     WHERE experiment IS NULL
     GROUP BY template_id, version, score, category
)
SELECT max(g.template_name) AS template, g.template_id, g.version, g.score, d.kind,
       sum(g.n)::bigint AS scores,
       CASE WHEN d.kind <> 'categorical' THEN (sum(g.s) / nullif(sum(g.n), 0))::float8 END AS mean,
       CASE WHEN d.kind = 'numeric' AND sum(g.n) > 1
            THEN sqrt(greatest(sum(g.ss) - sum(g.s) * sum(g.s) / sum(g.n), 0) / (sum(g.n) - 1))::float8 END AS stddev,
       jsonb_object_agg(g.category, g.n ORDER BY g.category) FILTER (WHERE g.category IS NOT NULL AND g.n <> 0) AS categories
  FROM g
  JOIN prompt_score_definitions d ON d.name = g.score
 GROUP BY g.template_id, g.version, g.score, d.kind;

COMMENT ON VIEW v_template_scores IS
    'Scores in force per template version and score name, all time: how many, their mean (for boolean scores the rate of true) and standard deviation, or the count per category.';
COMMENT ON COLUMN v_template_scores.template IS 'Template name.';
COMMENT ON COLUMN v_template_scores.template_id IS 'prompt_templates.id.';
COMMENT ON COLUMN v_template_scores.version IS 'Template version.';
COMMENT ON COLUMN v_template_scores.score IS 'Score name.';
COMMENT ON COLUMN v_template_scores.kind IS 'numeric, boolean or categorical.';
COMMENT ON COLUMN v_template_scores.scores IS 'Scores in force.';
COMMENT ON COLUMN v_template_scores.mean IS 'Mean value (boolean: the share of true); NULL for categorical scores.';
COMMENT ON COLUMN v_template_scores.stddev IS 'Sample standard deviation of numeric scores (NULL under 2 scores).';
COMMENT ON COLUMN v_template_scores.categories IS 'Categorical scores: scores per category.';

CREATE VIEW v_experiment_scores AS
WITH g AS (
    SELECT experiment, variant, max(template_name) AS template_name, version, score, category,
           sum(scores) AS n, sum(value_sum) AS s, sum(value_sum_squares) AS ss
      FROM prompt_score_stats
     WHERE experiment IS NOT NULL
     GROUP BY experiment, variant, version, score, category
)
SELECT g.experiment, g.variant, max(g.template_name) AS template, g.version, g.score, d.kind,
       sum(g.n)::bigint AS scores,
       CASE WHEN d.kind <> 'categorical' THEN (sum(g.s) / nullif(sum(g.n), 0))::float8 END AS mean,
       CASE WHEN d.kind = 'numeric' AND sum(g.n) > 1
            THEN sqrt(greatest(sum(g.ss) - sum(g.s) * sum(g.s) / sum(g.n), 0) / (sum(g.n) - 1))::float8 END AS stddev,
       jsonb_object_agg(g.category, g.n ORDER BY g.category) FILTER (WHERE g.category IS NOT NULL AND g.n <> 0) AS categories
  FROM g
  JOIN prompt_score_definitions d ON d.name = g.score
 GROUP BY g.experiment, g.variant, g.version, g.score, d.kind;

COMMENT ON VIEW v_experiment_scores IS
    'Scores in force per experiment variant and score name: how many, their mean (boolean: the share of true) and standard deviation, or the count per category.';
COMMENT ON COLUMN v_experiment_scores.experiment IS 'Experiment.';
COMMENT ON COLUMN v_experiment_scores.variant IS 'Variant.';
COMMENT ON COLUMN v_experiment_scores.template IS 'Template name.';
COMMENT ON COLUMN v_experiment_scores.version IS 'The variant''s version.';
COMMENT ON COLUMN v_experiment_scores.score IS 'Score name.';
COMMENT ON COLUMN v_experiment_scores.kind IS 'numeric, boolean or categorical.';
COMMENT ON COLUMN v_experiment_scores.scores IS 'Scores in force.';
COMMENT ON COLUMN v_experiment_scores.mean IS 'Mean value (boolean: the share of true); NULL for categorical scores.';
COMMENT ON COLUMN v_experiment_scores.stddev IS 'Sample standard deviation of numeric scores (NULL under 2 scores).';
COMMENT ON COLUMN v_experiment_scores.categories IS 'Categorical scores: scores per category.';

SELECT pg_catalog.pg_extension_config_dump('prompt_score_definitions', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_scores', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_scores_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_score_stats_pending', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_score_stats_hourly', '');

CREATE OR REPLACE FUNCTION _stats_compact_quietly()
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        PERFORM prompt_stats_compact();
        PERFORM prompt_score_stats_compact();  -- (scores.sql)
    END IF;
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;

COMMENT ON FUNCTION _stats_compact_quietly() IS
    'Internal: prompt_stats_compact and prompt_score_stats_compact, now and then from the statistics triggers and scoring, in READ COMMITTED only, never raising.';

DO $$
DECLARE
    f regprocedure;
BEGIN
    -- As the owner, with no search_path setting: they resolve no name but
    -- through SQL they run with the path pinned (see roles.sql).
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'pgprompt'::regnamespace AND p.proname IN ('prompt_score', 'prompt_score_trace') LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
    END LOOP;
END
$$;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgprompt FROM PUBLIC;
GRANT SELECT ON v_template_scores, v_experiment_scores, prompt_score_stats TO pgprompt_reader;
GRANT SELECT ON prompt_score_definitions TO pgprompt_app;
GRANT EXECUTE ON FUNCTION prompt_score(bigint, text, numeric, text, text), prompt_score(bigint, text, boolean, text, text),
                          prompt_score(bigint, text, text, text, text), prompt_score_trace(text, text, numeric, text, text),
                          prompt_score_trace(text, text, boolean, text, text), prompt_score_trace(text, text, text, text, text)
   TO pgprompt_app;
GRANT EXECUTE ON FUNCTION prompt_score_define(text, text, numeric, numeric, text[], text, boolean), prompt_score_stats_compact(),
                          _score_used(text), _scores_immutable(), _score_definitions_keep(),
                          prompt_score(bigint, text, numeric, text, text), prompt_score(bigint, text, boolean, text, text),
                          prompt_score(bigint, text, text, text, text), prompt_score_trace(text, text, numeric, text, text),
                          prompt_score_trace(text, text, boolean, text, text), prompt_score_trace(text, text, text, text, text)
   TO pgprompt_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON prompt_score_definitions, prompt_scores_current, prompt_score_stats_pending,
                prompt_score_stats_hourly, prompt_score_stats, v_template_scores, v_experiment_scores TO pgprompt_admin;
-- Scores are written by prompt_score alone, which keeps their statistics.
GRANT SELECT ON prompt_scores TO pgprompt_admin;
GRANT USAGE, SELECT ON prompt_scores_id_seq TO pgprompt_admin;

------------------------------------------------------------------------------
-- Sums of squares in the call statistics (experiments compare means).
------------------------------------------------------------------------------

ALTER TABLE prompt_stats_pending
    ADD COLUMN latency_sum_squares numeric NOT NULL DEFAULT 0,
    ADD COLUMN cost_sum_squares numeric NOT NULL DEFAULT 0;
ALTER TABLE prompt_stats_hourly
    ADD COLUMN latency_sum_squares numeric NOT NULL DEFAULT 0,
    ADD COLUMN cost_sum_squares numeric NOT NULL DEFAULT 0;
COMMENT ON COLUMN prompt_stats_pending.latency_sum_squares IS 'Sum of the squares of their latencies.';
COMMENT ON COLUMN prompt_stats_pending.cost_sum_squares IS 'Sum of the squares of their costs.';

CREATE OR REPLACE FUNCTION prompt_stats_compact()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock('pgprompt.prompt_stats_pending'::regclass::oid::integer, 0) THEN
        RETURN 0;
    END IF;
    WITH moved AS (
        DELETE FROM prompt_stats_pending RETURNING *
    ), buckets AS (
        -- Per latency bucket first, in plain SQL: the histograms are then
        -- built from a few rows per group rather than one per delta (calling
        -- _hist_add per delta was half the cost of folding).
        SELECT hour, template_id, max(template_name) AS template_name, version, experiment, variant, latency_bucket,
               sum(executions)::bigint AS executions, sum(successes)::bigint AS successes,
               sum(latency_sum_ms)::bigint AS latency_sum_ms, sum(input_tokens)::bigint AS input_tokens,
               sum(output_tokens)::bigint AS output_tokens, sum(cached_input_tokens)::bigint AS cached_input_tokens,
               sum(cost_usd) AS cost_usd, sum(priced_executions)::bigint AS priced_executions,
               max(last_executed_at) AS last_executed_at,
               sum(latency_sum_squares) AS latency_sum_squares, sum(cost_sum_squares) AS cost_sum_squares
          FROM moved
         GROUP BY hour, template_id, version, experiment, variant, latency_bucket
    ), folded AS (
        INSERT INTO prompt_stats_hourly AS s
        SELECT hour, template_id, max(template_name), version, experiment, variant,
               sum(executions), sum(successes),
               coalesce(sum(executions) FILTER (WHERE latency_bucket IS NOT NULL), 0), sum(latency_sum_ms),
               _hist_from_buckets(latency_bucket, executions),
               sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(cost_usd), sum(priced_executions),
               max(last_executed_at), sum(latency_sum_squares), sum(cost_sum_squares)
          FROM buckets
         GROUP BY hour, template_id, version, experiment, variant
         -- One order for every folder: no two can deadlock on rollup rows.
         ORDER BY hour, template_id, version, experiment, variant
        ON CONFLICT ON CONSTRAINT prompt_stats_hourly_key DO UPDATE SET
               template_name = excluded.template_name,
               executions = s.executions + excluded.executions,
               successes = s.successes + excluded.successes,
               latency_count = s.latency_count + excluded.latency_count,
               latency_sum_ms = s.latency_sum_ms + excluded.latency_sum_ms,
               latency_histogram = _hist_merge(s.latency_histogram, excluded.latency_histogram),
               input_tokens = s.input_tokens + excluded.input_tokens,
               output_tokens = s.output_tokens + excluded.output_tokens,
               cached_input_tokens = s.cached_input_tokens + excluded.cached_input_tokens,
               cost_usd = s.cost_usd + excluded.cost_usd,
               priced_executions = s.priced_executions + excluded.priced_executions,
               last_executed_at = greatest(s.last_executed_at, excluded.last_executed_at),
               latency_sum_squares = s.latency_sum_squares + excluded.latency_sum_squares,
               cost_sum_squares = s.cost_sum_squares + excluded.cost_sum_squares
    )
    SELECT count(*) INTO v_folded FROM moved;
    RETURN v_folded;
END
$$;

ALTER FUNCTION prompt_stats_compact() SECURITY DEFINER;

-- The hours logged so far: fold what is pending, then add the squares of
-- the calls still kept (hours of purged months keep 0).
SELECT pg_advisory_xact_lock('pgprompt.prompt_stats_pending'::regclass::oid::integer, 0);
SELECT prompt_stats_compact();
UPDATE prompt_stats_hourly h
   SET latency_sum_squares = x.latency_sum_squares, cost_sum_squares = x.cost_sum_squares
  FROM (SELECT date_trunc('hour', e.executed_at, 'UTC') AS hour, e.template_id, e.version, g.experiment, g.variant,
               coalesce(sum(e.latency_ms::numeric * e.latency_ms), 0) AS latency_sum_squares,
               coalesce(sum(e.cost_usd * e.cost_usd), 0) AS cost_sum_squares
          FROM prompt_executions e
         -- Each call counts for its version, and for its variant if any.
         CROSS JOIN LATERAL (SELECT NULL::text, NULL::text
                             UNION ALL SELECT e.experiment, e.variant WHERE e.experiment IS NOT NULL) AS g (experiment, variant)
         GROUP BY 1, 2, 3, 4, 5) x
 WHERE (h.hour, h.template_id, h.version) = (x.hour, x.template_id, x.version)
   AND h.experiment IS NOT DISTINCT FROM x.experiment AND h.variant IS NOT DISTINCT FROM x.variant;

CREATE OR REPLACE VIEW prompt_stats_rows AS
SELECT hour, template_id, template_name, version, experiment, variant, executions, successes,
       latency_count, latency_sum_ms, latency_histogram,
       input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions, last_executed_at,
       latency_sum_squares, cost_sum_squares
  FROM prompt_stats_hourly
UNION ALL
SELECT hour, template_id, template_name, version, experiment, variant, executions, successes,
       CASE WHEN latency_bucket IS NULL THEN 0 ELSE executions END, latency_sum_ms, _hist_of(latency_bucket, executions),
       input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions, last_executed_at,
       latency_sum_squares, cost_sum_squares
  FROM prompt_stats_pending;

COMMENT ON VIEW prompt_stats_rows IS
    'The hourly rollup and the pending deltas as rows of one shape, not yet grouped: what the analytics views aggregate. Rows without an experiment count template calls; rows with one count the same calls again per experiment variant.';

CREATE OR REPLACE VIEW prompt_stats AS
SELECT hour, template_id, max(template_name) AS template_name, version, experiment, variant,
       sum(executions)::bigint AS executions,
       sum(successes)::bigint AS successes,
       sum(latency_count)::bigint AS latency_count,
       sum(latency_sum_ms)::bigint AS latency_sum_ms,
       prompt_latency_histogram(latency_histogram) AS latency_histogram,
       sum(input_tokens)::bigint AS input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(cached_input_tokens)::bigint AS cached_input_tokens,
       sum(cost_usd) AS cost_usd,
       sum(priced_executions)::bigint AS priced_executions,
       max(last_executed_at) AS last_executed_at,
       sum(latency_sum_squares) AS latency_sum_squares,
       sum(cost_sum_squares) AS cost_sum_squares
  FROM prompt_stats_rows
 GROUP BY hour, template_id, version, experiment, variant;

CREATE OR REPLACE VIEW prompt_template_stats AS
SELECT hour, template_id, template_name, version, executions, successes, latency_count, latency_sum_ms,
       latency_histogram, input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions, last_executed_at,
       latency_sum_squares, cost_sum_squares
  FROM prompt_stats WHERE experiment IS NULL;

CREATE OR REPLACE VIEW ab_test_stats AS
SELECT hour, experiment, variant, template_id, template_name, version, executions, successes, latency_count,
       latency_sum_ms, latency_histogram, input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions,
       last_executed_at, latency_sum_squares, cost_sum_squares
  FROM prompt_stats WHERE experiment IS NOT NULL;

-- The same columns mean the same in the rollup and the four views.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['prompt_stats_hourly', 'prompt_stats_rows', 'prompt_stats', 'prompt_template_stats', 'ab_test_stats'] LOOP
        EXECUTE format($c$
            COMMENT ON COLUMN %1$I.hour IS 'Hour (UTC) of the calls.';
            COMMENT ON COLUMN %1$I.template_id IS 'Template (prompt_templates.id; kept when the template is deleted).';
            COMMENT ON COLUMN %1$I.template_name IS 'Its name when last logged.';
            COMMENT ON COLUMN %1$I.version IS 'Template version.';
            COMMENT ON COLUMN %1$I.executions IS 'Calls.';
            COMMENT ON COLUMN %1$I.successes IS 'Successful calls.';
            COMMENT ON COLUMN %1$I.latency_count IS 'Calls with a known latency.';
            COMMENT ON COLUMN %1$I.latency_sum_ms IS 'Sum of their latencies in milliseconds.';
            COMMENT ON COLUMN %1$I.latency_histogram IS 'Calls per latency bucket (a DDSketch of 1%% relative accuracy after 0.1.0''s 64 buckets of 12%%); prompt_latency_quantile(latency_histogram, 0.95) is the p95.';
            COMMENT ON COLUMN %1$I.input_tokens IS 'Sum of input tokens.';
            COMMENT ON COLUMN %1$I.output_tokens IS 'Sum of output tokens.';
            COMMENT ON COLUMN %1$I.cached_input_tokens IS 'Sum of cached input tokens.';
            COMMENT ON COLUMN %1$I.cost_usd IS 'Sum of costs in USD, exact (calls of unpriced models add nothing).';
            COMMENT ON COLUMN %1$I.priced_executions IS 'Calls whose cost is known.';
            COMMENT ON COLUMN %1$I.last_executed_at IS 'The newest of the calls.';
            COMMENT ON COLUMN %1$I.latency_sum_squares IS 'Sum of the squares of their latencies (for variances; 0 for hours logged before 0.2.0 whose calls were purged).';
            COMMENT ON COLUMN %1$I.cost_sum_squares IS 'Sum of the squares of their costs (for variances).';
        $c$, r);
        IF r <> 'prompt_template_stats' THEN
            EXECUTE format($c$
                COMMENT ON COLUMN %1$I.experiment IS 'Experiment (NULL in per-template rows).';
                COMMENT ON COLUMN %1$I.variant IS 'Experiment variant.';
            $c$, r);
        END IF;
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Experiments on any metric, with guardrail metrics and sequential tests.
------------------------------------------------------------------------------

ALTER TABLE ab_test_experiments DROP CONSTRAINT ab_test_experiments_primary_metric_check;
ALTER TABLE ab_test_experiments
    ADD COLUMN guardrail_metrics text[] NOT NULL DEFAULT '{}',
    ADD COLUMN overrides text[];
COMMENT ON COLUMN ab_test_experiments.primary_metric IS
    'What decides the experiment: success_rate (the share of calls logged with success = true), latency_ms or cost_usd (means, lower is better), or a declared numeric or boolean score (prompt_score_define).';
COMMENT ON COLUMN ab_test_experiments.guardrail_metrics IS
    'Metrics that must not get significantly worse for a variant to be promoted: success_rate, error_rate, latency_ms, cost_usd or declared numeric or boolean scores.';
COMMENT ON COLUMN ab_test_experiments.overrides IS 'What a forced promotion overrode (a variant short of the minimum sample, a degraded guardrail metric); NULL otherwise. Audited with the conclusion.';

CREATE OR REPLACE FUNCTION _experiments_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_item jsonb;
    v_position bigint;
    v_name text;
    v_names text[] := '{}';
    v_normal jsonb := '[]';
    v_sum integer := 0;
    v_missing integer;
    v_template text := (SELECT t.name FROM prompt_templates t WHERE t.id = NEW.template_id);
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status <> NEW.status AND NOT (OLD.status, NEW.status) IN
               (('draft', 'running'), ('running', 'stopped'), ('stopped', 'running'),
                ('running', 'concluded'), ('stopped', 'concluded')) THEN
            RAISE EXCEPTION 'experiment "%" cannot go from % to %', OLD.name, OLD.status, NEW.status
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'draft -> running <-> stopped -> concluded.';
        END IF;
        -- Fixed once started: changing the split would move users between
        -- variants, and changing the decision rules after seeing data is
        -- how false winners are made.
        IF OLD.status <> 'draft' AND (NEW.name, NEW.template_id, NEW.variants, NEW.hash_salt, NEW.control_variant,
                                      NEW.primary_metric, NEW.guardrail_metrics, NEW.min_sample_size, NEW.significance_level)
                IS DISTINCT FROM (OLD.name, OLD.template_id, OLD.variants, OLD.hash_salt, OLD.control_variant,
                                  OLD.primary_metric, OLD.guardrail_metrics, OLD.min_sample_size, OLD.significance_level) THEN
            RAISE EXCEPTION 'experiment "%" has started: its name, template, variants, control, salt, metrics, minimum sample and significance level are fixed', OLD.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Create a new experiment instead.';
        END IF;
    END IF;
    IF jsonb_typeof(NEW.variants) IS DISTINCT FROM 'array' OR jsonb_array_length(NEW.variants) NOT BETWEEN 1 AND 20 THEN
        RAISE EXCEPTION 'variants must be a JSON array of 1 to 20 objects'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '[{"name": "control", "version": 1, "weight": 50}, {"name": "treatment", "version": 2, "weight": 50}]';
    END IF;
    FOR v_item, v_position IN SELECT e, o FROM jsonb_array_elements(NEW.variants) WITH ORDINALITY AS a(e, o) LOOP
        IF jsonb_typeof(v_item) IS DISTINCT FROM 'object'
           OR EXISTS (SELECT 1 FROM jsonb_object_keys(v_item) k WHERE k NOT IN ('name', 'version', 'weight')) THEN
            RAISE EXCEPTION 'variant % must be an object with the keys name, version and weight', v_position
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v_item -> 'version') IS DISTINCT FROM 'number' OR (v_item ->> 'version') !~ '^[0-9]{1,9}$'
           OR (v_item ->> 'version')::integer < 1 THEN
            RAISE EXCEPTION 'variant %: version must be a positive integer', v_position
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v_item -> 'weight') IS DISTINCT FROM 'number' OR (v_item ->> 'weight') !~ '^[0-9]{1,3}$'
           OR (v_item ->> 'weight')::integer NOT BETWEEN 1 AND 100 THEN
            RAISE EXCEPTION 'variant %: weight must be an integer from 1 to 100 (percent of users)', v_position
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_item ? 'name' AND jsonb_typeof(v_item -> 'name') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'variant %: name must be a string', v_position USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_name := coalesce(v_item ->> 'name', 'v' || (v_item ->> 'version'));
        IF v_name !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$' THEN
            RAISE EXCEPTION 'variant %: name "%" is not valid', v_position, v_name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Up to 64 letters, digits, _ . and -, not starting with . or -.';
        END IF;
        IF v_name = ANY (v_names) THEN
            RAISE EXCEPTION 'variant name "%" is used twice', v_name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name the variants when two of them test the same version.';
        END IF;
        v_names := v_names || v_name;
        v_sum := v_sum + (v_item ->> 'weight')::integer;
        v_normal := v_normal || jsonb_build_object('name', v_name, 'version', (v_item ->> 'version')::integer,
                                                   'weight', (v_item ->> 'weight')::integer);
    END LOOP;
    IF v_sum <> 100 THEN
        RAISE EXCEPTION 'variant weights sum to %, not 100', v_sum
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Weights are percentages of users.';
    END IF;
    NEW.variants := v_normal;
    NEW.control_variant := coalesce(NEW.control_variant, v_names[1]);
    IF NOT NEW.control_variant = ANY (v_names) THEN
        RAISE EXCEPTION 'control variant "%" is not one of the variants (%)', NEW.control_variant, array_to_string(v_names, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.winner IS NOT NULL AND NOT NEW.winner = ANY (v_names) THEN
        RAISE EXCEPTION 'winner "%" is not one of the variants (%)', NEW.winner, array_to_string(v_names, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.hash_salt := coalesce(NEW.hash_salt, NEW.name);

    -- Restored rows may arrive before the versions they name.
    IF NOT (TG_OP = 'INSERT' AND _restoring()) THEN
        SELECT count(*) INTO v_missing
          FROM jsonb_array_elements(NEW.variants) e
         WHERE NOT EXISTS (SELECT 1 FROM prompt_versions v
                            WHERE v.template_id = NEW.template_id AND v.version = (e ->> 'version')::integer);
        IF v_missing > 0 THEN
            RAISE EXCEPTION 'variant versions % are not all versions of template "%"',
                  (SELECT string_agg(e ->> 'version', ', ') FROM jsonb_array_elements(NEW.variants) e), v_template
                USING ERRCODE = 'undefined_object',
                      DETAIL = format('Versions of "%s": %s.', v_template,
                          (SELECT string_agg(v.version::text, ', ' ORDER BY v.version) FROM prompt_versions v
                            WHERE v.template_id = NEW.template_id));
        END IF;
    END IF;

    -- Metrics: built in, or declared scores that have a mean (not categories).
    IF NOT (TG_OP = 'INSERT' AND _restoring()) THEN
        FOREACH v_name IN ARRAY array_prepend(NEW.primary_metric, NEW.guardrail_metrics) LOOP
            IF v_name IS NULL OR NOT (v_name IN ('success_rate', 'error_rate', 'latency_ms', 'cost_usd')
                                      OR EXISTS (SELECT 1 FROM prompt_score_definitions d WHERE d.name = v_name AND d.kind <> 'categorical')) THEN
                RAISE EXCEPTION 'unknown metric "%"', v_name
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = CASE WHEN EXISTS (SELECT 1 FROM prompt_score_definitions d WHERE d.name = v_name)
                                        THEN format('Score "%s" is categorical: it has no mean to compare.', v_name)
                                        ELSE 'Metrics are built in or declared scores.' END,
                          HINT = 'success_rate, error_rate, latency_ms, cost_usd, or a numeric or boolean score declared with prompt_score_define.';
            END IF;
        END LOOP;
        IF NEW.primary_metric = 'error_rate' THEN
            RAISE EXCEPTION 'error_rate is a guardrail metric; decide on success_rate instead' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- (success_rate and error_rate are one metric read two ways.)
        IF (SELECT count(DISTINCT CASE m WHEN 'error_rate' THEN 'success_rate' ELSE m END) FROM unnest(array_prepend(NEW.primary_metric, NEW.guardrail_metrics)) m)
           <> cardinality(NEW.guardrail_metrics) + 1 THEN
            RAISE EXCEPTION 'guardrail metrics must differ from each other and from the primary metric "%"', NEW.primary_metric
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    IF NEW.status = 'running' AND jsonb_array_length(NEW.variants) < 2 THEN
        RAISE EXCEPTION 'experiment "%" has % variant; it needs at least two to run', NEW.name, jsonb_array_length(NEW.variants)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _experiments_validate() IS
    'Trigger: checks variants (22023: shape, names, weights summing to 100, control; 42704: versions of another template) and metrics (22023: unknown, repeated or equal to the primary), fills the default control and salt, and refuses illegal status changes and changes to a started experiment (55000).';

DROP FUNCTION prompt_experiment_create(text, text, jsonb, text, text, integer, numeric, text);
CREATE FUNCTION prompt_experiment_create(name text, template text, variants jsonb,
                                         control text DEFAULT NULL,
                                         salt text DEFAULT NULL,
                                         min_sample_size integer DEFAULT 1000,
                                         significance_level numeric DEFAULT 0.05,
                                         description text DEFAULT NULL,
                                         primary_metric text DEFAULT 'success_rate',
                                         guardrail_metrics text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates;
    v_id bigint;
BEGIN
    PERFORM _require(prompt_experiment_create.name, 'name');
    PERFORM _require(prompt_experiment_create.variants, 'variants');
    PERFORM _require(prompt_experiment_create.min_sample_size, 'min_sample_size');
    PERFORM _require(prompt_experiment_create.significance_level, 'significance_level');
    PERFORM _require(prompt_experiment_create.primary_metric, 'primary_metric');
    PERFORM _require(prompt_experiment_create.guardrail_metrics, 'guardrail_metrics');
    IF length(prompt_experiment_create.name) NOT BETWEEN 1 AND 200
       OR prompt_experiment_create.name !~ '^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$' THEN
        RAISE EXCEPTION '"%" is not a valid experiment name', prompt_experiment_create.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Letters, digits and _ . : / - ; up to 200 characters.';
    END IF;
    v_template := _lock_template(prompt_experiment_create.template);
    IF prompt_experiment_create.min_sample_size < 1 THEN
        RAISE EXCEPTION 'min_sample_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (prompt_experiment_create.significance_level > 0 AND prompt_experiment_create.significance_level < 0.5) THEN
        RAISE EXCEPTION 'significance_level must be between 0 and 0.5 (got %)', prompt_experiment_create.significance_level
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM ab_test_experiments e WHERE e.name = prompt_experiment_create.name) THEN
        RAISE EXCEPTION 'experiment "%" already exists', prompt_experiment_create.name
            USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO ab_test_experiments AS e (name, template_id, description, variants, control_variant, hash_salt,
                                          min_sample_size, significance_level, primary_metric, guardrail_metrics)
    VALUES (prompt_experiment_create.name, v_template.id, prompt_experiment_create.description,
            prompt_experiment_create.variants, prompt_experiment_create.control, prompt_experiment_create.salt,
            prompt_experiment_create.min_sample_size, prompt_experiment_create.significance_level,
            prompt_experiment_create.primary_metric, prompt_experiment_create.guardrail_metrics)
    RETURNING e.id INTO v_id;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION prompt_experiment_create(text, text, jsonb, text, text, integer, numeric, text, text, text[]) IS
$$Creates a draft experiment on a template and returns its id. variants: [{"name": "control", "version": 1, "weight": 50}, {"name": "treatment", "version": 2, "weight": 50}] (name defaults to v<version>; weights are percent of users and sum to 100). control: default the first variant. salt: default the experiment's name. primary_metric decides it: success_rate, latency_ms, cost_usd or a declared numeric or boolean score; guardrail_metrics (those and error_rate) must not get significantly worse for a variant to be promoted.
Errors: 22004 NULL argument, 22023 invalid name, variants, settings or metrics (unknown, repeated, or a guardrail equal to the primary), 42704 unknown template or a version of another template, 42710 name taken.$$;

ALTER FUNCTION prompt_experiment_create(text, text, jsonb, text, text, integer, numeric, text, text, text[]) SECURITY DEFINER SET search_path = pgprompt, pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION prompt_experiment_create(text, text, jsonb, text, text, integer, numeric, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_experiment_create(text, text, jsonb, text, text, integer, numeric, text, text, text[]) TO pgprompt_admin;

CREATE OR REPLACE FUNCTION prompt_experiment_promote(name text, variant text DEFAULT NULL, version integer DEFAULT NULL,
                                          force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_experiment ab_test_experiments := _lock_experiment(prompt_experiment_promote.name);
    v_wanted text;
    v_chosen jsonb;
    v_short text;
    v_degraded text[];
    v_overrides text[];
BEGIN
    IF v_experiment.status NOT IN ('running', 'stopped') THEN
        RAISE EXCEPTION 'experiment "%" is %; only a running or stopped experiment can be promoted', v_experiment.name, v_experiment.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF prompt_experiment_promote.variant IS NOT NULL AND prompt_experiment_promote.version IS NOT NULL THEN
        RAISE EXCEPTION 'pass either a variant or a version, not both' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_wanted := prompt_experiment_promote.variant;
    IF v_wanted IS NULL AND prompt_experiment_promote.version IS NULL THEN
        -- No choice given: the sequential decision on the primary metric
        -- (valid however often the results were looked at), the best of the
        -- variants it calls better than the control.
        SELECT m.variant INTO v_wanted FROM v_ab_test_metrics m
         WHERE m.experiment = v_experiment.name AND m.role = 'primary' AND m.verdict = 'better'
         ORDER BY CASE m.better WHEN 'higher' THEN m.diff ELSE -m.diff END DESC LIMIT 1;
        IF v_wanted IS NULL THEN
            RAISE EXCEPTION 'experiment "%" has no variant better than the control "%" on its primary metric %', v_experiment.name,
                            v_experiment.control_variant, v_experiment.primary_metric
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Look at v_ab_test_results (primary_verdict), then name the variant to promote: prompt_experiment_promote(name, variant => ...).';
        END IF;
    END IF;
    -- By name, or the first variant of the version given.
    SELECT a.e INTO v_chosen FROM jsonb_array_elements(v_experiment.variants) WITH ORDINALITY a(e, position)
     WHERE CASE WHEN v_wanted IS NOT NULL THEN a.e ->> 'name' = v_wanted
                ELSE (a.e ->> 'version')::integer = prompt_experiment_promote.version END
     ORDER BY a.position LIMIT 1;
    IF v_chosen IS NULL AND v_wanted IS NOT NULL THEN
        RAISE EXCEPTION 'experiment "%" has no variant "%"', v_experiment.name, v_wanted
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Variants: ' || (SELECT string_agg(e ->> 'name', ', ') FROM jsonb_array_elements(v_experiment.variants) e) || '.';
    ELSIF v_chosen IS NULL THEN
        RAISE EXCEPTION 'version % is not a variant of experiment "%"', prompt_experiment_promote.version, v_experiment.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Variant versions: ' || (SELECT string_agg(e ->> 'version', ', ') FROM jsonb_array_elements(v_experiment.variants) e) || '.';
    END IF;

    -- A winner read off too few calls is noise: every variant needs the
    -- experiment's minimum sample, unless the caller forces it.
    SELECT string_agg(format('%s (%s calls)', r.variant, r.executions), ', ' ORDER BY r.variant) INTO v_short
      FROM v_ab_test_results r
     WHERE r.experiment = v_experiment.name AND r.executions < v_experiment.min_sample_size;
    IF v_short IS NOT NULL AND NOT prompt_experiment_promote.force THEN
        RAISE EXCEPTION 'experiment "%" has fewer than its minimum sample of % calls per variant: %',
                        v_experiment.name, v_experiment.min_sample_size, v_short
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for more calls, or pass force => true to promote anyway.';
    END IF;
    IF v_short IS NOT NULL THEN
        v_overrides := v_overrides || ('minimum sample: ' || v_short);
    END IF;
    -- A winner must not pay for its win elsewhere: no guardrail metric
    -- significantly worse than the control's.
    SELECT array_agg(format('%s (%s vs %s)', m.metric, round(m.value::numeric, 6), round((m.value - m.diff)::numeric, 6)) ORDER BY m.metric)
      INTO v_degraded
      FROM v_ab_test_metrics m
     WHERE m.experiment = v_experiment.name AND m.variant = v_chosen ->> 'name' AND m.role = 'guardrail' AND m.verdict = 'worse';
    IF v_degraded IS NOT NULL AND NOT prompt_experiment_promote.force THEN
        RAISE EXCEPTION 'variant "%" of experiment "%" is significantly worse than the control on guardrail metric %',
                        v_chosen ->> 'name', v_experiment.name, array_to_string(v_degraded, ', ')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Look at v_ab_test_metrics; force => true promotes anyway (recorded in the experiment''s overrides and audited).';
    END IF;
    IF v_degraded IS NOT NULL THEN
        v_overrides := v_overrides || ('degraded guardrail: ' || array_to_string(v_degraded, ', '));
    END IF;

    IF (SELECT t.active_version FROM prompt_templates t WHERE t.id = v_experiment.template_id) <> (v_chosen ->> 'version')::integer THEN
        PERFORM prompt_activate((SELECT t.name FROM prompt_templates t WHERE t.id = v_experiment.template_id),
                                (v_chosen ->> 'version')::integer, prompt_experiment_promote.force);
    END IF;
    UPDATE ab_test_experiments e
       SET status = 'concluded', winner = v_chosen ->> 'name', stopped_at = coalesce(e.stopped_at, now()), concluded_at = now(),
           overrides = v_overrides
     WHERE e.id = v_experiment.id;
    RETURN (v_chosen ->> 'version')::integer;
END
$$;

COMMENT ON FUNCTION prompt_experiment_promote(text, text, integer, boolean) IS
$$Concludes an experiment in one transaction: activates the winning variant's version (gated by its test cases like prompt_activate; force passes through) and records it as the winner; returns that version. The winner is the variant (by name) or version given, or else the variant the sequential test calls better than the control on the primary metric (v_ab_test_results.primary_verdict; the best if several). Every variant needs min_sample_size calls first, and no guardrail metric of the winner may be significantly worse than the control's; force => true promotes anyway (what it overrode is recorded in the experiment's overrides, audited with the conclusion) and passes through to the activation's gate.
Errors: 22004 NULL name, 22023 not a variant of the experiment, 42704 unknown experiment, 55000 not running or stopped, a variant short of the minimum sample, a degraded guardrail metric, or no better variant on the primary metric when none was named, PG002 failing test cases.$$;

ALTER FUNCTION prompt_experiment_promote(text, text, integer, boolean) SECURITY DEFINER;

CREATE  FUNCTION "prompt_compare_means"(
	"n_a" bigint, /* i64 */
	"mean_a" double precision, /* f64 */
	"var_a" double precision, /* f64 */
	"n_b" bigint, /* i64 */
	"mean_b" double precision, /* f64 */
	"var_b" double precision, /* f64 */
	"alpha" double precision DEFAULT 0.05 /* f64 */
) RETURNS TABLE (
	"diff" double precision,  /* Option < f64 > */
	"ci_low" double precision,  /* Option < f64 > */
	"ci_high" double precision,  /* Option < f64 > */
	"p_value" double precision,  /* Option < f64 > */
	"df" double precision,  /* Option < f64 > */
	"seq_ci_low" double precision,  /* Option < f64 > */
	"seq_ci_high" double precision,  /* Option < f64 > */
	"seq_p_value" double precision  /* Option < f64 > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_compare_means_wrapper';

CREATE  FUNCTION "prompt_compare_rates"(
	"successes_a" bigint, /* i64 */
	"n_a" bigint, /* i64 */
	"successes_b" bigint, /* i64 */
	"n_b" bigint, /* i64 */
	"alpha" double precision DEFAULT 0.05 /* f64 */
) RETURNS TABLE (
	"diff" double precision,  /* Option < f64 > */
	"ci_low" double precision,  /* Option < f64 > */
	"ci_high" double precision,  /* Option < f64 > */
	"p_value" double precision,  /* Option < f64 > */
	"df" double precision,  /* Option < f64 > */
	"seq_ci_low" double precision,  /* Option < f64 > */
	"seq_ci_high" double precision,  /* Option < f64 > */
	"seq_p_value" double precision  /* Option < f64 > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_compare_rates_wrapper';

CREATE  FUNCTION "prompt_mean_interval"(
	"n" bigint, /* i64 */
	"mean" double precision, /* f64 */
	"var" double precision, /* f64 */
	"alpha" double precision DEFAULT 0.05 /* f64 */
) RETURNS double precision[] /* :: std :: option :: Option < Vec < f64 > > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_mean_interval_wrapper';

CREATE  FUNCTION "prompt_rate_interval"(
	"successes" bigint, /* i64 */
	"n" bigint, /* i64 */
	"alpha" double precision DEFAULT 0.05 /* f64 */
) RETURNS double precision[] /* :: std :: option :: Option < Vec < f64 > > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_rate_interval_wrapper';

COMMENT ON FUNCTION prompt_compare_means(bigint, double precision, double precision, bigint, double precision, double precision, double precision) IS
    'Mean b against mean a (each as n, mean, variance): diff = b - a with the (1 - alpha) Welch interval, the Welch t-test''s two-sided p-value and degrees of freedom, and the always-valid (mSPRT) confidence sequence and p-value. No row when a group has under two observations.';
COMMENT ON FUNCTION prompt_compare_rates(bigint, bigint, bigint, bigint, double precision) IS
    'Rate b against rate a (successes_a, n_a, successes_b, n_b): diff = b - a with Newcombe''s (1 - alpha) interval, the pooled z-test''s p-value, and the always-valid (mSPRT) confidence sequence and p-value.';
COMMENT ON FUNCTION prompt_mean_interval(bigint, double precision, double precision, double precision) IS
    'The (1 - alpha) Student''s t interval {low, high} of a mean from n, mean and variance; NULL under two observations.';
COMMENT ON FUNCTION prompt_rate_interval(bigint, bigint, double precision) IS
    'The (1 - alpha) Wilson interval {low, high} of a rate; NULL when n is 0.';


-- Every metric of every variant, from the exact rollups (calls and scores),
-- with its interval and, against the control, the fixed-horizon test
-- (two-proportion z-test with Newcombe's interval for rates, Welch's t-test
-- for means) and the always-valid one (the mSPRT: p-value and confidence
-- sequence, safe to read at any time; see sequential.rs).
CREATE VIEW v_ab_test_metrics AS
WITH experiment AS (
    SELECT e.id, e.name, e.control_variant, e.min_sample_size, e.significance_level::float8 AS alpha,
           jsonb_array_length(e.variants) AS variants, e.primary_metric, e.guardrail_metrics, e.variants AS list
      FROM ab_test_experiments e
), calls AS (
    SELECT experiment, variant, sum(executions) AS executions, sum(successes) AS successes,
           sum(latency_count) AS latency_count, sum(latency_sum_ms) AS latency_sum, sum(latency_sum_squares) AS latency_squares,
           prompt_latency_histogram(latency_histogram) AS histogram,
           sum(priced_executions) AS priced, sum(cost_usd) AS cost_sum, sum(cost_sum_squares) AS cost_squares
      FROM prompt_stats_rows
     WHERE experiment IS NOT NULL
     GROUP BY experiment, variant
), scores AS (
    SELECT experiment, variant, score, sum(scores) AS n, sum(value_sum) AS s, sum(value_sum_squares) AS ss
      FROM prompt_score_stats
     WHERE experiment IS NOT NULL AND category IS NULL
     GROUP BY experiment, variant, score
), metric AS (
    -- What each experiment shows: the call metrics, its own metrics, and
    -- every score with a mean that its calls got.
    SELECT x.id, m.metric
      FROM experiment x
     CROSS JOIN LATERAL (SELECT unnest(ARRAY['success_rate', 'latency_ms', 'cost_usd'])
                         UNION SELECT x.primary_metric
                         UNION SELECT unnest(x.guardrail_metrics)
                         UNION SELECT s.score FROM scores s
                                 JOIN prompt_score_definitions d ON d.name = s.score AND d.kind <> 'categorical'
                                WHERE s.experiment = x.name) AS m (metric)
), observed AS (
    SELECT x.id, x.name AS experiment, a.v ->> 'name' AS variant, (a.v ->> 'version')::integer AS version, a.position,
           x.control_variant, x.alpha, x.variants, x.min_sample_size, m.metric,
           CASE WHEN m.metric = x.primary_metric THEN 'primary'
                WHEN m.metric = ANY (x.guardrail_metrics) THEN 'guardrail' ELSE 'secondary' END AS role,
           CASE WHEN m.metric IN ('success_rate', 'error_rate') OR d.kind = 'boolean' THEN 'rate' ELSE 'mean' END AS kind,
           CASE WHEN m.metric IN ('error_rate', 'latency_ms', 'cost_usd') OR NOT coalesce(d.higher_is_better, true)
                THEN 'lower' ELSE 'higher' END AS better,
           coalesce(c.executions, 0) AS executions,
           coalesce(CASE m.metric WHEN 'success_rate' THEN c.executions WHEN 'error_rate' THEN c.executions
                                  WHEN 'latency_ms' THEN c.latency_count WHEN 'cost_usd' THEN c.priced ELSE s.n END, 0)::bigint AS n,
           coalesce(CASE m.metric WHEN 'success_rate' THEN c.successes WHEN 'error_rate' THEN c.executions - c.successes
                                  WHEN 'latency_ms' THEN c.latency_sum WHEN 'cost_usd' THEN c.cost_sum ELSE s.s END, 0)::numeric AS total,
           coalesce(CASE m.metric WHEN 'latency_ms' THEN c.latency_squares WHEN 'cost_usd' THEN c.cost_squares
                                  ELSE s.ss END, 0)::numeric AS squares,
           CASE WHEN m.metric = 'latency_ms' THEN prompt_latency_quantile(c.histogram, 0.95) END AS p95
      FROM experiment x
      JOIN metric m ON m.id = x.id
     CROSS JOIN LATERAL jsonb_array_elements(x.list) WITH ORDINALITY AS a (v, position)
      LEFT JOIN prompt_score_definitions d ON d.name = m.metric
      LEFT JOIN calls c ON c.experiment = x.name AND c.variant = a.v ->> 'name'
      LEFT JOIN scores s ON s.experiment = x.name AND s.variant = a.v ->> 'name' AND s.score = m.metric
), summarised AS (
    SELECT o.*,
           CASE WHEN o.n > 0 THEN (o.total / o.n)::float8 END AS value,
           CASE WHEN o.kind = 'mean' AND o.n > 1
                THEN greatest((o.squares - o.total * o.total / o.n) / (o.n - 1), 0)::float8 END AS var
      FROM observed o
), paired AS (
    SELECT s.*,
           max(s.n) FILTER (WHERE s.variant = s.control_variant) OVER w AS control_n,
           max(s.total) FILTER (WHERE s.variant = s.control_variant) OVER w AS control_total,
           max(s.value) FILTER (WHERE s.variant = s.control_variant) OVER w AS control_value,
           max(s.var) FILTER (WHERE s.variant = s.control_variant) OVER w AS control_var,
           min(s.executions) OVER w >= s.min_sample_size AS min_sample_reached,
           -- The level each comparison is called at: Bonferroni over the
           -- comparisons with the control, but a guardrail at alpha itself
           -- (it is quicker to flag harm than to call a win).
           CASE WHEN s.role = 'guardrail' THEN s.alpha ELSE s.alpha / greatest(s.variants - 1, 1) END AS level
      FROM summarised s
    WINDOW w AS (PARTITION BY s.id, s.metric)
)
SELECT p.experiment, p.variant, p.version, p.variant = p.control_variant AS is_control, p.metric, p.role, p.better,
       p.n, p.value,
       i.interval[1] AS ci_low, i.interval[2] AS ci_high, p.p95,
       c.diff, c.ci_low AS diff_ci_low, c.ci_high AS diff_ci_high, c.p_value,
       CASE WHEN p.variant <> p.control_variant THEN coalesce(c.p_value < p.level AND p.min_sample_reached, false) END AS significant,
       c.seq_p_value, c.seq_ci_low, c.seq_ci_high,
       CASE WHEN p.variant <> p.control_variant THEN
           CASE WHEN c.seq_p_value < p.level AND (c.diff > 0) = (p.better = 'higher') THEN 'better'
                WHEN c.seq_p_value < p.level AND c.diff <> 0 THEN 'worse'
                ELSE 'inconclusive' END END AS verdict
  FROM paired p
  LEFT JOIN LATERAL (SELECT CASE WHEN p.kind = 'rate' THEN prompt_rate_interval(p.total::bigint, p.n, p.alpha)
                                 ELSE prompt_mean_interval(p.n, p.value, p.var, p.alpha) END AS interval) i ON true
  LEFT JOIN LATERAL (SELECT * FROM prompt_compare_rates(p.control_total::bigint, p.control_n, p.total::bigint, p.n, p.alpha)
                      WHERE p.kind = 'rate'
                     UNION ALL
                     SELECT * FROM prompt_compare_means(p.control_n, p.control_value, p.control_var, p.n, p.value, p.var, p.alpha)
                      WHERE p.kind = 'mean') c ON p.variant <> p.control_variant;

COMMENT ON VIEW v_ab_test_metrics IS
    'Every metric of every experiment variant (success rate, latency, cost, the declared scores its calls got, its primary and guardrail metrics), with intervals at the experiment''s level and, against the control, the fixed-horizon test and the always-valid sequential test, which may be read at any time without inflating false positives.';
COMMENT ON COLUMN v_ab_test_metrics.experiment IS 'Experiment name.';
COMMENT ON COLUMN v_ab_test_metrics.variant IS 'Variant name.';
COMMENT ON COLUMN v_ab_test_metrics.version IS 'Template version of the variant.';
COMMENT ON COLUMN v_ab_test_metrics.is_control IS 'Whether this is the control variant.';
COMMENT ON COLUMN v_ab_test_metrics.metric IS 'success_rate, error_rate, latency_ms, cost_usd or a score name.';
COMMENT ON COLUMN v_ab_test_metrics.role IS 'primary (decides the experiment), guardrail (must not get worse) or secondary.';
COMMENT ON COLUMN v_ab_test_metrics.better IS 'higher or lower: which way is better.';
COMMENT ON COLUMN v_ab_test_metrics.n IS 'Observations: calls (rates), calls with a latency or a price, or scores in force.';
COMMENT ON COLUMN v_ab_test_metrics.value IS 'The rate or the mean.';
COMMENT ON COLUMN v_ab_test_metrics.ci_low IS 'Lower end of its (1 - significance_level) interval (Wilson for rates, Student''s t for means).';
COMMENT ON COLUMN v_ab_test_metrics.ci_high IS 'Upper end of that interval.';
COMMENT ON COLUMN v_ab_test_metrics.p95 IS 'latency_ms: the 95th percentile (from the histograms).';
COMMENT ON COLUMN v_ab_test_metrics.diff IS 'value minus the control''s (NULL for the control).';
COMMENT ON COLUMN v_ab_test_metrics.diff_ci_low IS 'Lower end of the fixed-horizon interval of diff (Newcombe for rates, Welch for means).';
COMMENT ON COLUMN v_ab_test_metrics.diff_ci_high IS 'Upper end of that interval.';
COMMENT ON COLUMN v_ab_test_metrics.p_value IS 'Fixed-horizon two-sided p-value (pooled z-test for rates, Welch''s t-test for means): valid once, at a sample size fixed in advance.';
COMMENT ON COLUMN v_ab_test_metrics.significant IS 'p_value below the level (significance_level, divided by the comparisons with the control unless a guardrail) and every variant at min_sample_size.';
COMMENT ON COLUMN v_ab_test_metrics.seq_p_value IS 'Always-valid p-value (mSPRT, Johari et al. 2022): may be read at any time, as often as wanted.';
COMMENT ON COLUMN v_ab_test_metrics.seq_ci_low IS 'Lower end of the confidence sequence of diff (covers it at all times with probability 1 - significance_level).';
COMMENT ON COLUMN v_ab_test_metrics.seq_ci_high IS 'Upper end of the confidence sequence.';
COMMENT ON COLUMN v_ab_test_metrics.verdict IS 'The sequential decision against the control at the level: better, worse or inconclusive (NULL for the control).';

CREATE OR REPLACE VIEW v_ab_test_results AS
WITH variant AS (
    SELECT e.id AS experiment_id, e.name AS experiment, t.name AS template, e.status, e.control_variant,
           e.min_sample_size, e.significance_level, a.position,
           a.v ->> 'name' AS variant, (a.v ->> 'version')::integer AS version, (a.v ->> 'weight')::integer AS weight,
           jsonb_array_length(e.variants) AS variants
      FROM ab_test_experiments e
      JOIN prompt_templates t ON t.id = e.template_id
     CROSS JOIN LATERAL jsonb_array_elements(e.variants) WITH ORDINALITY AS a(v, position)
), observed AS (
    SELECT experiment, variant, sum(executions) AS executions, sum(successes) AS successes,
           sum(latency_sum_ms) AS latency_sum_ms, sum(latency_count) AS latency_count,
           sum(cost_usd) AS cost_usd, sum(priced_executions) AS priced_executions
      FROM prompt_stats_rows
     WHERE experiment IS NOT NULL
     GROUP BY experiment, variant
), counted AS (
    SELECT v.*, coalesce(o.executions, 0)::bigint AS executions, coalesce(o.successes, 0)::bigint AS successes,
           o.latency_sum_ms, o.latency_count, o.cost_usd, o.priced_executions
      FROM variant v
      LEFT JOIN observed o ON o.experiment = v.experiment AND o.variant = v.variant
), compared AS (
    SELECT c.*,
           max(c.executions) FILTER (WHERE c.variant = c.control_variant) OVER e AS control_executions,
           max(c.successes) FILTER (WHERE c.variant = c.control_variant) OVER e AS control_successes,
           min(c.executions) OVER e >= c.min_sample_size AS min_sample_reached,
           prompt_sample_ratio_p(array_agg(c.executions) OVER e, array_agg(c.weight::float8) OVER e) AS srm_p_value,
           prompt_wilson_interval(c.successes, c.executions) AS interval
      FROM counted c
    WINDOW e AS (PARTITION BY c.experiment_id ORDER BY c.position ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), metrics AS (
    SELECT m.experiment AS m_experiment, m.variant AS m_variant,
           max(m.metric) FILTER (WHERE m.role = 'primary') AS primary_metric,
           max(m.value) FILTER (WHERE m.role = 'primary') AS primary_value,
           max(m.diff) FILTER (WHERE m.role = 'primary') AS primary_diff,
           max(m.seq_p_value) FILTER (WHERE m.role = 'primary') AS primary_seq_p_value,
           max(m.verdict) FILTER (WHERE m.role = 'primary') AS primary_verdict,
           coalesce(array_agg(m.metric ORDER BY m.metric) FILTER (WHERE m.role = 'guardrail' AND m.verdict = 'worse'), '{}') AS degraded_guardrails,
           jsonb_object_agg(m.metric, jsonb_strip_nulls(jsonb_build_object(
               'role', m.role, 'better', m.better, 'n', m.n, 'value', m.value, 'ci', jsonb_build_array(m.ci_low, m.ci_high),
               'p95', m.p95, 'diff', m.diff, 'diff_ci', CASE WHEN m.diff IS NOT NULL THEN jsonb_build_array(m.diff_ci_low, m.diff_ci_high) END,
               'p_value', m.p_value, 'significant', m.significant, 'seq_p_value', m.seq_p_value,
               'seq_ci', CASE WHEN m.seq_p_value IS NOT NULL THEN jsonb_build_array(m.seq_ci_low, m.seq_ci_high) END,
               'verdict', m.verdict))) AS metrics
      FROM v_ab_test_metrics m
     GROUP BY m.experiment, m.variant
)
SELECT experiment, template, status, variant, version, weight,
       variant = control_variant AS is_control,
       executions, successes,
       successes::float8 / nullif(executions, 0) AS success_rate,
       interval[1] AS success_rate_ci_low,
       interval[2] AS success_rate_ci_high,
       latency_sum_ms::float8 / nullif(latency_count, 0) AS mean_latency_ms,
       trim_scale(round(cost_usd / nullif(priced_executions, 0), 12)) AS mean_cost_usd,
       CASE WHEN variant <> control_variant THEN
           successes::float8 / nullif(executions, 0) - control_successes::float8 / nullif(control_executions, 0) END AS lift_abs,
       CASE WHEN variant <> control_variant THEN
           (successes::float8 / nullif(executions, 0)) / nullif(control_successes::float8 / nullif(control_executions, 0), 0) - 1 END AS lift_rel,
       CASE WHEN variant <> control_variant THEN
           prompt_two_proportion_p(control_successes, control_executions, successes, executions) END AS p_value,
       min_sample_reached,
       CASE WHEN variant <> control_variant THEN
           coalesce(min_sample_reached
                    AND prompt_two_proportion_p(control_successes, control_executions, successes, executions)
                        < significance_level::float8 / (variants - 1), false) END AS significant,
       srm_p_value,
       coalesce(srm_p_value < 0.001, false) AS sample_ratio_mismatch,
       primary_metric, primary_value, primary_diff, primary_seq_p_value, primary_verdict, degraded_guardrails, metrics
  FROM compared
  LEFT JOIN metrics ON m_experiment = experiment AND m_variant = variant;

COMMENT ON VIEW v_ab_test_results IS
    'Per experiment and variant: calls, success rate with its 95% Wilson interval, mean latency and cost, and against the control: lift, two-proportion z-test p-value and significance (at the experiment''s alpha, Bonferroni-corrected over the comparisons, and only once every variant reached min_sample_size); the sample-ratio-mismatch check of the whole experiment; the primary metric''s sequential decision, the degraded guardrail metrics, and every metric of v_ab_test_metrics.';
COMMENT ON COLUMN v_ab_test_results.experiment IS 'Experiment name.';
COMMENT ON COLUMN v_ab_test_results.template IS 'Template under test.';
COMMENT ON COLUMN v_ab_test_results.status IS 'draft, running, stopped or concluded.';
COMMENT ON COLUMN v_ab_test_results.variant IS 'Variant name.';
COMMENT ON COLUMN v_ab_test_results.version IS 'Template version of the variant.';
COMMENT ON COLUMN v_ab_test_results.weight IS 'Configured share of users, percent.';
COMMENT ON COLUMN v_ab_test_results.is_control IS 'Whether this is the control variant.';
COMMENT ON COLUMN v_ab_test_results.executions IS 'Calls logged for the variant.';
COMMENT ON COLUMN v_ab_test_results.successes IS 'Successful calls.';
COMMENT ON COLUMN v_ab_test_results.success_rate IS 'successes / executions (NULL without calls).';
COMMENT ON COLUMN v_ab_test_results.success_rate_ci_low IS 'Lower end of the 95% Wilson interval of the success rate.';
COMMENT ON COLUMN v_ab_test_results.success_rate_ci_high IS 'Upper end of the 95% Wilson interval.';
COMMENT ON COLUMN v_ab_test_results.mean_latency_ms IS 'Mean latency of calls with a latency.';
COMMENT ON COLUMN v_ab_test_results.mean_cost_usd IS 'Mean cost of priced calls, USD (12 decimal places).';
COMMENT ON COLUMN v_ab_test_results.lift_abs IS 'Success rate minus the control''s (NULL for the control).';
COMMENT ON COLUMN v_ab_test_results.lift_rel IS 'Success rate over the control''s, minus 1.';
COMMENT ON COLUMN v_ab_test_results.p_value IS 'Two-sided p-value of the pooled two-proportion z-test against the control.';
COMMENT ON COLUMN v_ab_test_results.min_sample_reached IS 'Whether every variant of the experiment has min_sample_size calls.';
COMMENT ON COLUMN v_ab_test_results.significant IS
    'p_value < significance_level / (variants - 1) and min_sample_reached (NULL for the control).';
COMMENT ON COLUMN v_ab_test_results.srm_p_value IS 'Chi-square p-value of the calls per variant against the weights (the whole experiment).';
COMMENT ON COLUMN v_ab_test_results.sample_ratio_mismatch IS 'srm_p_value < 0.001: the split is not what was configured; distrust the results.';
COMMENT ON COLUMN v_ab_test_results.primary_metric IS 'The metric that decides the experiment.';
COMMENT ON COLUMN v_ab_test_results.primary_value IS 'Its rate or mean for the variant.';
COMMENT ON COLUMN v_ab_test_results.primary_diff IS 'Its difference from the control (NULL for the control).';
COMMENT ON COLUMN v_ab_test_results.primary_seq_p_value IS 'Always-valid p-value of that difference (mSPRT): safe to read at any time.';
COMMENT ON COLUMN v_ab_test_results.primary_verdict IS 'The sequential decision on the primary metric: better, worse or inconclusive (prompt_experiment_promote without a variant promotes a better one).';
COMMENT ON COLUMN v_ab_test_results.degraded_guardrails IS 'Guardrail metrics significantly worse than the control''s (sequential test at significance_level): promotion is refused unless forced.';
COMMENT ON COLUMN v_ab_test_results.metrics IS 'Every metric of v_ab_test_metrics for the variant, by name: role, better, n, value, ci, p95, diff, diff_ci, p_value, significant, seq_p_value, seq_ci, verdict.';

REVOKE ALL ON FUNCTION prompt_compare_means(bigint, double precision, double precision, bigint, double precision, double precision, double precision),
                       prompt_compare_rates(bigint, bigint, bigint, bigint, double precision),
                       prompt_mean_interval(bigint, double precision, double precision, double precision),
                       prompt_rate_interval(bigint, bigint, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_compare_means(bigint, double precision, double precision, bigint, double precision, double precision, double precision),
                          prompt_compare_rates(bigint, bigint, bigint, bigint, double precision),
                          prompt_mean_interval(bigint, double precision, double precision, double precision),
                          prompt_rate_interval(bigint, bigint, double precision) TO pgprompt_reader, pgprompt_admin;
GRANT SELECT ON v_ab_test_metrics TO pgprompt_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON v_ab_test_metrics TO pgprompt_admin;

------------------------------------------------------------------------------
-- Latency sketches of 1% relative accuracy (DDSketch), after 0.1.0's 64
-- buckets, which keep what was logged before; alerts read the same sketch.
------------------------------------------------------------------------------

CREATE  FUNCTION "_latency_bucket"(
	"latency_ms" INT /* i32 */
) RETURNS smallint /* i16 */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_latency_bucket_wrapper';
COMMENT ON FUNCTION _latency_bucket(integer) IS 'Internal: the latency sketch bucket of a latency in milliseconds (what the statistics triggers count it in).';
COMMENT ON FUNCTION prompt_latency_quantile(bigint[], double precision) IS
    'The q quantile (0..1, nearest rank as percentile_disc) of a latency histogram in milliseconds, within 1% of the exact value (12% for counts logged before 0.2.0); NULL for an empty histogram.';
COMMENT ON COLUMN prompt_stats_pending.latency_bucket IS 'Latency sketch bucket of these calls (see prompt_latency_quantile and _latency_bucket); NULL: latency unknown.';

REVOKE ALL ON FUNCTION _latency_bucket(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _latency_bucket(integer) TO pgprompt_admin;

CREATE OR REPLACE FUNCTION prompt_check_alerts()
RETURNS TABLE (rule text, template text, value numeric, threshold numeric, "window" interval, firing boolean)
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    r prompt_alert_rules;
    v_calls bigint;
BEGIN
    FOR r IN SELECT * FROM prompt_alert_rules a WHERE a.enabled ORDER BY a.name LOOP
        -- Raw calls of the window: the BRIN index on executed_at finds them
        -- for all templates, the (template_id, executed_at) index for one.
        SELECT count(*),
               CASE r.metric
                   WHEN 'daily_cost_usd' THEN coalesce(sum(e.cost_usd), 0)
                        * (86400 / extract(epoch FROM r.time_window))
                   -- The sketch the views read (within 1%), so an alert and
                   -- the dashboard agree on the p95 of the same calls.
                   WHEN 'p95_latency_ms' THEN
                        prompt_latency_quantile(_hist_from_buckets(_latency_bucket(e.latency_ms), 1), 0.95)::numeric
                   WHEN 'error_rate' THEN
                        (count(*) FILTER (WHERE NOT e.success))::numeric / nullif(count(*), 0)
                   WHEN 'success_rate' THEN
                        (count(*) FILTER (WHERE e.success))::numeric / nullif(count(*), 0)
               END
          INTO v_calls, value
          FROM prompt_executions e
         WHERE e.executed_at > now() - r.time_window
           AND (r.template_id IS NULL OR e.template_id = r.template_id);
        rule := r.name;
        template := (SELECT t.name FROM prompt_templates t WHERE t.id = r.template_id);
        value := round(value, 6);
        threshold := r.threshold;
        "window" := r.time_window;
        firing := value IS NOT NULL
                  AND (r.metric = 'daily_cost_usd' OR v_calls >= r.min_executions)
                  AND CASE WHEN r.metric = 'success_rate' THEN value < r.threshold ELSE value > r.threshold END;
        IF firing THEN
            PERFORM _publish('pgprompt_alerts', jsonb_build_object(
                'rule', r.name, 'metric', r.metric, 'template', template, 'value', value,
                'threshold', r.threshold, 'window', r.time_window::text, 'executions', v_calls)::text);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

ALTER FUNCTION prompt_check_alerts() SECURITY DEFINER;
COMMENT ON COLUMN v_template_performance.p50_latency_ms IS 'Median latency, ms (from the latency sketches: within 1%; 12% for hours logged before 0.2.0).';
COMMENT ON COLUMN v_template_performance.p95_latency_ms IS '95th percentile latency, ms (from the latency sketches: within 1%; 12% for hours logged before 0.2.0).';

------------------------------------------------------------------------------
-- One release pointer: production is the active version.
------------------------------------------------------------------------------

-- 0.1.0 kept production as a label beside the active version, and the two
-- could disagree. Where they do, the one moved last was the release and
-- stays it: a production label moved after the last activation is activated
-- (recorded in prompt_activations, so prompt_rollback returns to the version
-- active before); otherwise the active version stays. Either way the audit
-- log records both pointers as they were, and the stored labels go (their
-- removal is not a release event, so it is not audited as one).
DO $$
DECLARE
    r record;
    v_release integer;
BEGIN
    FOR r IN
        SELECT t.id, t.name, t.active_version, l.version AS label_version, l.updated_at AS label_moved_at,
               (SELECT max(a.activated_at) FROM prompt_activations a WHERE a.template_id = t.id) AS activated_at
          FROM prompt_labels l JOIN prompt_templates t ON t.id = l.template_id
         WHERE l.label = 'production'
         ORDER BY t.id
    LOOP
        v_release := CASE WHEN r.label_version <> r.active_version AND r.label_moved_at > r.activated_at
                          THEN r.label_version ELSE r.active_version END;
        IF v_release <> r.active_version THEN
            UPDATE prompt_templates SET active_version = v_release WHERE id = r.id;
        END IF;
        IF r.label_version <> r.active_version THEN
            RAISE NOTICE 'template "%": the production label (version %) and the active version (%) disagreed; version % is the release',
                         r.name, r.label_version, r.active_version, v_release;
        END IF;
        PERFORM _audit('release_merge', 'label', r.name || '@production', r.id, v_release,
                       jsonb_build_object('active_version', r.active_version, 'production', r.label_version),
                       jsonb_build_object('active_version', v_release, 'production', v_release));
    END LOOP;
    ALTER TABLE prompt_labels DISABLE TRIGGER trigger_audit_prompt_labels;
    DELETE FROM prompt_labels WHERE label = 'production';
    ALTER TABLE prompt_labels ENABLE TRIGGER trigger_audit_prompt_labels;
END
$$;

ALTER TABLE prompt_labels DROP CONSTRAINT prompt_labels_label_format;
ALTER TABLE prompt_labels ADD CONSTRAINT prompt_labels_label_format CHECK (
    length(label) BETWEEN 1 AND 63
    AND label ~ '^[a-z0-9][a-z0-9_.-]*$'
    AND label NOT IN ('latest', 'active', 'production'));

COMMENT ON COLUMN prompt_templates.active_version IS
    'The release: the version prompt_render serves when no version or label is asked for, which the label production names. Moved by prompt_activate, prompt_label(name, version, ''production''), prompt_rollback and experiment promotion.';
COMMENT ON TABLE prompt_labels IS
    'Named pointers to one version of a template (staging, or any name), moved with prompt_label. production is not stored here: it is the template''s active_version (v_labels shows both).';
COMMENT ON COLUMN prompt_labels.label IS
    'Lower-case name: letters, digits and _ . - ; latest, active and production are reserved (they are resolved, not stored).';

-- Every label with the version it names: production (the active version,
-- moved by releases) and the free labels of prompt_labels.
CREATE VIEW v_labels AS
SELECT t.id AS template_id, t.name AS template, 'production'::text AS label, t.active_version AS version,
       true AS is_release, a.activated_at AS moved_at, a.activated_by AS moved_by
  FROM prompt_templates t
  LEFT JOIN LATERAL (SELECT a.activated_at, a.activated_by FROM prompt_activations a
                      WHERE a.template_id = t.id ORDER BY a.id DESC LIMIT 1) a ON true
UNION ALL
SELECT l.template_id, t.name, l.label, l.version, false, l.updated_at, l.updated_by
  FROM prompt_labels l JOIN prompt_templates t ON t.id = l.template_id;

COMMENT ON VIEW v_labels IS
    'Every label of every template and the version it names: production (the release, the active version) and the free labels (staging, ...).';
COMMENT ON COLUMN v_labels.template_id IS 'The template''s id.';
COMMENT ON COLUMN v_labels.template IS 'The template''s name.';
COMMENT ON COLUMN v_labels.label IS 'The label.';
COMMENT ON COLUMN v_labels.version IS 'The version it names.';
COMMENT ON COLUMN v_labels.is_release IS 'true for production, the release (moved by activation, rollback and promotion).';
COMMENT ON COLUMN v_labels.moved_at IS 'When it last moved.';
COMMENT ON COLUMN v_labels.moved_by IS 'Session user who last moved it.';

CREATE OR REPLACE FUNCTION prompt_activate(name text, version integer, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _release(_lock_template(prompt_activate.name), prompt_activate.version, prompt_activate.force, 'activate');
END
$$;

COMMENT ON FUNCTION prompt_activate(text, integer, boolean) IS
$$Releases a version: it becomes the active version, which the label production names and prompt_render serves by default. Takes effect for every session at commit; NOTIFY pgprompt_changes tells application caches. The version must pass its template's test cases (prompt_run_tests) unless force => true, which is audited. prompt_label(name, version, 'production') does the same.
Errors: 22004 NULL argument, 42704 unknown template or version, PG002 failing test cases.$$;

CREATE OR REPLACE FUNCTION prompt_label(name text, version integer, label text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates;
BEGIN
    PERFORM _check_label(prompt_label.label);
    v_template := _lock_template(prompt_label.name);
    -- production is the release itself.
    IF prompt_label.label = 'production' THEN
        PERFORM _release(v_template, prompt_label.version, prompt_label.force, 'label production');
        RETURN;
    END IF;
    PERFORM _require_version(v_template, prompt_label.version);
    INSERT INTO prompt_labels AS l (template_id, label, version)
    VALUES (v_template.id, prompt_label.label, prompt_label.version)
    ON CONFLICT ON CONSTRAINT prompt_labels_pkey DO UPDATE
        SET version = excluded.version
        WHERE l.version IS DISTINCT FROM excluded.version;
    IF FOUND THEN
        PERFORM _gate_includers(v_template, prompt_label.label, prompt_label.force, 'label ' || prompt_label.label);
    END IF;
END
$$;

COMMENT ON FUNCTION prompt_label(text, integer, text, boolean) IS
$$Points a label (staging, any lower-case name) at a version, creating or moving it in one call. Render it with prompt_render(name, vars, label => 'staging'). production is the release: labelling a version production activates it (as prompt_activate, gated by its test cases unless force => true, audited).
Errors: 22004 NULL argument, 22023 invalid or reserved label, 42704 unknown template or version, PG002 failing test cases (the version's, or those of released templates that include this one by that label).$$;

CREATE OR REPLACE FUNCTION prompt_unlabel(name text, label text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates;
BEGIN
    PERFORM _require(prompt_unlabel.label, 'label');
    v_template := _lock_template(prompt_unlabel.name);
    IF prompt_unlabel.label = 'production' THEN
        RAISE EXCEPTION 'production cannot be removed from template "%": it is the release (version %)',
                        v_template.name, v_template.active_version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Release another version with prompt_activate or prompt_label, or go back with prompt_rollback.';
    END IF;
    DELETE FROM prompt_labels l WHERE l.template_id = v_template.id AND l.label = prompt_unlabel.label;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION prompt_unlabel(text, text) IS
$$Removes a label from a template. Returns false if the template had no such label.
Errors: 22004 NULL argument, 42704 unknown template, 55000 production (the release is moved, not removed).$$;

COMMENT ON FUNCTION prompt_rollback(text) IS
$$Re-releases the version that was active (production) before the current one and returns its number. Repeated rollbacks walk further back, like undo.
Errors: 22004 NULL argument, 42704 unknown template, 55000 nothing to roll back to.$$;

ALTER FUNCTION prompt_activate(text, integer, boolean) SECURITY DEFINER;
ALTER FUNCTION prompt_label(text, integer, text, boolean) SECURITY DEFINER;
ALTER FUNCTION prompt_unlabel(text, text) SECURITY DEFINER;
GRANT SELECT ON v_labels TO pgprompt_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON v_labels TO pgprompt_admin;
------------------------------------------------------------------------------
-- Structured prompts: a model configuration of a checked shape, an input
-- schema per version, and settings a new version inherits.
------------------------------------------------------------------------------

CREATE  FUNCTION "_model_config"(
	"config" jsonb /* JsonB */
) RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_model_config_wrapper';

CREATE  FUNCTION "_input_schema"(
	"schema" jsonb /* JsonB */
) RETURNS jsonb /* Option < JsonB > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_input_schema_wrapper';

COMMENT ON FUNCTION _model_config(jsonb) IS
    'Internal: checks a model configuration against the documented shape (22023 naming the path of what is wrong) and returns it with model_name stored as model.';

COMMENT ON FUNCTION _input_schema(jsonb) IS
    'Internal: checks an input schema is a valid JSON Schema (22023 naming where it is not); NULL when it constrains nothing ({} or true).';

REVOKE ALL ON FUNCTION _model_config(jsonb), _input_schema(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _model_config(jsonb), _input_schema(jsonb) TO pgprompt_admin;

-- Stored configurations take the checked shape: the seeds' model_name is
-- stored as model (what logging and applications read). This rewrites
-- versions, which nothing else may: each rewrite is audited with the
-- configuration before and after. A configuration the checks refuse stays
-- as it was (a NOTICE names it); it is refused only when saved anew.
DO $$
DECLARE
    r record;
    v_config jsonb;
BEGIN
    ALTER TABLE prompt_versions DISABLE TRIGGER trigger_prompt_versions_immutable;
    FOR r IN
        SELECT v.id, v.version, v.template_id, t.name, v.model_config
          FROM prompt_versions v JOIN prompt_templates t ON t.id = v.template_id
         ORDER BY v.id
    LOOP
        BEGIN
            v_config := _model_config(r.model_config);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE NOTICE 'template "%" version %: model_config kept as it was (%)', r.name, r.version, SQLERRM;
            CONTINUE;
        END;
        IF v_config IS DISTINCT FROM r.model_config THEN
            UPDATE prompt_versions SET model_config = v_config WHERE id = r.id;
            PERFORM _audit('config_normalize', 'version', r.name, r.template_id, r.version,
                           jsonb_build_object('model_config', r.model_config), jsonb_build_object('model_config', v_config));
        END IF;
    END LOOP;
    ALTER TABLE prompt_versions ENABLE TRIGGER trigger_prompt_versions_immutable;
END
$$;

COMMENT ON COLUMN prompt_versions.model_config IS
    'What to call the model with (a JSON object, checked when saved): model, temperature, max_tokens, top_p, stop, tools, tool_choice, response_format, and any other key as given. model_name is stored as model.';
ALTER TABLE prompt_versions ADD COLUMN input_schema jsonb CONSTRAINT prompt_versions_input_schema_check
    CHECK (jsonb_typeof(input_schema) IN ('object', 'boolean'));
COMMENT ON COLUMN prompt_versions.input_schema IS
    'A JSON Schema the vars must match to render this version (22023 naming the failing path); NULL: any vars.';

ALTER TYPE prompt_version_info ADD ATTRIBUTE input_schema jsonb;
COMMENT ON COLUMN prompt_version_info.input_schema IS 'The JSON Schema vars must match, or NULL.';

CREATE FUNCTION _save(
    name         text,
    body         text,
    config       jsonb   DEFAULT NULL,
    message      text    DEFAULT NULL,
    kind         text    DEFAULT 'text',
    description  text    DEFAULT NULL,
    category     text    DEFAULT NULL,
    parent       integer DEFAULT NULL,
    options      jsonb   DEFAULT NULL,
    input_schema jsonb   DEFAULT NULL,
    authored_by  text    DEFAULT NULL,
    authored_at  timestamptz DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_variables text[];
    v_template_id bigint;
    v_version integer;
    v_parent prompt_versions;
    v_config jsonb;
    v_options jsonb;
    v_schema jsonb;
BEGIN
    PERFORM _require(_save.name, 'name');
    PERFORM _require(_save.body, 'body');
    PERFORM _require(_save.kind, 'kind');
    IF length(_save.name) NOT BETWEEN 1 AND 200
       OR _save.name !~ '^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$' THEN
        RAISE EXCEPTION 'invalid template name "%"', _save.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use letters, digits and _ . : / - (up to 200 characters), not starting with punctuation other than _.';
    END IF;

    -- Parses the body (42601 with line and column), checks its size (54000)
    -- and the kind (22023), and lists the variables it reads.
    v_variables := prompt_variables(_save.body, _save.kind);
    -- What is given is checked (22023 naming what is wrong); what is not is
    -- inherited from the parent version below.
    v_config := _model_config(_save.config);
    v_options := _render_options(coalesce(_save.options, '{}'));
    v_schema := _input_schema(_save.input_schema);

    -- A new template starts with this version active. ON CONFLICT waits for a
    -- concurrent creator of the same name and then takes the other branch.
    INSERT INTO prompt_templates AS t (name, description, category, active_version)
    VALUES (_save.name, _save.description, _save.category, 1)
    ON CONFLICT ON CONSTRAINT prompt_templates_name_key DO NOTHING
    RETURNING t.id INTO v_template_id;

    IF v_template_id IS NOT NULL THEN
        v_version := 1;
        IF _save.parent IS NOT NULL THEN
            RAISE EXCEPTION 'parent % does not exist: "%" is a new template', _save.parent, _save.name
                USING ERRCODE = 'undefined_object';
        END IF;
    ELSE
        -- Lock the template (serialising concurrent saves) and touch it.
        UPDATE prompt_templates t
           SET description = coalesce(_save.description, t.description),
               category = coalesce(_save.category, t.category)
         WHERE t.name = _save.name
        RETURNING t.id INTO v_template_id;
        SELECT max(v.version) + 1 INTO v_version FROM prompt_versions v WHERE v.template_id = v_template_id;
        SELECT * INTO v_parent FROM prompt_versions v
         WHERE v.template_id = v_template_id AND v.version = coalesce(_save.parent, v_version - 1);
        IF v_parent.id IS NULL THEN
            RAISE EXCEPTION 'parent version % of template "%" does not exist', _save.parent, _save.name
                USING ERRCODE = 'undefined_object';
        END IF;
        -- A new version keeps its parent's configuration, render options
        -- and input schema unless given ('{}' clears the input schema).
        IF _save.config IS NULL THEN
            v_config := v_parent.model_config;
        END IF;
        IF _save.options IS NULL THEN
            v_options := v_parent.options;
        END IF;
        IF _save.input_schema IS NULL THEN
            v_schema := v_parent.input_schema;
        END IF;
    END IF;

    INSERT INTO prompt_versions (template_id, version, kind, body, model_config, variables, message, parent_version,
                                 options, input_schema, authored_by, authored_at)
    VALUES (v_template_id, v_version, _save.kind, _save.body, coalesce(v_config, '{}'), v_variables,
            _save.message, v_parent.version, v_options, v_schema, _save.authored_by, _save.authored_at);

    -- What it includes: recorded and checked (includes.sql).
    PERFORM _record_includes(v_template_id, v_version, _save.body, _save.kind);

    IF v_version = 1 THEN
        INSERT INTO prompt_activations (template_id, version, action)
        VALUES (v_template_id, 1, 'create');
    END IF;
    RETURN v_version;
END
$$;

COMMENT ON FUNCTION _save(text, text, jsonb, text, text, text, text, integer, jsonb, jsonb, text, timestamptz) IS
    'Internal: prompt_save, and prompt_import_version with the author and time of a version written in another database.';


DROP FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb);
CREATE FUNCTION prompt_save(
    name         text,
    body         text,
    config       jsonb   DEFAULT NULL,
    message      text    DEFAULT NULL,
    kind         text    DEFAULT 'text',
    description  text    DEFAULT NULL,
    category     text    DEFAULT NULL,
    parent       integer DEFAULT NULL,
    options      jsonb   DEFAULT NULL,
    input_schema jsonb   DEFAULT NULL
)
RETURNS integer
LANGUAGE sql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT _save(name, body, config, message, kind, description, category, parent, options, input_schema);
$$;

COMMENT ON FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb, jsonb) IS
$$Saves a new immutable version of a template and returns its number. Creates the template if it is new; its first version is the release, later ones wait to be released (prompt_activate).
config: the model configuration, a JSON object checked against the documented shape (model, or model_name stored as model; temperature 0-2; max_tokens; top_p 0-1; stop; tools, each an OpenAI function tool whose parameters are a JSON Schema; tool_choice naming a declared tool; response_format text, json_object or json_schema with a valid schema; other keys as given). kind: text or chat. parent: the version this one derives from (default: the newest). options: how it renders, {"trim_blocks", "lstrip_blocks", "keep_trailing_newline": true/false, "undefined": "strict"/"lenient"}. input_schema: a JSON Schema the vars must match when this version renders ('{}' for none). config, options and input_schema left NULL are the parent's (for a new template: none, the defaults, none).
Includes: {% include "name@label" %} or {% include "name@version" %} renders another stored text template (see includes.sql).
Errors: 22004 NULL name, body or kind, 22023 a config key of the wrong shape (the message names its path) / an invalid input schema / bad name / bad kind / unknown render option or a value of the wrong type, 42601 syntax error (with line and column) or an include that is not "name@label", 42704 unknown parent or included template, label or version, 42809 an included chat template, 42P17 an include cycle, 54000 body over pgprompt.max_template_bytes, 54001 includes deeper than 5 levels.$$;

ALTER FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb, jsonb) SECURITY DEFINER;
REVOKE ALL ON FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_save(text, text, jsonb, text, text, text, text, integer, jsonb, jsonb) TO pgprompt_admin;

------------------------------------------------------------------------------
-- Approvals, protected labels and the pgprompt_releaser role.
------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgprompt_releaser') THEN
        BEGIN
            CREATE ROLE pgprompt_releaser NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT pg_catalog.pg_has_role('pgprompt_releaser', 'pgprompt_admin', 'MEMBER') THEN
        GRANT pgprompt_admin TO pgprompt_releaser;
    END IF;
END
$$;

ALTER TABLE prompt_templates ADD COLUMN requires_approval boolean NOT NULL DEFAULT false;
ALTER TABLE prompt_templates ADD COLUMN protected_labels text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN prompt_templates.requires_approval IS
    'Whether a version must be approved (prompt_approve, by a role other than its author) before it is released or given a protected label; releases then take pgprompt_releaser. Set with prompt_protect (pgprompt.require_approval = on makes every template require it).';
COMMENT ON COLUMN prompt_templates.protected_labels IS
    'Labels only members of pgprompt_releaser (or a superuser) may move; production here makes every release take the role. Set with prompt_protect.';

CREATE  FUNCTION "_approval_required"() RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_approval_required_wrapper';

-- Approvals and protected labels: who may release what.
--
-- A template that requires approval (prompt_templates.requires_approval, or
-- every template while pgprompt.require_approval is on) releases a version
-- (activates it, labels it production, serves it in an experiment, gives
-- it a protected label) only once a role other than its author approved it
-- with prompt_approve, and only at the hands of a member of
-- pgprompt_releaser. A protected label (prompt_templates.protected_labels)
-- moves only at the hands of a releaser; production among them makes every
-- release of the template take the role. force => true passes a release
-- gate, never a missing approval, except for a superuser (audited).
--
-- The checks run in triggers as well as in the functions, so an
-- administrator's direct UPDATE of active_version or INSERT into
-- prompt_labels meets them too. The actor is the session user, as in the
-- audit log: release functions run as the extension's owner. A superuser's
-- direct SQL is not checked: a superuser can disable triggers anyway.

------------------------------------------------------------------------------
-- Approvals
------------------------------------------------------------------------------

CREATE TABLE prompt_approvals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template_id bigint NOT NULL REFERENCES prompt_templates (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    approved_by text NOT NULL DEFAULT session_user,
    approved_at timestamptz NOT NULL DEFAULT now(),
    comment     text,
    UNIQUE (template_id, version, approved_by),
    FOREIGN KEY (template_id, version) REFERENCES prompt_versions (template_id, version) ON DELETE CASCADE
);

COMMENT ON TABLE prompt_approvals IS
    'Approvals of versions (prompt_approve), by roles other than their authors: what a template that requires approval needs before a release. Written by prompt_approve alone.';
COMMENT ON COLUMN prompt_approvals.id IS 'Order of approvals.';
COMMENT ON COLUMN prompt_approvals.template_id IS 'The template.';
COMMENT ON COLUMN prompt_approvals.version IS 'The version approved.';
COMMENT ON COLUMN prompt_approvals.approved_by IS 'Session user who approved it (never its author).';
COMMENT ON COLUMN prompt_approvals.approved_at IS 'When.';
COMMENT ON COLUMN prompt_approvals.comment IS 'What the reviewer said.';

SELECT pg_catalog.pg_extension_config_dump('prompt_approvals', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_approvals_id_seq', '');

-- Who approved is the session user, and never the version's author.
CREATE FUNCTION _approvals_stamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_author text;
BEGIN
    IF _restoring() THEN
        RETURN NEW;
    END IF;
    NEW.approved_by := session_user;
    NEW.approved_at := now();
    -- The author; for an imported version, whoever wrote it and whoever
    -- imported it.
    SELECT v.created_by INTO v_author FROM prompt_versions v
     WHERE v.template_id = NEW.template_id AND v.version = NEW.version
       AND NEW.approved_by IN (v.created_by, v.authored_by);
    IF v_author IS NOT NULL THEN
        RAISE EXCEPTION 'version % of template "%" was saved by %: its author cannot approve it', NEW.version,
                        (SELECT t.name FROM prompt_templates t WHERE t.id = NEW.template_id), v_author
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Another role approves it with prompt_approve(name, version, comment).';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _approvals_stamp() IS
    'Trigger: stamps an approval with the session user and the time, and refuses an approval by the version''s author (42501).';

CREATE TRIGGER trigger_approvals_stamp
    BEFORE INSERT ON prompt_approvals
    FOR EACH ROW EXECUTE FUNCTION _approvals_stamp();
COMMENT ON TRIGGER trigger_approvals_stamp ON prompt_approvals IS
    'Approvals carry who approved and when, and never come from the author.';

CREATE FUNCTION _audit_approvals()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT _restoring() THEN
        PERFORM _audit('approve', 'version', (SELECT t.name FROM prompt_templates t WHERE t.id = NEW.template_id),
                       NEW.template_id, NEW.version, NULL, to_jsonb(NEW));
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION _audit_approvals() IS 'Trigger: audits every approval.';

CREATE TRIGGER trigger_audit_prompt_approvals
    AFTER INSERT ON prompt_approvals
    FOR EACH ROW EXECUTE FUNCTION _audit_approvals();
COMMENT ON TRIGGER trigger_audit_prompt_approvals ON prompt_approvals IS 'Writes prompt_audit_logs.';

------------------------------------------------------------------------------
-- The checks
------------------------------------------------------------------------------

CREATE FUNCTION _session_is_superuser()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false);
$$;

COMMENT ON FUNCTION _session_is_superuser() IS 'Internal: whether the session user is a superuser.';

CREATE FUNCTION _requires_approval(p_template prompt_templates)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT p_template.requires_approval OR _approval_required();
$$;

COMMENT ON FUNCTION _requires_approval(prompt_templates) IS
    'Internal: whether releases of the template need an approval (its requires_approval, or pgprompt.require_approval).';

CREATE FUNCTION _approved(p_template_id bigint, p_version integer)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM prompt_approvals a
                     JOIN prompt_versions v ON v.template_id = a.template_id AND v.version = a.version
                    WHERE a.template_id = p_template_id AND a.version = p_version AND a.approved_by <> v.created_by
                      AND a.approved_by IS DISTINCT FROM v.authored_by);
$$;

COMMENT ON FUNCTION _approved(bigint, integer) IS
    'Internal: whether a role other than its author (or, for an imported version, its importer) approved the version.';

-- What every release path checks: p_label is the label that moves
-- (production for a release), p_what names the step in messages. A
-- superuser passes, but without an approval only with p_force (audited).
CREATE FUNCTION _release_allowed(p_template prompt_templates, p_version integer, p_what text,
                                 p_label text DEFAULT 'production', p_force boolean DEFAULT false,
                                 p_check_approval boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_approval boolean := _requires_approval(p_template) AND p_check_approval;
    v_author text;
BEGIN
    IF NOT (_requires_approval(p_template) OR p_label = ANY (p_template.protected_labels)) THEN
        RETURN;
    END IF;
    IF v_approval AND NOT _approved(p_template.id, p_version) THEN
        IF _session_is_superuser() AND coalesce(p_force, false) THEN
            PERFORM _audit('force', 'version', p_template.name, p_template.id, p_version, NULL,
                           jsonb_build_object('action', p_what, 'bypassed', 'approval'));
            RAISE WARNING 'version % of template "%" is not approved; % forced by a superuser', p_version, p_template.name, p_what;
            RETURN;
        END IF;
        SELECT v.created_by INTO v_author FROM prompt_versions v
         WHERE v.template_id = p_template.id AND v.version = p_version;
        RAISE EXCEPTION 'version % of template "%" is not approved: % needs an approval', p_version, p_template.name, p_what
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The template requires approval; the version''s author is %s.', v_author),
                  HINT = format('A role other than %s approves it with SELECT pgprompt.prompt_approve(%L, %s, ''...'');',
                                v_author, p_template.name, p_version);
    END IF;
    IF NOT (_session_is_superuser() OR pg_has_role(session_user, 'pgprompt_releaser', 'MEMBER')) THEN
        RAISE EXCEPTION '% of template "%" takes a member of pgprompt_releaser', p_what, p_template.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = CASE WHEN _requires_approval(p_template)
                                THEN 'The template requires approval, so its releases are restricted.'
                                ELSE format('The label %s is protected.', p_label) END,
                  HINT = 'GRANT pgprompt_releaser TO the role that releases.';
    END IF;
END
$$;

COMMENT ON FUNCTION _release_allowed(prompt_templates, integer, text, text, boolean, boolean) IS
    'Internal: 55000 unless the version is approved where the template requires approval (a superuser may force it, audited), then 42501 unless the session user may move the label (pgprompt_releaser for protected labels and templates that require approval).';

-- Direct changes meet the same checks as the functions.
CREATE FUNCTION _templates_release_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_last prompt_activations;
BEGIN
    IF _restoring() OR _session_is_superuser() THEN
        RETURN NEW;
    END IF;
    IF (NEW.requires_approval, NEW.protected_labels) IS DISTINCT FROM (OLD.requires_approval, OLD.protected_labels)
       AND NOT pg_has_role(session_user, 'pgprompt_releaser', 'MEMBER') THEN
        RAISE EXCEPTION 'changing who may release template "%" takes a member of pgprompt_releaser', NEW.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.active_version IS DISTINCT FROM OLD.active_version THEN
        -- prompt_rollback recorded its step already: a rollback returns to a
        -- version that was released before, approved then or not.
        SELECT * INTO v_last FROM prompt_activations a WHERE a.template_id = NEW.id ORDER BY a.id DESC LIMIT 1;
        PERFORM _release_allowed(NEW, NEW.active_version, 'releasing version ' || NEW.active_version, 'production', false,
            NOT (v_last.action = 'rollback' AND v_last.version = NEW.active_version
                 AND v_last.activated_at = now()
                 AND EXISTS (SELECT 1 FROM prompt_activations a
                              WHERE a.template_id = NEW.id AND a.version = NEW.active_version AND a.id < v_last.id)));
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _templates_release_check() IS
    'Trigger: a release (a change of active_version, other than a rollback) and a change of requires_approval or protected_labels meet the approval and role checks.';

CREATE TRIGGER trigger_templates_release_check
    BEFORE UPDATE OF active_version, requires_approval, protected_labels ON prompt_templates
    FOR EACH ROW EXECUTE FUNCTION _templates_release_check();
COMMENT ON TRIGGER trigger_templates_release_check ON prompt_templates IS
    'Releases and changes of who may release are checked, whoever makes them.';

CREATE FUNCTION _labels_release_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_row prompt_labels := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    v_template prompt_templates;
BEGIN
    IF _restoring() OR _session_is_superuser() THEN
        RETURN v_row;
    END IF;
    SELECT * INTO v_template FROM prompt_templates t WHERE t.id = v_row.template_id;
    IF v_template.id IS NULL OR NOT v_row.label = ANY (v_template.protected_labels) THEN
        RETURN v_row;  -- a free label, or going with its template
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM _release_allowed(v_template, OLD.version, format('removing label %s', OLD.label), OLD.label, false, false);
    ELSIF TG_OP = 'INSERT' OR NEW.version IS DISTINCT FROM OLD.version THEN
        PERFORM _release_allowed(v_template, NEW.version, format('labelling version %s %s', NEW.version, NEW.label), NEW.label);
    END IF;
    RETURN v_row;
END
$$;

COMMENT ON FUNCTION _labels_release_check() IS
    'Trigger: setting, moving or removing a protected label takes pgprompt_releaser, and an approved version where the template requires approval.';

CREATE TRIGGER trigger_labels_release_check
    BEFORE INSERT OR UPDATE OR DELETE ON prompt_labels
    FOR EACH ROW EXECUTE FUNCTION _labels_release_check();
COMMENT ON TRIGGER trigger_labels_release_check ON prompt_labels IS
    'Protected labels move only as releases do.';

------------------------------------------------------------------------------
-- The API
------------------------------------------------------------------------------

CREATE FUNCTION prompt_approve(name text, version integer, comment text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates := _lock_template(prompt_approve.name);
BEGIN
    PERFORM _require_version(v_template, prompt_approve.version);
    INSERT INTO prompt_approvals AS a (template_id, version, comment)
    VALUES (v_template.id, prompt_approve.version, prompt_approve.comment)
    ON CONFLICT ON CONSTRAINT prompt_approvals_template_id_version_approved_by_key DO NOTHING;
    IF NOT FOUND THEN
        RAISE NOTICE 'version % of template "%" is already approved by %', prompt_approve.version, v_template.name, session_user;
    END IF;
END
$$;

COMMENT ON FUNCTION prompt_approve(text, integer, text) IS
$$Approves a version of a template: a template that requires approval releases only approved versions. The approver is the session user, who must not be the version's author; approvals are audited and listed by prompt_get. Any administrator may approve.
Errors: 22004 NULL name or version, 42704 unknown template or version, 42501 approving one's own version.$$;

CREATE FUNCTION prompt_protect(name text, requires_approval boolean DEFAULT NULL, protected_labels text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates := _lock_template(prompt_protect.name);
    v_label text;
BEGIN
    FOREACH v_label IN ARRAY coalesce(prompt_protect.protected_labels, '{}') LOOP
        IF v_label IS DISTINCT FROM 'production' THEN
            PERFORM _check_label(v_label);
        END IF;
    END LOOP;
    UPDATE prompt_templates t
       SET requires_approval = coalesce(prompt_protect.requires_approval, t.requires_approval),
           protected_labels = coalesce((SELECT array_agg(DISTINCT l ORDER BY l) FROM unnest(prompt_protect.protected_labels) l),
                                       CASE WHEN prompt_protect.protected_labels IS NULL THEN t.protected_labels ELSE '{}' END)
     WHERE t.id = v_template.id;
END
$$;

COMMENT ON FUNCTION prompt_protect(text, boolean, text[]) IS
$$Sets who may release a template: requires_approval (true: a version must be approved by a role other than its author before it is released or given a protected label, and releases take pgprompt_releaser) and protected_labels (labels only pgprompt_releaser moves; production among them makes every release take the role). NULL leaves a setting as it is. Audited. Only a member of pgprompt_releaser (or a superuser) may call it.
Errors: 22004 NULL name, 22023 an invalid label, 42704 unknown template, 42501 not a member of pgprompt_releaser.$$;

COMMENT ON FUNCTION _approval_required() IS
    'Internal: the setting pgprompt.require_approval (read in C, so that a value set before the library defined the setting is refused rather than believed).';

ALTER TYPE prompt_version_info ADD ATTRIBUTE approvals jsonb;
COMMENT ON COLUMN prompt_version_info.approvals IS 'Who approved the version, when and why: [{"by", "at", "comment"}] (prompt_approve).';

CREATE OR REPLACE FUNCTION _release(p_template prompt_templates, p_version integer, p_force boolean, p_action text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _require_version(p_template, p_version);
    IF p_template.active_version = p_version THEN
        RAISE NOTICE 'version % of template "%" is already the release (active, production)', p_version, p_template.name;
        RETURN;
    END IF;
    PERFORM _release_allowed(p_template, p_version, p_action, 'production', p_force);
    PERFORM _release_gate(p_template, p_version, p_action, p_force);
    INSERT INTO prompt_activations (template_id, version, previous_version, action, undo_to)
    VALUES (p_template.id, p_version, p_template.active_version, 'activate',
            (SELECT max(a.id) FROM prompt_activations a WHERE a.template_id = p_template.id));
    UPDATE prompt_templates t SET active_version = p_version WHERE t.id = p_template.id;
    -- Templates whose release includes this one render it from now on.
    PERFORM _gate_includers(p_template, 'production', p_force, p_action);
END
$$;

COMMENT ON FUNCTION _release(prompt_templates, integer, boolean, text) IS
    'Internal: makes a version the release (active and production) after the approval and role checks (approvals.sql) and its release gate; p_action names the caller''s step in messages.';

REVOKE ALL ON FUNCTION _release(prompt_templates, integer, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _release(prompt_templates, integer, boolean, text) TO pgprompt_admin;

CREATE OR REPLACE FUNCTION prompt_get(name text, version integer DEFAULT NULL, label text DEFAULT NULL)
RETURNS SETOF prompt_version_info
LANGUAGE plpgsql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates;
    v_version integer;
BEGIN
    PERFORM _require(prompt_get.name, 'name');
    IF prompt_get.version IS NOT NULL AND prompt_get.label IS NOT NULL THEN
        RAISE EXCEPTION 'pass either a version or a label, not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_template FROM prompt_templates t WHERE t.name = prompt_get.name;
    IF v_template.id IS NULL THEN
        RAISE EXCEPTION 'template "%" does not exist', prompt_get.name
            USING ERRCODE = 'undefined_object';
    END IF;
    v_version := CASE
        WHEN prompt_get.version IS NOT NULL THEN prompt_get.version
        WHEN prompt_get.label IS NULL OR prompt_get.label IN ('active', 'production') THEN v_template.active_version
        WHEN prompt_get.label = 'latest' THEN
            (SELECT max(v.version) FROM prompt_versions v WHERE v.template_id = v_template.id)
        ELSE (SELECT l.version FROM prompt_labels l
               WHERE l.template_id = v_template.id AND l.label = prompt_get.label)
    END;
    RETURN QUERY
        SELECT v_template.name, v.version, v.kind, v.body, v.model_config, v.variables,
               v.version = v_template.active_version,
               coalesce((SELECT array_agg(l.label ORDER BY l.label) FROM v_labels l
                          WHERE l.template_id = v.template_id AND l.version = v.version), '{}'),
               v.message, v.parent_version, v.created_at, v.created_by, v.options, v.input_schema,
               coalesce((SELECT jsonb_agg(jsonb_build_object('by', a.approved_by, 'at', a.approved_at, 'comment', a.comment)
                                          ORDER BY a.id)
                           FROM prompt_approvals a WHERE a.template_id = v.template_id AND a.version = v.version), '[]')
          FROM prompt_versions v
         WHERE v.template_id = v_template.id AND v.version = v_version;
    IF NOT FOUND THEN
        IF prompt_get.label IS NOT NULL THEN
            RAISE EXCEPTION 'label "%" of template "%" does not exist', prompt_get.label, prompt_get.name
                USING ERRCODE = 'undefined_object';
        END IF;
        RAISE EXCEPTION 'version % of template "%" does not exist', prompt_get.version, prompt_get.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION prompt_get(text, integer, text) IS
$$One version of a template: body, kind, config, render options, input schema, variables, number, whether it is active (the release), its labels (production on the release) and its approvals. Default: the release; label may also be production, active (both the release) or latest.
Errors: 22004 NULL name, 22023 both version and label, 42704 unknown template, version or label.$$;

CREATE OR REPLACE FUNCTION prompt_experiment_start(name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_experiment ab_test_experiments := _lock_experiment(prompt_experiment_start.name);
    v_template prompt_templates;
    v_other text;
    v_version integer;
BEGIN
    IF v_experiment.status NOT IN ('draft', 'stopped') THEN
        RAISE EXCEPTION 'experiment "%" is %, not draft or stopped', v_experiment.name, v_experiment.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF jsonb_array_length(v_experiment.variants) < 2 THEN
        RAISE EXCEPTION 'experiment "%" has % variant; it needs at least two to run', v_experiment.name, jsonb_array_length(v_experiment.variants)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Starts on one template queue here; the unique index backs this up.
    SELECT * INTO v_template FROM prompt_templates t WHERE t.id = v_experiment.template_id FOR UPDATE;
    SELECT e.name INTO v_other FROM ab_test_experiments e
     WHERE e.template_id = v_experiment.template_id AND e.status = 'running';
    IF v_other IS NOT NULL THEN
        RAISE EXCEPTION 'template "%" already has a running experiment: "%"',
              (SELECT t.name FROM prompt_templates t WHERE t.id = v_experiment.template_id), v_other
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Stop it first: SELECT pgprompt.prompt_experiment_stop(''' || v_other || ''');';
    END IF;
    -- Every variant goes live: each must pass the template's test cases and,
    -- where the template requires approval, be approved (the release
    -- itself, already live, excepted) and started by a releaser.
    FOR v_version IN SELECT DISTINCT (v ->> 'version')::integer FROM jsonb_array_elements(v_experiment.variants) v ORDER BY 1 LOOP
        PERFORM _release_allowed(v_template, v_version, 'starting experiment ' || v_experiment.name, 'production',
                                 prompt_experiment_start.force, v_version <> v_template.active_version);
        PERFORM _release_gate(v_template, v_version, 'start experiment ' || v_experiment.name, prompt_experiment_start.force);
    END LOOP;
    UPDATE ab_test_experiments e
       SET status = 'running', started_at = coalesce(e.started_at, now()), stopped_at = NULL
     WHERE e.id = v_experiment.id;
END
$$;

COMMENT ON FUNCTION prompt_experiment_start(text, boolean) IS
$$Starts (or resumes) an experiment: from its commit on, prompt_assign and prompt_render_for split the template's users between the variants. Every variant's version must pass the template's test cases unless force => true (audited).
Errors: 22004 NULL, 42704 unknown experiment, 55000 not draft or stopped, fewer than two variants, or another experiment running on the template, PG002 failing test cases.$$;

ALTER FUNCTION prompt_experiment_start(text, boolean) SECURITY DEFINER;
ALTER FUNCTION prompt_approve(text, integer, text) SECURITY DEFINER;
ALTER FUNCTION prompt_protect(text, boolean, text[]) SECURITY DEFINER;
REVOKE ALL ON FUNCTION _approval_required(), _approvals_stamp(), _audit_approvals(), _session_is_superuser(),
                       _requires_approval(prompt_templates), _approved(bigint, integer),
                       _release_allowed(prompt_templates, integer, text, text, boolean, boolean),
                       _templates_release_check(), _labels_release_check(),
                       prompt_approve(text, integer, text), prompt_protect(text, boolean, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _approval_required(), _approvals_stamp(), _audit_approvals(), _session_is_superuser(),
                          _requires_approval(prompt_templates), _approved(bigint, integer),
                          _release_allowed(prompt_templates, integer, text, text, boolean, boolean),
                          _templates_release_check(), _labels_release_check(),
                          prompt_approve(text, integer, text), prompt_protect(text, boolean, text[]) TO pgprompt_admin;
GRANT SELECT ON prompt_approvals TO pgprompt_app;
GRANT SELECT ON prompt_approvals TO pgprompt_admin;
GRANT USAGE, SELECT ON prompt_approvals_id_seq TO pgprompt_admin;

------------------------------------------------------------------------------
-- Composition: templates that include stored templates.
------------------------------------------------------------------------------

CREATE  FUNCTION "_template_includes"(
	"body" TEXT, /* Option < & str > */
	"kind" TEXT DEFAULT 'text' /* Option < & str > */
) RETURNS TABLE (
	"target" TEXT,  /* String */
	"template" TEXT,  /* String */
	"selector" TEXT  /* String */
)
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_template_includes_wrapper';

-- Composition: a template includes another stored template with
-- {% include "persona@production" %} (a label, production, latest) or
-- {% include "persona@3" %} (a version). Rendering resolves the include
-- like any render (so moving persona's label changes what its includers
-- render from the next statement on) and follows at most 5 levels.
--
-- prompt_save records what each version includes, refuses includes of
-- templates, labels or versions that do not exist (42704) or of chat
-- templates (42809), and refuses a version that would close a cycle
-- (42P17) or nest includes deeper than 5 (54001), over the includes of
-- every version of every template: a label could point at any of them.
-- Releasing a template re-runs the test cases of the released versions
-- that include it (by the label that moves), so a child's release cannot
-- silently break a parent.

CREATE TABLE prompt_includes (
    template_id bigint NOT NULL,
    version     integer NOT NULL,
    target      text NOT NULL,
    child       text NOT NULL,
    selector    text NOT NULL,
    PRIMARY KEY (template_id, version, target),
    FOREIGN KEY (template_id, version) REFERENCES prompt_versions (template_id, version) ON DELETE CASCADE
);

CREATE INDEX prompt_includes_child ON prompt_includes (child, selector);

COMMENT ON TABLE prompt_includes IS
    'What each version includes ({% include "name@label" %}), recorded by prompt_save: the dependencies between templates.';
COMMENT ON COLUMN prompt_includes.template_id IS 'The including template.';
COMMENT ON COLUMN prompt_includes.version IS 'The including version.';
COMMENT ON COLUMN prompt_includes.target IS 'The include as written: name@label or name@version.';
COMMENT ON COLUMN prompt_includes.child IS 'The included template''s name.';
COMMENT ON COLUMN prompt_includes.selector IS 'The label (production, latest, any label) or version number it is pinned by.';
COMMENT ON INDEX prompt_includes_child IS 'Who includes a template (the release gate of its includers).';

SELECT pg_catalog.pg_extension_config_dump('prompt_includes', '');

-- Records and checks what a new version includes (prompt_save calls it).
CREATE FUNCTION _record_includes(p_template_id bigint, p_version integer, p_body text, p_kind text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    v_name text := (SELECT t.name FROM prompt_templates t WHERE t.id = p_template_id);
    v_child prompt_templates;
    v_version integer;
    v_kind text;
    v_path text[];
    v_deep text[];
BEGIN
    INSERT INTO prompt_includes (template_id, version, target, child, selector)
    SELECT p_template_id, p_version, i.target, i.template, i.selector FROM _template_includes(p_body, p_kind) i
    ON CONFLICT DO NOTHING;
    FOR r IN SELECT * FROM prompt_includes i WHERE i.template_id = p_template_id AND i.version = p_version ORDER BY i.target LOOP
        SELECT * INTO v_child FROM prompt_templates t WHERE t.name = r.child;
        IF v_child.id IS NULL THEN
            RAISE EXCEPTION 'template "%" includes %, but template "%" does not exist', v_name, r.target, r.child
                USING ERRCODE = 'undefined_object';
        END IF;
        v_version := CASE
            WHEN r.selector ~ '^[0-9]+$' THEN r.selector::integer
            WHEN r.selector IN ('production', 'active') THEN v_child.active_version
            WHEN r.selector = 'latest' THEN (SELECT max(v.version) FROM prompt_versions v WHERE v.template_id = v_child.id)
            ELSE (SELECT l.version FROM prompt_labels l WHERE l.template_id = v_child.id AND l.label = r.selector)
        END;
        SELECT v.kind INTO v_kind FROM prompt_versions v WHERE v.template_id = v_child.id AND v.version = v_version;
        IF v_kind IS NULL THEN
            RAISE EXCEPTION 'template "%" includes %, but template "%" has no % %', v_name, r.target, r.child,
                            CASE WHEN r.selector ~ '^[0-9]+$' THEN 'version' ELSE 'label' END, r.selector
                USING ERRCODE = 'undefined_object';
        END IF;
        IF v_kind <> 'text' THEN
            RAISE EXCEPTION 'template "%" includes %, a chat template: only text templates can be included', v_name, r.target
                USING ERRCODE = 'wrong_object_type';
        END IF;
    END LOOP;

    -- Every chain of includes from this version (to 7 steps), over the
    -- includes of every version: one returning to this template is a
    -- cycle; none may be deeper than 5.
    WITH RECURSIVE chain (child, path) AS (
        SELECT i.child, ARRAY[v_name, i.child]
          FROM prompt_includes i WHERE i.template_id = p_template_id AND i.version = p_version
        UNION
        SELECT i.child, c.path || i.child
          FROM chain c
          JOIN prompt_templates t ON t.name = c.child
          JOIN prompt_includes i ON i.template_id = t.id
         WHERE c.child <> v_name AND cardinality(c.path) <= 7
    )
    SELECT (SELECT c.path FROM chain c WHERE c.child = v_name ORDER BY cardinality(c.path) LIMIT 1),
           (SELECT c.path FROM chain c WHERE cardinality(c.path) > 6 ORDER BY cardinality(c.path) LIMIT 1)
      INTO v_path, v_deep;
    IF v_path IS NOT NULL THEN
        RAISE EXCEPTION 'template "%" would include itself: %', v_name, array_to_string(v_path, ' -> ')
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = 'Includes are followed through every version of each template, since a label may point at any of them.';
    END IF;
    IF v_deep IS NOT NULL THEN
        RAISE EXCEPTION 'template "%" would nest includes deeper than 5 levels: %', v_name, array_to_string(v_deep, ' -> ')
            USING ERRCODE = 'statement_too_complex';
    END IF;
END
$$;

COMMENT ON FUNCTION _record_includes(bigint, integer, text, text) IS
    'Internal: records what a new version includes and checks it: 42704 an unknown template, label or version, 42809 a chat template, 42P17 a cycle, 54001 deeper than 5 levels.';

-- The release gate of the templates whose release includes p_template by
-- p_selector: their test cases must pass with the new release in place.
CREATE FUNCTION _gate_includers(p_template prompt_templates, p_selector text, p_force boolean, p_action text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    r prompt_templates;
BEGIN
    FOR r IN
        SELECT DISTINCT t.* FROM prompt_includes i
          JOIN prompt_templates t ON t.id = i.template_id AND t.active_version = i.version
         WHERE i.child = p_template.name
           AND (i.selector = p_selector OR (p_selector = 'production' AND i.selector = 'active'))
         ORDER BY t.name
    LOOP
        PERFORM _release_gate(r, r.active_version,
                              format('%s of %s (included by version %s of %s)', p_action, p_template.name, r.active_version, r.name),
                              p_force);
    END LOOP;
END
$$;

COMMENT ON FUNCTION _gate_includers(prompt_templates, text, boolean, text) IS
    'Internal: runs the release gate of every released version that includes the template by the label that moves (PG002 when one of their test cases fails, unless forced).';

COMMENT ON FUNCTION _template_includes(text, text) IS
    'Internal: the stored templates a body includes (target as written, template, label or version); validates the body like prompt_variables (42601 for an include that is not "name@label" or "name@version").';

REVOKE ALL ON FUNCTION _template_includes(text, text), _record_includes(bigint, integer, text, text),
                       _gate_includers(prompt_templates, text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _template_includes(text, text), _record_includes(bigint, integer, text, text),
                          _gate_includers(prompt_templates, text, boolean, text) TO pgprompt_admin;
GRANT SELECT ON prompt_includes TO pgprompt_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON prompt_includes TO pgprompt_admin;

------------------------------------------------------------------------------
-- Lossless export and import: who wrote each version, and imported approvals.
------------------------------------------------------------------------------

ALTER TABLE prompt_versions ADD COLUMN authored_by text;
ALTER TABLE prompt_versions ADD COLUMN authored_at timestamptz;
COMMENT ON COLUMN prompt_versions.authored_by IS
    'For a version imported from another database (prompt_import_version): who wrote it there. created_by is then who imported it; neither may approve it.';
COMMENT ON COLUMN prompt_versions.authored_at IS 'For an imported version: when it was saved where it was written.';

-- Import of templates exported from another database (`pgprompt export`
-- and `import`): every version with who wrote it and when, and the
-- approvals it had there, reproduced so that exporting again gives the
-- same files.
--
-- Imported history is history, not a new event: an imported version keeps
-- its author in authored_by (created_by is the importer, and neither may
-- approve it), and imported approvals go to their own table, which no
-- release check reads: a template that requires approval is approved
-- again where it is released.

CREATE TABLE prompt_imported_approvals (
    template_id bigint NOT NULL,
    version     integer NOT NULL,
    approved_by text NOT NULL,
    approved_at timestamptz NOT NULL,
    comment     text,
    imported_by text NOT NULL DEFAULT session_user,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version, approved_by, approved_at),
    FOREIGN KEY (template_id, version) REFERENCES prompt_versions (template_id, version) ON DELETE CASCADE
);

COMMENT ON TABLE prompt_imported_approvals IS
    'Approvals a version had in the database it was exported from: kept for the record (and the next export), never counted as approvals here.';
COMMENT ON COLUMN prompt_imported_approvals.template_id IS 'The template.';
COMMENT ON COLUMN prompt_imported_approvals.version IS 'The version.';
COMMENT ON COLUMN prompt_imported_approvals.approved_by IS 'Who approved it there.';
COMMENT ON COLUMN prompt_imported_approvals.approved_at IS 'When.';
COMMENT ON COLUMN prompt_imported_approvals.comment IS 'What they said.';
COMMENT ON COLUMN prompt_imported_approvals.imported_by IS 'Session user who imported it.';
COMMENT ON COLUMN prompt_imported_approvals.imported_at IS 'When it was imported.';

SELECT pg_catalog.pg_extension_config_dump('prompt_imported_approvals', '');

CREATE FUNCTION prompt_import_version(name text, version integer, body text, kind text, config jsonb, options jsonb,
                                      input_schema jsonb, message text, parent integer, author text, authored_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates;
    v_existing prompt_versions;
    v_next integer;
    v_saved integer;
    v_differs text[];
BEGIN
    PERFORM _require(prompt_import_version.name, 'name');
    PERFORM _require(prompt_import_version.version, 'version');
    PERFORM _require(prompt_import_version.author, 'author');
    PERFORM _require(prompt_import_version.authored_at, 'authored_at');
    SELECT * INTO v_template FROM prompt_templates t WHERE t.name = prompt_import_version.name FOR UPDATE;
    SELECT * INTO v_existing FROM prompt_versions v
     WHERE v.template_id = v_template.id AND v.version = prompt_import_version.version;
    IF v_existing.id IS NOT NULL THEN
        -- The same version must be the same: history never forks silently.
        SELECT array_agg(d) INTO v_differs FROM unnest(ARRAY[
            CASE WHEN v_existing.body <> prompt_import_version.body THEN 'body' END,
            CASE WHEN v_existing.kind <> prompt_import_version.kind THEN 'kind' END,
            CASE WHEN v_existing.model_config <> _model_config(coalesce(prompt_import_version.config, '{}')) THEN 'config' END,
            CASE WHEN v_existing.options <> _render_options(coalesce(prompt_import_version.options, '{}')) THEN 'options' END,
            CASE WHEN v_existing.input_schema IS DISTINCT FROM _input_schema(prompt_import_version.input_schema) THEN 'input_schema' END,
            CASE WHEN v_existing.message IS DISTINCT FROM prompt_import_version.message THEN 'message' END,
            CASE WHEN v_existing.parent_version IS DISTINCT FROM prompt_import_version.parent THEN 'parent' END]) d
         WHERE d IS NOT NULL;
        IF v_differs IS NOT NULL THEN
            RAISE EXCEPTION 'version % of template "%" differs from the imported one (%)', prompt_import_version.version,
                            prompt_import_version.name, array_to_string(v_differs, ', ')
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'The two histories have forked: import into a database whose versions of this template are the same, or none.';
        END IF;
        RETURN false;
    END IF;
    v_next := coalesce((SELECT max(v.version) FROM prompt_versions v WHERE v.template_id = v_template.id), 0) + 1;
    IF prompt_import_version.version <> v_next THEN
        RAISE EXCEPTION 'template "%" has % version(s): version % cannot be imported before version %', prompt_import_version.name,
                        v_next - 1, prompt_import_version.version, v_next
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v_saved := _save(prompt_import_version.name, prompt_import_version.body, coalesce(prompt_import_version.config, '{}'),
                     prompt_import_version.message, prompt_import_version.kind, NULL, NULL, prompt_import_version.parent,
                     coalesce(prompt_import_version.options, '{}'), coalesce(prompt_import_version.input_schema, '{}'),
                     prompt_import_version.author, prompt_import_version.authored_at);
    RETURN true;
END
$$;

COMMENT ON FUNCTION prompt_import_version(text, integer, text, text, jsonb, jsonb, jsonb, text, integer, text, timestamptz) IS
$$Imports one version exported from another database (pgprompt import calls it): the next version of the template (created if new) with its body, kind, config, options, input schema, message and parent, keeping who wrote it and when (authored_by, authored_at; created_by is the importer). The same version imported again changes nothing and returns false; a version that differs from the one stored, or that skips a number, is refused (55000).
Errors: 22004 NULL name, version, author or authored_at, 55000 a forked or incomplete history, and those of prompt_save.$$;

CREATE FUNCTION prompt_import_approval(name text, version integer, approved_by text, approved_at timestamptz, comment text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates := _lock_template(prompt_import_approval.name);
BEGIN
    PERFORM _require_version(v_template, prompt_import_approval.version);
    PERFORM _require(prompt_import_approval.approved_by, 'approved_by');
    PERFORM _require(prompt_import_approval.approved_at, 'approved_at');
    INSERT INTO prompt_imported_approvals AS a (template_id, version, approved_by, approved_at, comment)
    VALUES (v_template.id, prompt_import_approval.version, prompt_import_approval.approved_by,
            prompt_import_approval.approved_at, prompt_import_approval.comment)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION prompt_import_approval(text, integer, text, timestamptz, text) IS
$$Records an approval a version had in the database it was exported from (pgprompt import calls it). Kept for the record, never counted as an approval here. Returns false if it was recorded already.
Errors: 22004 NULL argument, 42704 unknown template or version.$$;

ALTER FUNCTION prompt_import_version(text, integer, text, text, jsonb, jsonb, jsonb, text, integer, text, timestamptz) SECURITY DEFINER;
ALTER FUNCTION prompt_import_approval(text, integer, text, timestamptz, text) SECURITY DEFINER;
REVOKE ALL ON FUNCTION _save(text, text, jsonb, text, text, text, text, integer, jsonb, jsonb, text, timestamptz),
                       prompt_import_version(text, integer, text, text, jsonb, jsonb, jsonb, text, integer, text, timestamptz),
                       prompt_import_approval(text, integer, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _save(text, text, jsonb, text, text, text, text, integer, jsonb, jsonb, text, timestamptz),
                          prompt_import_version(text, integer, text, text, jsonb, jsonb, jsonb, text, integer, text, timestamptz),
                          prompt_import_approval(text, integer, text, timestamptz, text) TO pgprompt_admin;
GRANT SELECT ON prompt_imported_approvals TO pgprompt_admin;

------------------------------------------------------------------------------
-- What database drivers send: overloads for typed parameters (drivers.sql).
------------------------------------------------------------------------------

-- A user id of any type but an array, as its text (42 -> '42', a uuid in
-- its canonical form): the user's bucket is the bucket of that text.
CREATE FUNCTION prompt_bucket(user_id anynonarray, salt text DEFAULT '') RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pgprompt.prompt_bucket(user_id::pg_catalog.text, salt) $$;

CREATE FUNCTION prompt_assign(template text, user_id anynonarray) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pgprompt.prompt_assign(template, user_id::pg_catalog.text) $$;

CREATE FUNCTION prompt_render_for(template text, user_id anynonarray, vars jsonb DEFAULT '{}')
RETURNS TABLE (prompt text, messages jsonb, version integer, experiment text, variant text, config jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT * FROM pgprompt.prompt_render_for(template, user_id::pg_catalog.text, vars) $$;

CREATE FUNCTION prompt_render_for(template text, user_id anynonarray, vars json)
RETURNS TABLE (prompt text, messages jsonb, version integer, experiment text, variant text, config jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT * FROM pgprompt.prompt_render_for(template, user_id::pg_catalog.text, vars) $$;

CREATE FUNCTION prompt_render_for(template text, user_id anynonarray, vars text)
RETURNS TABLE (prompt text, messages jsonb, version integer, experiment text, variant text, config jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT * FROM pgprompt.prompt_render_for(template, user_id::pg_catalog.text, vars) $$;

-- user_id comes first so that this overload is chosen only when user_id is
-- given with a type other than text (every other argument is named or
-- defaulted as in the main form, which callers reach with named arguments).
CREATE FUNCTION prompt_log_execution(
    user_id anynonarray,
    template text,
    version integer DEFAULT NULL,
    model text DEFAULT NULL,
    input_tokens bigint DEFAULT 0,
    output_tokens bigint DEFAULT 0,
    latency_ms double precision DEFAULT NULL,
    success boolean DEFAULT true,
    rendered_prompt text DEFAULT NULL,
    response text DEFAULT NULL,
    error_message text DEFAULT NULL,
    cached_input_tokens bigint DEFAULT 0,
    experiment text DEFAULT NULL,
    variant text DEFAULT NULL,
    metadata jsonb DEFAULT '{}',
    executed_at timestamptz DEFAULT now(),
    trace_id text DEFAULT NULL,
    parent_id bigint DEFAULT NULL,
    session_id text DEFAULT NULL
) RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ SELECT pgprompt.prompt_log_execution(
    template => template, version => version, model => model, input_tokens => input_tokens,
    output_tokens => output_tokens, latency_ms => latency_ms, success => success, user_id => user_id::pg_catalog.text,
    rendered_prompt => rendered_prompt, response => response, error_message => error_message,
    cached_input_tokens => cached_input_tokens, experiment => experiment, variant => variant,
    metadata => metadata, executed_at => executed_at, trace_id => trace_id, parent_id => parent_id,
    session_id => session_id) $$;

-- A score given as double precision, as numeric: exactly the number for
-- integers up to 2^53 and PostgreSQL's 15 significant digits for fractions
-- (0.1 stays 0.1). Integer literals reach this form too (double precision
-- is the preferred numeric type), with the same value.
CREATE FUNCTION prompt_score(execution bigint, name text, value double precision, comment text DEFAULT NULL,
                             source text DEFAULT 'api') RETURNS bigint
LANGUAGE sql VOLATILE
RETURN pgprompt.prompt_score(execution, name, value::pg_catalog.numeric, comment, source);

CREATE FUNCTION prompt_score_trace(trace_id text, name text, value double precision, comment text DEFAULT NULL,
                                   source text DEFAULT 'api') RETURNS bigint
LANGUAGE sql VOLATILE
RETURN pgprompt.prompt_score_trace(trace_id, name, value::pg_catalog.numeric, comment, source);

COMMENT ON FUNCTION prompt_bucket(anynonarray, text) IS
    'prompt_bucket with a user id of another type than text (an integer or uuid a driver sends typed): the bucket of its text form.';
COMMENT ON FUNCTION prompt_assign(text, anynonarray) IS
    'prompt_assign with a user id of another type than text (an integer or uuid a driver sends typed), read as its text form.';
COMMENT ON FUNCTION prompt_render_for(text, anynonarray, jsonb) IS
    'prompt_render_for with a user id of another type than text (an integer or uuid a driver sends typed), read as its text form.';
COMMENT ON FUNCTION prompt_render_for(text, anynonarray, json) IS
    'prompt_render_for with json vars and a user id of another type than text, read as its text form.';
COMMENT ON FUNCTION prompt_render_for(text, anynonarray, text) IS
    'prompt_render_for with vars as JSON text and a user id of another type than text, read as its text form.';
COMMENT ON FUNCTION prompt_log_execution(anynonarray, text, integer, text, bigint, bigint, double precision, boolean, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text) IS
    'prompt_log_execution with a user id of another type than text (an integer or uuid a driver sends typed), logged as its text form. Call it with named arguments, as the main form.';
COMMENT ON FUNCTION prompt_score(bigint, text, double precision, text, text) IS
    'prompt_score with a numeric score given as double precision (what drivers send for a float, and what integer literals resolve to): the value as numeric.';
COMMENT ON FUNCTION prompt_score_trace(text, text, double precision, text, text) IS
    'prompt_score_trace with a numeric score given as double precision: the value as numeric.';

REVOKE ALL ON FUNCTION prompt_bucket(anynonarray, text), prompt_assign(text, anynonarray),
                       prompt_render_for(text, anynonarray, jsonb), prompt_render_for(text, anynonarray, json),
                       prompt_render_for(text, anynonarray, text),
                       prompt_log_execution(anynonarray, text, integer, text, bigint, bigint, double precision, boolean, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text),
                       prompt_score(bigint, text, double precision, text, text),
                       prompt_score_trace(text, text, double precision, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_bucket(anynonarray, text), prompt_assign(text, anynonarray),
                          prompt_render_for(text, anynonarray, jsonb), prompt_render_for(text, anynonarray, json),
                          prompt_render_for(text, anynonarray, text),
                          prompt_log_execution(anynonarray, text, integer, text, bigint, bigint, double precision, boolean, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text),
                          prompt_score(bigint, text, double precision, text, text),
                          prompt_score_trace(text, text, double precision, text, text) TO pgprompt_app, pgprompt_admin;

------------------------------------------------------------------------------
-- The learned injection detector: findings carry its score.
------------------------------------------------------------------------------

ALTER TABLE prompt_guardrail_violations ADD COLUMN score real;
COMMENT ON COLUMN prompt_guardrail_violations.score IS 'Injection findings: the learned detector''s probability (0 to 1) that the text around the finding is an injection; NULL for other kinds.';

CREATE OR REPLACE FUNCTION _record_violations(p_findings jsonb, p_direction text, p_template text,
                                   p_actor text DEFAULT session_user,
                                   p_application text DEFAULT nullif(current_setting('application_name', true), ''),
                                   p_execution_id bigint DEFAULT NULL)
RETURNS integer
LANGUAGE sql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO prompt_guardrail_violations
            (guardrail_id, guardrail, template, direction, kind, entity, severity, action, start_pos, end_pos, actor, application,
             execution_id, score)
        SELECT f.guardrail_id, f.guardrail, p_template, p_direction, f.kind, f.entity, f.severity, f.action,
               f.start_pos, f.end_pos, p_actor, p_application, p_execution_id, f.score
          FROM jsonb_to_recordset(p_findings) AS f(guardrail_id bigint, guardrail text, kind text, entity text,
                                                   severity text, action text, start_pos int, end_pos int, score real)
        RETURNING 1)
    SELECT count(*)::int FROM ins;
$$;


DROP FUNCTION prompt_guard_scan(text, text);
CREATE FUNCTION "prompt_guard_scan"(
	"content" TEXT, /* Option < & str > */
	"direction" TEXT DEFAULT 'input' /* Option < & str > */
) RETURNS TABLE (
	"guardrail" TEXT,  /* String */
	"kind" TEXT,  /* String */
	"entity" TEXT,  /* String */
	"start_pos" INT,  /* i32 */
	"end_pos" INT,  /* i32 */
	"severity" TEXT,  /* String */
	"action" TEXT,  /* String */
	"score" real  /* Option < f32 > */
)
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'prompt_guard_scan_scored_wrapper';

COMMENT ON FUNCTION prompt_guard_scan(text, text) IS
$$Findings of the enabled guardrails covering the direction (input, output or both; context: content going into a prompt, such as a retrieved document or a tool's result, which input guardrails read and where instructions addressed to the model are found as INDIRECT_INSTRUCTION): guardrail, kind, entity, character offsets into the content (start_pos from 0, end_pos excluded), severity, action, and for injection guardrails score, the learned detector's probability (0 to 1) that the text around the finding is an injection. Injection guardrails report a window of text the detector scores at or above config.threshold (default: the model's, chosen for about 1% false positives on held-back benign prompts; 1 turns the detector off) as entity PROMPT_INJECTION, besides what their phrase rules find. The text is folded against evasions (Unicode compatibility forms, invisible characters, look-alike letters) and base64, base32, hex, percent-encoded and \uNNNN-escaped runs, base85, bits, uuencode, quoted-printable, Morse code and Braille are decoded and scanned too; with injection category encoded (not a default), such a run of an encoding of bytes or a code in a prompt (direction input or both) that decodes to words is itself an injection finding, ENCODED_TEXT (up to 1 MB of runs per text; runs beyond that are findings of entity UNSCANNED_ENCODING for every guardrail, so blocking and redaction fail closed). Writes nothing.
Errors: 22004 NULL argument, 22023 bad direction, 54000 content over pgprompt.max_scan_bytes.$$;

REVOKE ALL ON FUNCTION prompt_guard_scan(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prompt_guard_scan(text, text) TO pgprompt_app, pgprompt_admin;

------------------------------------------------------------------------------
-- Content scans (direction context), injection categories fake_delimiter and
-- indirect, the learned detector's threshold.
------------------------------------------------------------------------------

ALTER TABLE prompt_guardrail_violations DROP CONSTRAINT prompt_guardrail_violations_direction_check;
ALTER TABLE prompt_guardrail_violations ADD CONSTRAINT prompt_guardrail_violations_direction_check
    CHECK (direction IN ('input', 'output', 'both', 'context'));
COMMENT ON COLUMN prompt_guardrail_violations.direction IS 'input, output or both: what was scanned; context: content going into a prompt (a document, a tool''s result).';
COMMENT ON COLUMN prompt_guardrails.config IS
$$Per kind. pii: {"entities": [...], "allow_list": [...]}. injection: {"categories": ["instruction_override", "role_play", "prompt_extraction", "fake_delimiter", "indirect"] by default, "encoded" on request, "phrases": [...], "threshold": the learned detector's (1 turns it off)}. toxicity: {"categories": ["profanity", "insult", "slur", "threat"], "words": [...]}. regex: {"patterns": [...], "entity": "NAME", "case_insensitive": false}. keywords: {"keywords": [...], "entity": "NAME", "case_sensitive": false}. Every kind takes "allow_list": exact matches to ignore.$$;
COMMENT ON FUNCTION prompt_guard_enforce(text, text, text) IS
$$Scans content with the enabled guardrails for the direction (input, output, both, or context: content going into a prompt, such as a retrieved document or a tool's result, read by input guardrails and by the rules for instructions addressed to the model) and applies their actions: every finding is recorded in prompt_guardrail_violations (never the matched text); warn raises a WARNING; redact replaces the match with <ENTITY>; block raises ERROR with SQLSTATE PG001 naming the guardrails (the findings are still recorded). Returns the content, redacted where asked.
Errors: 22004 NULL content or direction, 22023 bad direction, 54000 content over pgprompt.max_scan_bytes, PG001 blocked.$$;

------------------------------------------------------------------------------
-- Webhooks (pgprompt serve --webhooks): their table and delivery log; the
-- audit log keeps a secret as a fingerprint.
------------------------------------------------------------------------------

-- A row as the audit log keeps it: a secret (a webhook's HMAC key) as a
-- fingerprint, so a rotation shows without the key being kept.
CREATE FUNCTION _audit_redact(p_row jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_row ? 'secret'
                THEN p_row || jsonb_build_object('secret',
                         'sha256:' || left(encode(sha256(convert_to(p_row ->> 'secret', 'UTF8')), 'hex'), 12))
                ELSE p_row END
$$;

COMMENT ON FUNCTION _audit_redact(jsonb) IS
    'A row as the audit log keeps it: its secret, if it has one, replaced by the first 12 hex digits of its SHA-256.';

CREATE OR REPLACE FUNCTION _audit_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_old jsonb := _audit_redact(CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
    v_new jsonb := _audit_redact(CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    v_name text := coalesce(v_new, v_old) ->> TG_ARGV[1];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT _restoring() THEN
            PERFORM _audit('create', TG_ARGV[0], v_name, NULL, NULL, NULL, v_new);
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF (v_old - 'updated_at' - 'updated_by') IS DISTINCT FROM (v_new - 'updated_at' - 'updated_by') THEN
            PERFORM _audit(CASE WHEN (v_old ->> 'enabled')::boolean AND NOT (v_new ->> 'enabled')::boolean THEN 'disable'
                                WHEN NOT (v_old ->> 'enabled')::boolean AND (v_new ->> 'enabled')::boolean THEN 'enable'
                                -- Experiments: the lifecycle step.
                                WHEN (v_old ->> 'status') IS DISTINCT FROM (v_new ->> 'status') THEN
                                    CASE v_new ->> 'status' WHEN 'running' THEN 'start' WHEN 'stopped' THEN 'stop'
                                                            WHEN 'concluded' THEN 'conclude' ELSE 'update' END
                                ELSE 'update' END,
                           TG_ARGV[0], v_name, NULL, NULL, v_old, v_new);
        END IF;
    ELSIF NOT _restoring() THEN
        PERFORM _audit('delete', TG_ARGV[0], v_name, NULL, NULL, v_old, NULL);
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION _audit_row() IS
    'Trigger: audits creation, changes (enable, disable, start, stop, conclude, update) and deletion of a configuration row. Arguments: object type, name column.';

REVOKE ALL ON FUNCTION _audit_redact(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _audit_redact(jsonb) TO pgprompt_admin;

CREATE TABLE prompt_webhooks (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE
                CONSTRAINT prompt_webhooks_name_format CHECK (name ~ '^[a-z0-9_][a-z0-9_.-]{0,99}$'),
    url         text NOT NULL
                CONSTRAINT prompt_webhooks_url_format CHECK (length(url) <= 2000 AND url ~ '^https?://[^/?#@[:space:]]+(/[^[:space:]]*)?$'),
    channels    text[] NOT NULL DEFAULT ARRAY['pgprompt_changes', 'pgprompt_alerts']
                CONSTRAINT prompt_webhooks_channels CHECK (
                    cardinality(channels) > 0 AND channels <@ ARRAY['pgprompt_changes', 'pgprompt_alerts']),
    secret      text NOT NULL
                CONSTRAINT prompt_webhooks_secret_length CHECK (length(secret) BETWEEN 16 AND 200),
    format      text NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    enabled     boolean NOT NULL DEFAULT true,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT session_user,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT session_user
);

COMMENT ON TABLE prompt_webhooks IS
    'Where pgprompt serve --webhooks delivers the events of pgprompt_changes and pgprompt_alerts: one signed POST per event and URL.';
COMMENT ON COLUMN prompt_webhooks.id IS 'Surrogate key.';
COMMENT ON COLUMN prompt_webhooks.name IS 'Unique name (lower-case letters, digits, _ . -).';
COMMENT ON COLUMN prompt_webhooks.url IS
    'http:// or https:// URL the events are POSTed to. The server contacts only loopback addresses and the hosts its operator allowed (--webhook-hosts), and follows no redirects.';
COMMENT ON COLUMN prompt_webhooks.channels IS 'Which events: pgprompt_changes (templates, labels, releases, guardrails, prices, ...), pgprompt_alerts (firing alert rules).';
COMMENT ON COLUMN prompt_webhooks.secret IS
    'The HMAC-SHA256 key of the X-Pgprompt-Signature header: v1=hex(HMAC(secret, timestamp || ''.'' || body)). 16 to 200 characters; never written to the audit log.';
COMMENT ON COLUMN prompt_webhooks.format IS 'json: {"event_id", "channel", "payload", "sent_at"}; slack: {"text"} for a Slack incoming webhook.';
COMMENT ON COLUMN prompt_webhooks.enabled IS 'Disabled webhooks receive nothing.';
COMMENT ON COLUMN prompt_webhooks.description IS 'What it is for.';
COMMENT ON COLUMN prompt_webhooks.created_at IS 'When it was created.';
COMMENT ON COLUMN prompt_webhooks.created_by IS 'Session user who created it.';
COMMENT ON COLUMN prompt_webhooks.updated_at IS 'Last change (maintained by trigger).';
COMMENT ON COLUMN prompt_webhooks.updated_by IS 'Session user of the last change (maintained by trigger).';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_webhooks
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_webhooks IS
    'created_at/by and updated_at/by of a new webhook are now and the session user.';

CREATE TRIGGER trigger_update_prompt_webhooks_timestamp
    BEFORE UPDATE ON prompt_webhooks
    FOR EACH ROW EXECUTE FUNCTION _touch_updated();
COMMENT ON TRIGGER trigger_update_prompt_webhooks_timestamp ON prompt_webhooks IS
    'Maintains updated_at and updated_by.';

CREATE TRIGGER trigger_audit_prompt_webhooks
    AFTER INSERT OR UPDATE OR DELETE ON prompt_webhooks
    FOR EACH ROW EXECUTE FUNCTION _audit_row('webhook', 'name');
COMMENT ON TRIGGER trigger_audit_prompt_webhooks ON prompt_webhooks IS
    'Writes prompt_audit_logs (the secret as a fingerprint, never in clear).';

CREATE TABLE prompt_webhook_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id   bigint REFERENCES prompt_webhooks (id) ON DELETE SET NULL,
    webhook      text NOT NULL,
    event_id     text NOT NULL,
    channel      text NOT NULL,
    payload      jsonb,
    attempt      integer NOT NULL CHECK (attempt >= 1),
    attempted_at timestamptz NOT NULL DEFAULT now(),
    status       integer,
    error        text,
    delivered    boolean NOT NULL,
    duration_ms  integer
);

CREATE INDEX prompt_webhook_deliveries_event_idx ON prompt_webhook_deliveries (event_id);
CREATE INDEX prompt_webhook_deliveries_attempted_idx ON prompt_webhook_deliveries (attempted_at);

COMMENT ON TABLE prompt_webhook_deliveries IS
    'Every attempt pgprompt serve made to deliver an event to a webhook: one row per attempt, retries included. Append-only for administrators (DELETE to prune).';
COMMENT ON COLUMN prompt_webhook_deliveries.id IS 'Order of attempts.';
COMMENT ON COLUMN prompt_webhook_deliveries.webhook_id IS 'The webhook (NULL once it is deleted).';
COMMENT ON COLUMN prompt_webhook_deliveries.webhook IS 'The webhook''s name at the time.';
COMMENT ON COLUMN prompt_webhook_deliveries.event_id IS 'The event''s idempotency key (the Idempotency-Key header): the same for every attempt and URL of one event.';
COMMENT ON COLUMN prompt_webhook_deliveries.channel IS 'pgprompt_changes or pgprompt_alerts.';
COMMENT ON COLUMN prompt_webhook_deliveries.payload IS 'The notification''s payload.';
COMMENT ON COLUMN prompt_webhook_deliveries.attempt IS '1 for the first try, then each retry.';
COMMENT ON COLUMN prompt_webhook_deliveries.attempted_at IS 'When the attempt started.';
COMMENT ON COLUMN prompt_webhook_deliveries.status IS 'The HTTP status answered; NULL when there was no answer.';
COMMENT ON COLUMN prompt_webhook_deliveries.error IS 'Why it failed (timeout, refused connection, HTTP status, a host not allowed); NULL when delivered.';
COMMENT ON COLUMN prompt_webhook_deliveries.delivered IS 'Whether the receiver answered 2xx.';
COMMENT ON COLUMN prompt_webhook_deliveries.duration_ms IS 'How long the attempt took.';

SELECT pg_catalog.pg_extension_config_dump('prompt_webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_webhooks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_webhook_deliveries_id_seq', '');

GRANT SELECT, INSERT, UPDATE, DELETE ON prompt_webhooks TO pgprompt_admin;
GRANT SELECT, INSERT, DELETE ON prompt_webhook_deliveries TO pgprompt_admin;
GRANT USAGE, SELECT ON SEQUENCE prompt_webhooks_id_seq, prompt_webhook_deliveries_id_seq TO pgprompt_admin;

-- Events: every change and firing alert recorded as well as NOTIFYed
-- (prompt_events, _publish), so webhooks deliver only what the extension
-- published, and nothing sent while a listener was away is lost.
-- Every change and firing alert is written here as well as NOTIFYed: a
-- NOTIFY takes no privilege (any role that may connect can send one on any
-- channel), and one sent while a listener was away is lost. This table is
-- what pgprompt serve --webhooks delivers: the notification only wakes it.
-- Only _publish writes it (as the extension's owner). Ids are taken at
-- insert and transactions commit in another order, so a reader cannot go by
-- ids alone: each event keeps its transaction's id, and a reader takes the
-- events its last snapshot did not see (pg_visible_in_snapshot). Pruning is
-- the reader's (pgprompt serve --webhooks deletes events older than seven
-- days), never the writers': a DELETE here would make concurrent changes
-- wait on each other.
CREATE TABLE prompt_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel    text NOT NULL CHECK (channel IN ('pgprompt_changes', 'pgprompt_alerts')),
    payload    jsonb NOT NULL,
    xid        xid8 NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX prompt_events_created_idx ON prompt_events (created_at);

COMMENT ON TABLE prompt_events IS
    'The events of pgprompt_changes and pgprompt_alerts as they were committed, written only by the extension: what pgprompt serve --webhooks delivers (a NOTIFY anyone could send is only its cue), and prunes after seven days.';
COMMENT ON COLUMN prompt_events.id IS 'Order of events.';
COMMENT ON COLUMN prompt_events.channel IS 'pgprompt_changes or pgprompt_alerts.';
COMMENT ON COLUMN prompt_events.payload IS 'The notification''s payload.';
COMMENT ON COLUMN prompt_events.xid IS 'The transaction that recorded it: readers take the events their last snapshot did not see.';
COMMENT ON COLUMN prompt_events.created_at IS 'When the transaction that made it ran.';

-- Records an event and NOTIFYs it (both at commit only: a rolled-back
-- change leaves neither).
CREATE FUNCTION _publish(p_channel text, p_payload text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    -- The transaction id first, then the event id: a reader that saw an
    -- event id allocated knows its transaction was running then.
    v_xid xid8 := pg_current_xact_id();
BEGIN
    INSERT INTO prompt_events (channel, payload, xid) VALUES (p_channel, p_payload::jsonb, v_xid);
    PERFORM pg_notify(p_channel, p_payload);
END
$$;

COMMENT ON FUNCTION _publish(text, text) IS
    'Internal: records an event in prompt_events and NOTIFYs it on its channel. No role may call it: only the extension''s triggers and writers.';

CREATE OR REPLACE FUNCTION _notify_change(p_template text, p_version integer, p_action text, p_label text DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT _publish('pgprompt_changes',
        json_strip_nulls(json_build_object(
            'template', p_template,
            'version', p_version,
            'action', p_action,
            'label', p_label))::text);
$$;

COMMENT ON FUNCTION _notify_change(text, integer, text, text) IS
    'Internal: publishes {"template", "version", "action", "label"} on pgprompt_changes (see _publish).';

REVOKE ALL ON FUNCTION _publish(text, text) FROM PUBLIC;
GRANT SELECT, DELETE ON prompt_events TO pgprompt_admin;
GRANT USAGE, SELECT ON SEQUENCE prompt_events_id_seq TO pgprompt_admin;
