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
                             FROM prompt_labels WHERE template_id = OLD.id)),
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
        PERFORM _notify_change(v_name, NEW.version, NEW.action);
    END IF;
    RETURN NEW;
END
$$;

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
