-- Triggers: timestamps, immutability, activation history, audit log and
-- change events (prompt_events and NOTIFY). They fire for the API functions and for direct SQL
-- alike, so nothing changes unrecorded whichever way it is changed.
--
-- Restored history is not a new event: rows that pg_restore brings back,
-- and the rows the extension's own scripts write, get no new audit entries,
-- history or notifications (the audit rows they came with are restored as
-- they were). Whether that is so is decided by the session, never by the
-- row: _restoring() (written in Rust) is true only while CREATE or ALTER
-- EXTENSION runs our script, or in a superuser's pg_restore session or one
-- with session_replication_role = replica. Every other new row is stamped
-- by _stamp_new_row with the time, the session user and builtin = false,
-- whatever the caller wrote into those columns.

COMMENT ON FUNCTION _restoring() IS
    'Internal: true while the extension''s own script runs (CREATE or ALTER EXTENSION) and in a superuser''s restoring session (pg_restore, or session_replication_role = replica); rows written then are history, not new events.';

------------------------------------------------------------------------------
-- Events
------------------------------------------------------------------------------

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

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- Sends one event on the pgprompt_changes channel. Delivered at commit only,
-- so listeners never hear of a change that was rolled back.
CREATE FUNCTION _notify_change(p_template text, p_version integer, p_action text, p_label text DEFAULT NULL)
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

-- Appends one audit row.
CREATE FUNCTION _audit(p_action text, p_object_type text, p_object_name text,
                       p_template_id bigint, p_version integer, p_before jsonb, p_after jsonb)
RETURNS void
LANGUAGE sql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    INSERT INTO prompt_audit_logs (action, object_type, object_name, template_id, version, before, after)
    VALUES (p_action, p_object_type, p_object_name, p_template_id, p_version, p_before, p_after);
$$;

COMMENT ON FUNCTION _audit(text, text, text, bigint, integer, jsonb, jsonb) IS
    'Internal: appends a row to prompt_audit_logs. No role may call it: the audit triggers, which run as the extension''s owner, do.';

-- New rows are stamped by the database, not by whoever inserts them: when
-- and by whom they were made, and builtin only for the extension's own
-- rows. A row claiming an old created_at or builtin = true used to pass for
-- restored history and skip the audit log. Restores keep their stamps.
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

-- Audits a configuration table (guardrails, prices, alert rules, ...):
-- TG_ARGV[0] names the object type, TG_ARGV[1] the column holding its name.
-- Rows the extension's script or a restore writes are not new events
-- (built-in rows, restored rows, and built-in rows a restore replaces).
-- Like every audit trigger it runs as the extension's owner: _audit, which
-- writes the audit log, is callable by no role.
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

CREATE FUNCTION _audit_row()
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

-- A restored row replaces the built-in one CREATE EXTENSION put in its
-- place (same id or same name), so pg_restore neither duplicates nor fails.
CREATE FUNCTION _replace_builtin(p_table regclass, p_name_column text, p_id bigint, p_name text)
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

------------------------------------------------------------------------------
-- Timestamps (the seeds' auto-update timestamp triggers)
------------------------------------------------------------------------------

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

CREATE FUNCTION _touch_updated()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.created_by := OLD.created_by;
    NEW.updated_at := now();
    NEW.updated_by := session_user;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _touch_updated() IS
    'Trigger: keeps created_* as they were and sets updated_at/updated_by on every UPDATE.';

CREATE TRIGGER trigger_update_prompt_templates_timestamp
    BEFORE UPDATE ON prompt_templates
    FOR EACH ROW EXECUTE FUNCTION _touch_updated();
COMMENT ON TRIGGER trigger_update_prompt_templates_timestamp ON prompt_templates IS
    'Maintains updated_at and updated_by.';

CREATE TRIGGER trigger_update_prompt_labels_timestamp
    BEFORE UPDATE ON prompt_labels
    FOR EACH ROW EXECUTE FUNCTION _touch_updated();
COMMENT ON TRIGGER trigger_update_prompt_labels_timestamp ON prompt_labels IS
    'Maintains updated_at and updated_by.';

------------------------------------------------------------------------------
-- Immutable versions
------------------------------------------------------------------------------

CREATE FUNCTION _versions_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Versions go only with their template (prompt_delete cascades here
        -- after the template row is already gone).
        IF NOT EXISTS (SELECT 1 FROM prompt_templates WHERE id = OLD.template_id) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'prompt versions are immutable: cannot delete version % of template %',
            OLD.version, OLD.template_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Delete the whole template with prompt_delete(name), or save a new version.';
    ELSIF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'prompt versions are immutable: cannot truncate prompt_versions'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Delete templates with prompt_delete(name).';
    END IF;
    RAISE EXCEPTION 'prompt versions are immutable: cannot update version % of template %',
        OLD.version, OLD.template_id
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Save a new version with prompt_save(name, body) instead.';
END
$$;

COMMENT ON FUNCTION _versions_immutable() IS
    'Trigger: refuses UPDATE, DELETE and TRUNCATE of prompt_versions (SQLSTATE 55000), except the cascade of deleting a template.';

CREATE TRIGGER trigger_prompt_versions_immutable
    BEFORE UPDATE OR DELETE ON prompt_versions
    FOR EACH ROW EXECUTE FUNCTION _versions_immutable();
COMMENT ON TRIGGER trigger_prompt_versions_immutable ON prompt_versions IS
    'Versions are immutable.';

CREATE TRIGGER trigger_prompt_versions_no_truncate
    BEFORE TRUNCATE ON prompt_versions
    FOR EACH STATEMENT EXECUTE FUNCTION _versions_immutable();
COMMENT ON TRIGGER trigger_prompt_versions_no_truncate ON prompt_versions IS
    'Versions are immutable; TRUNCATE would bypass the row trigger.';

------------------------------------------------------------------------------
-- Activation: exactly one active version, with history
------------------------------------------------------------------------------

-- The active version is a single column, so "exactly one" holds by
-- construction and concurrent activations serialise on the row lock. This
-- trigger makes a wrong version fail at once (not at commit through the
-- deferred foreign key) and records direct UPDATEs in the history, so
-- prompt_rollback works whichever way a version was activated.
CREATE FUNCTION _enforce_single_active()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_last prompt_activations;
BEGIN
    IF NEW.active_version IS NOT DISTINCT FROM OLD.active_version THEN
        RETURN NEW;
    END IF;
    IF NEW.active_version IS NULL OR NOT EXISTS (
        SELECT 1 FROM prompt_versions WHERE template_id = NEW.id AND version = NEW.active_version)
    THEN
        RAISE EXCEPTION 'version % of template "%" does not exist', NEW.active_version, NEW.name
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT * INTO v_last FROM prompt_activations
     WHERE template_id = NEW.id ORDER BY id DESC LIMIT 1;
    IF v_last.id IS NULL OR v_last.version <> NEW.active_version THEN
        INSERT INTO prompt_activations (template_id, version, previous_version, action, undo_to)
        VALUES (NEW.id, NEW.active_version, OLD.active_version, 'activate', v_last.id);
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _enforce_single_active() IS
    'Trigger: checks the new active version exists in the same template and records direct activations in prompt_activations.';

CREATE TRIGGER trigger_enforce_single_active_template
    BEFORE UPDATE OF active_version ON prompt_templates
    FOR EACH ROW EXECUTE FUNCTION _enforce_single_active();
COMMENT ON TRIGGER trigger_enforce_single_active_template ON prompt_templates IS
    'Exactly one active version per template, belonging to it; every change recorded in prompt_activations.';

-- A new template must have its active version by the end of the transaction
-- that creates it (prompt_save inserts both).
CREATE FUNCTION _check_new_template_version()
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

COMMENT ON FUNCTION _check_new_template_version() IS
    'Constraint trigger: at commit, a newly created template''s active version exists (SQLSTATE 23503 otherwise).';

CREATE CONSTRAINT TRIGGER trigger_check_new_template_version
    AFTER INSERT ON prompt_templates
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION _check_new_template_version();
COMMENT ON TRIGGER trigger_check_new_template_version ON prompt_templates IS
    'A template created in a transaction has its active version when the transaction commits.';

------------------------------------------------------------------------------
-- Audit and notifications
------------------------------------------------------------------------------

CREATE FUNCTION _audit_templates()
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

CREATE TRIGGER trigger_audit_prompt_templates
    AFTER INSERT OR UPDATE ON prompt_templates
    FOR EACH ROW EXECUTE FUNCTION _audit_templates();
COMMENT ON TRIGGER trigger_audit_prompt_templates ON prompt_templates IS
    'Writes prompt_audit_logs for creations and changes.';

CREATE TRIGGER trigger_audit_prompt_templates_delete
    BEFORE DELETE ON prompt_templates
    FOR EACH ROW EXECUTE FUNCTION _audit_templates();
COMMENT ON TRIGGER trigger_audit_prompt_templates_delete ON prompt_templates IS
    'Writes prompt_audit_logs for deletions, while the versions and labels can still be counted.';

CREATE FUNCTION _audit_versions()
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

COMMENT ON FUNCTION _audit_versions() IS 'Trigger: audits every new version, body included.';

CREATE TRIGGER trigger_audit_prompt_versions
    AFTER INSERT ON prompt_versions
    FOR EACH ROW EXECUTE FUNCTION _audit_versions();
COMMENT ON TRIGGER trigger_audit_prompt_versions ON prompt_versions IS
    'Writes prompt_audit_logs.';

CREATE FUNCTION _audit_activations()
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

CREATE TRIGGER trigger_audit_prompt_activations
    AFTER INSERT ON prompt_activations
    FOR EACH ROW EXECUTE FUNCTION _audit_activations();
COMMENT ON TRIGGER trigger_audit_prompt_activations ON prompt_activations IS
    'Writes prompt_audit_logs and notifies pgprompt_changes.';

CREATE FUNCTION _audit_labels()
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

COMMENT ON FUNCTION _audit_labels() IS
    'Trigger: audits label set, move and removal and notifies pgprompt_changes.';

CREATE TRIGGER trigger_audit_prompt_labels
    AFTER INSERT OR UPDATE OR DELETE ON prompt_labels
    FOR EACH ROW EXECUTE FUNCTION _audit_labels();
COMMENT ON TRIGGER trigger_audit_prompt_labels ON prompt_labels IS
    'Writes prompt_audit_logs and notifies pgprompt_changes.';

------------------------------------------------------------------------------
-- Append-only audit log
------------------------------------------------------------------------------

CREATE FUNCTION _audit_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'prompt_audit_logs is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only superusers may change or remove audit rows.';
END
$$;

COMMENT ON FUNCTION _audit_append_only() IS
    'Trigger: refuses UPDATE, DELETE and TRUNCATE of prompt_audit_logs to every role but superusers (SQLSTATE 42501).';

CREATE TRIGGER trigger_prompt_audit_logs_append_only
    BEFORE UPDATE OR DELETE ON prompt_audit_logs
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
COMMENT ON TRIGGER trigger_prompt_audit_logs_append_only ON prompt_audit_logs IS
    'The audit log is append-only.';

CREATE TRIGGER trigger_prompt_audit_logs_no_truncate
    BEFORE TRUNCATE ON prompt_audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
COMMENT ON TRIGGER trigger_prompt_audit_logs_no_truncate ON prompt_audit_logs IS
    'The audit log is append-only; TRUNCATE would bypass the row trigger.';

------------------------------------------------------------------------------
-- Render cache invalidation
------------------------------------------------------------------------------

-- Sessions cache which version a template name (or label) resolves to. Any
-- change to the tables below queues a relcache invalidation of the table
-- named as the trigger's argument (the cache's channel), which PostgreSQL
-- delivers to every session at commit, so no session ever uses a stale
-- resolution once the change has committed.
CREATE FUNCTION _invalidate_caches_trigger()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _invalidate_caches(TG_ARGV[0]::regclass);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION _invalidate_caches_trigger() IS
    'Trigger: tells every session, at commit, that caches following the table named by the argument are out of date.';

CREATE TRIGGER trigger_invalidate_render_caches
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prompt_templates
    FOR EACH STATEMENT EXECUTE FUNCTION _invalidate_caches_trigger('pgprompt.prompt_templates');
COMMENT ON TRIGGER trigger_invalidate_render_caches ON prompt_templates IS
    'Activation, rollback, rename and delete change what names resolve to.';

CREATE TRIGGER trigger_invalidate_render_caches
    AFTER INSERT ON prompt_versions
    FOR EACH STATEMENT EXECUTE FUNCTION _invalidate_caches_trigger('pgprompt.prompt_templates');
COMMENT ON TRIGGER trigger_invalidate_render_caches ON prompt_versions IS
    'A new version changes what latest resolves to.';

CREATE TRIGGER trigger_invalidate_render_caches
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prompt_labels
    FOR EACH STATEMENT EXECUTE FUNCTION _invalidate_caches_trigger('pgprompt.prompt_templates');
COMMENT ON TRIGGER trigger_invalidate_render_caches ON prompt_labels IS
    'Label moves change what labels resolve to.';
