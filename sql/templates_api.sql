-- The template API: save versions, activate, roll back, label, read, delete.
-- Rendering (prompt_render, prompt_render_chat, prompt_render_text,
-- prompt_variables) is written in Rust; its comments are at the end.
--
-- Errors use standard SQLSTATEs (see the README's table):
--   22004 null_value_not_allowed      a required argument is NULL
--   22023 invalid_parameter_value     an argument has the wrong shape
--   42704 undefined_object            unknown template, version or label
--   42601 syntax_error                the template does not parse
--   54000 program_limit_exceeded      body over pgprompt.max_template_bytes
--   55000 object_not_in_prerequisite_state  nothing to roll back to; removing production

------------------------------------------------------------------------------
-- Internal helpers
------------------------------------------------------------------------------

CREATE FUNCTION _require(p_value anyelement, p_name text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be NULL', p_name
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END
$$;

COMMENT ON FUNCTION _require(anyelement, text) IS
    'Internal: raises 22004 naming the argument when it is NULL.';

-- The template row, locked for the rest of the transaction, or 42704.
CREATE FUNCTION _lock_template(p_name text)
RETURNS prompt_templates
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates;
BEGIN
    PERFORM _require(p_name, 'name');
    SELECT * INTO v_template FROM prompt_templates WHERE name = p_name FOR UPDATE;
    IF v_template.id IS NULL THEN
        RAISE EXCEPTION 'template "%" does not exist', p_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'List templates with: SELECT name FROM pgprompt.prompt_templates;';
    END IF;
    RETURN v_template;
END
$$;

COMMENT ON FUNCTION _lock_template(text) IS
    'Internal: the named template row, locked FOR UPDATE; 42704 if it does not exist.';

CREATE FUNCTION _require_version(p_template prompt_templates, p_version integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _require(p_version, 'version');
    IF NOT EXISTS (SELECT 1 FROM prompt_versions
                    WHERE template_id = p_template.id AND version = p_version) THEN
        RAISE EXCEPTION 'version % of template "%" does not exist', p_version, p_template.name
            USING ERRCODE = 'undefined_object',
                  HINT = format('Versions of this template run from 1 to %s.',
                      (SELECT max(version) FROM prompt_versions WHERE template_id = p_template.id));
    END IF;
END
$$;

COMMENT ON FUNCTION _require_version(prompt_templates, integer) IS
    'Internal: 42704 unless the template has this version.';

------------------------------------------------------------------------------
-- prompt_save
------------------------------------------------------------------------------

-- prompt_save, and the import of versions written elsewhere, which keeps
-- who wrote them and when.
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

------------------------------------------------------------------------------
-- Activation and rollback
------------------------------------------------------------------------------

-- The one release pointer: the active version is production. Activating and
-- labelling production both come here, so they cannot disagree.
CREATE FUNCTION _release(p_template prompt_templates, p_version integer, p_force boolean, p_action text)
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

CREATE FUNCTION prompt_activate(name text, version integer, force boolean DEFAULT false)
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

CREATE FUNCTION prompt_rollback(name text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates := _lock_template(prompt_rollback.name);
    v_current prompt_activations;
    v_target prompt_activations;
BEGIN
    SELECT * INTO v_current FROM prompt_activations a
     WHERE a.template_id = v_template.id ORDER BY a.id DESC LIMIT 1;
    SELECT * INTO v_target FROM prompt_activations a WHERE a.id = v_current.undo_to;
    IF v_target.id IS NULL THEN
        RAISE EXCEPTION 'template "%" has no earlier active version to roll back to', v_template.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Version ' || v_template.active_version || ' has been active since the template was created or since the rollbacks before this one.';
    END IF;
    -- Pop the undo stack: a further rollback goes to what came before the target.
    INSERT INTO prompt_activations (template_id, version, previous_version, action, undo_to)
    VALUES (v_template.id, v_target.version, v_template.active_version, 'rollback', v_target.undo_to);
    UPDATE prompt_templates t SET active_version = v_target.version WHERE t.id = v_template.id;
    RETURN v_target.version;
END
$$;

COMMENT ON FUNCTION prompt_rollback(text) IS
$$Re-releases the version that was active (production) before the current one and returns its number. Repeated rollbacks walk further back, like undo.
Errors: 22004 NULL argument, 42704 unknown template, 55000 nothing to roll back to.$$;

------------------------------------------------------------------------------
-- Labels
------------------------------------------------------------------------------

CREATE FUNCTION _check_label(p_label text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM _require(p_label, 'label');
    IF p_label IN ('latest', 'active') THEN
        RAISE EXCEPTION 'label "%" is reserved', p_label
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'latest always means the newest version and active the active one.';
    END IF;
    IF length(p_label) NOT BETWEEN 1 AND 63 OR p_label !~ '^[a-z0-9][a-z0-9_.-]*$' THEN
        RAISE EXCEPTION 'invalid label "%"', p_label
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use lower-case letters, digits and _ . - (up to 63 characters), such as production or staging.';
    END IF;
END
$$;

COMMENT ON FUNCTION _check_label(text) IS 'Internal: 22023 unless the label name is valid and not reserved.';

CREATE FUNCTION prompt_label(name text, version integer, label text, force boolean DEFAULT false)
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

CREATE FUNCTION prompt_unlabel(name text, label text)
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

------------------------------------------------------------------------------
-- Reading and deleting
------------------------------------------------------------------------------

CREATE TYPE prompt_version_info AS (
    name            text,
    version         integer,
    kind            text,
    body            text,
    config          jsonb,
    variables       text[],
    is_active       boolean,
    labels          text[],
    message         text,
    parent_version  integer,
    created_at      timestamptz,
    created_by      text,
    options         jsonb,
    input_schema    jsonb,
    approvals       jsonb
);

COMMENT ON TYPE prompt_version_info IS 'One version of a template as prompt_get returns it.';
COMMENT ON COLUMN prompt_version_info.name IS 'Template name.';
COMMENT ON COLUMN prompt_version_info.version IS 'Version number.';
COMMENT ON COLUMN prompt_version_info.kind IS 'text or chat.';
COMMENT ON COLUMN prompt_version_info.body IS 'Template source.';
COMMENT ON COLUMN prompt_version_info.config IS 'Model settings (JSON object).';
COMMENT ON COLUMN prompt_version_info.variables IS 'Top-level variables the body reads.';
COMMENT ON COLUMN prompt_version_info.is_active IS 'Whether this is the active version.';
COMMENT ON COLUMN prompt_version_info.labels IS 'Labels pointing at this version.';
COMMENT ON COLUMN prompt_version_info.message IS 'Commit message.';
COMMENT ON COLUMN prompt_version_info.parent_version IS 'Version this one derives from.';
COMMENT ON COLUMN prompt_version_info.created_at IS 'When the version was saved.';
COMMENT ON COLUMN prompt_version_info.created_by IS 'Who saved it.';
COMMENT ON COLUMN prompt_version_info.options IS 'How it renders (trim_blocks, lstrip_blocks, keep_trailing_newline, undefined).';
COMMENT ON COLUMN prompt_version_info.input_schema IS 'The JSON Schema vars must match, or NULL.';
COMMENT ON COLUMN prompt_version_info.approvals IS 'Who approved the version, when and why: [{"by", "at", "comment"}] (prompt_approve).';

CREATE FUNCTION prompt_get(name text, version integer DEFAULT NULL, label text DEFAULT NULL)
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

CREATE FUNCTION prompt_delete(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_template prompt_templates := _lock_template(prompt_delete.name);
BEGIN
    DELETE FROM prompt_templates t WHERE t.id = v_template.id;
END
$$;

COMMENT ON FUNCTION prompt_delete(text) IS
$$Deletes a template with all its versions, labels and history. The audit log keeps every version's body and the deletion itself.
Errors: 22004 NULL name, 42704 unknown template.$$;

------------------------------------------------------------------------------
-- Comments on the functions written in Rust
------------------------------------------------------------------------------

COMMENT ON FUNCTION prompt_render(text, jsonb, integer, text) IS
$$Renders a text template with Jinja2 semantics (minijinja, with Python's methods and json.dumps as tojson): the active version, or the version or label asked for (label may be latest or active), with the version's render options.
Undefined "strict" (the default): a variable the template prints, iterates or measures but vars lacks is an error naming it; {% if x %}, comparisons, tests and default(...) treat it as Jinja2 does. "lenient": Jinja2's default Undefined. Compiles are cached per session by immutable version id, so a render is never stale.
Errors: 22004 NULL name or vars, 22023 vars not an object or both version and label, 42704 unknown template/version/label, 42809 chat template, 42P02 missing variable, 38000 template error, 54000 output or vars too large, 54001 out of fuel (pgprompt.render_fuel) or too complex, P0001 (raise_exception) the template called raise_exception(message), with its message.$$;

COMMENT ON FUNCTION prompt_render_chat(text, jsonb, integer, text) IS
$$Renders a template as an OpenAI-style messages array [{"role", "content"}]. Chat templates render each message and splice {"placeholder": "history"} entries from vars; a text template becomes one user message.
Errors as prompt_render.$$;

COMMENT ON FUNCTION prompt_render_text(text, jsonb, jsonb) IS
$$Renders a template body that is not stored (a dry run before saving), with the render options it would be saved with (see prompt_save). Same rules and errors as prompt_render, plus 42601 for syntax errors, 54000 for bodies over pgprompt.max_template_bytes 22023 for a bad option and 22004 for NULL options.$$;

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

COMMENT ON FUNCTION _model_config(jsonb) IS
    'Internal: checks a model configuration against the documented shape (22023 naming the path of what is wrong) and returns it with model_name stored as model.';

COMMENT ON FUNCTION _input_schema(jsonb) IS
    'Internal: checks an input schema is a valid JSON Schema (22023 naming where it is not); NULL when it constrains nothing ({} or true).';

COMMENT ON FUNCTION _render_options(jsonb) IS
    'Internal: checks render options (22023 naming an unknown option or a bad value) and returns every option, as stored with a version.';

COMMENT ON FUNCTION prompt_variables(text, text) IS
$$The top-level variables a template body reads, sorted. kind is text or chat. Validates the body: 42601 syntax error with line and column, 54000 body over pgprompt.max_template_bytes, 22023 unknown kind.$$;

COMMENT ON FUNCTION prompt_cache_stats() IS
    'This session''s compiled-template cache: hits, misses, hit ratio, entries, evictions and cached source bytes.';

COMMENT ON FUNCTION _invalidate_caches(oid) IS
    'Internal: queues a relcache invalidation of the given table (a cache channel), delivered to every session at commit.';

COMMENT ON FUNCTION prompt_cache_reset() IS
    'Empties this session''s compiled-template cache (rendering is correct either way; this is for measurements).';
