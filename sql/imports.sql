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
