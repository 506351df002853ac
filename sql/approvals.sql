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
