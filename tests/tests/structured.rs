//! Structured prompts against a real server: the model configuration is
//! checked and normalised when saved, a version's input schema is enforced
//! when it renders (naming the failing path), and a new version inherits
//! its parent's configuration, render options and input schema.

use pgprompt_tests::*;
use serde_json::{json, Value};

fn config(c: &mut Client, name: &str, version: i32) -> Value {
    one(c, &format!("SELECT config FROM prompt_get('{name}', {version})"))
}

#[test]
fn model_configurations_are_checked_and_normalised() {
    let db = TestDb::new();
    let mut c = db.connect();
    let weather = r#"{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#;
    c.batch_execute(&format!(
        r#"SELECT prompt_save('assistant', 'Help with {{{{ q }}}}',
                              '{{"model_name": "gpt-4o", "temperature": 0.3, "max_tokens": 400, "top_p": 0.9, "stop": ["END"],
                                 "tools": [{weather}], "tool_choice": "auto",
                                 "response_format": {{"type": "json_schema", "json_schema": {{"name": "answer", "strict": true,
                                     "schema": {{"type": "object", "properties": {{"text": {{"type": "string"}}}}}}}}}},
                                 "provider": "openai", "seed": 7}}')"#
    ))
    .unwrap();
    let stored = config(&mut c, "assistant", 1);
    assert_eq!(stored["model"], "gpt-4o");
    assert!(stored.get("model_name").is_none(), "model_name is stored as model: {stored}");
    assert_eq!((stored["provider"].clone(), stored["seed"].clone()), (json!("openai"), json!(7)), "other keys are kept");
    assert_eq!(stored["tools"][0]["function"]["name"], "get_weather");
    // prompt_render_for hands the same configuration to the application.
    assert_eq!(one::<Value>(&mut c, "SELECT config FROM prompt_render_for('assistant', 'u1', '{\"q\": \"x\"}')"), stored);

    let before = snapshot(&mut c);
    let refused = [
        (r#"{"tools": {"name": "get_weather"}}"#, "model_config.tools must be a list of tool definitions"),
        (r#"{"tools": ["get_weather"]}"#, "model_config.tools[0] must be a tool definition"),
        (r#"{"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}]}"#,
         "model_config.tools[0].function.parameters is not a valid JSON Schema at /type"),
        (r#"{"tool_choice": {"type": "function", "function": {"name": "nope"}}}"#, "\"nope\" is not one of model_config.tools"),
        (r#"{"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"required": "text"}}}}"#,
         "model_config.response_format.json_schema.schema is not a valid JSON Schema at /required"),
        (r#"{"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"$ref": "file:///etc/passwd"}}}}"#,
         "model_config.response_format.json_schema.schema is not a valid JSON Schema"),
        (r#"{"temperature": 7}"#, "model_config.temperature must be a number from 0 to 2"),
        (r#"{"max_tokens": "many"}"#, "model_config.max_tokens must be a positive integer"),
        (r#"{"model": "gpt-4o", "model_name": "gpt-4o-mini"}"#, "name different models"),
        (r#"[]"#, "model_config must be a JSON object"),
    ];
    for (config, message) in refused {
        let sql = format!("SELECT prompt_save('assistant', 'v2', '{config}')");
        let msg = expect_error(&mut c, &sql, "22023");
        assert!(msg.contains(message), "{config}: {msg}");
    }
    assert_eq!(snapshot(&mut c), before, "a refused save writes nothing");
}

#[test]
fn vars_must_match_the_input_schema() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('tutor', 'Explain {{ topic }} for grade {{ grade }}{% for t in tags %} #{{ t }}{% endfor %}.',
                              input_schema => '{"type": "object", "required": ["topic", "grade"],
                                                "properties": {"topic": {"type": "string", "minLength": 1},
                                                               "grade": {"type": "integer", "minimum": 1, "maximum": 12},
                                                               "tags": {"type": "array", "items": {"type": "string"}}}}');
           SELECT prompt_save('chat', '[{"role": "user", "content": "{{ q }}"}]', kind => 'chat',
                              input_schema => '{"properties": {"q": {"type": "string", "maxLength": 10}}}');"#,
    )
    .unwrap();
    assert_eq!(one::<String>(&mut c, r#"SELECT prompt_render('tutor', '{"topic": "tides", "grade": 7, "tags": ["sea"]}')"#), "Explain tides for grade 7 #sea.");
    for (vars, path, why) in [
        (r#"{"topic": "tides", "grade": 13, "tags": []}"#, "/grade", "13 is greater than the maximum of 12"),
        (r#"{"topic": "tides", "grade": 7, "tags": ["sea", 5]}"#, "/tags/1", "5 is not of type \"string\""),
        (r#"{"topic": "tides", "tags": []}"#, "the top level", "\"grade\" is a required property"),
        (r#"{"topic": "", "grade": 7, "tags": []}"#, "/topic", "shorter than 1 character"),
    ] {
        for form in ["jsonb", "json", "text"] {
            let msg = expect_error(&mut c, &format!("SELECT prompt_render('tutor', '{vars}'::{form})"), "22023");
            assert!(msg.contains(&format!("vars do not match the input schema at {path}")) && msg.contains(why), "{form} {vars}: {msg}");
        }
    }
    let msg = expect_error(&mut c, r#"SELECT prompt_render_chat('chat', '{"q": "far too long a question"}')"#, "22023");
    assert!(msg.contains("at /q"), "{msg}");
    assert_eq!(one::<Value>(&mut c, r#"SELECT prompt_render_chat('chat', '{"q": "short"}')"#), json!([{"role": "user", "content": "short"}]));
    // Test cases run through the same check.
    c.batch_execute(r#"SELECT prompt_test_case_save('tutor', 'bad grade', '[{"contains": "grade"}]', '{"topic": "x", "grade": 99, "tags": []}')"#)
        .unwrap();
    let detail: String = one(&mut c, "SELECT detail FROM prompt_run_tests('tutor', 1)");
    assert!(detail.contains("/grade"), "{detail}");
    assert_eq!(
        one::<Value>(&mut c, "SELECT input_schema -> 'required' FROM prompt_get('tutor')"),
        json!(["topic", "grade"])
    );

    // Invalid schemas are refused when saved, naming where.
    let before = snapshot(&mut c);
    for (schema, message) in [
        (r#"{"type": "objekt"}"#, "input_schema is not a valid JSON Schema at /type"),
        (r#"{"properties": {"a": {"pattern": "a(?=b)"}}}"#, "input_schema is not a valid JSON Schema"),
        (r#"{"$ref": "https://example.com/s.json"}"#, "input_schema is not a valid JSON Schema"),
        (r#""a string""#, "input_schema must be a JSON Schema"),
    ] {
        let msg = expect_error(&mut c, &format!("SELECT prompt_save('tutor', 'x', input_schema => '{schema}')"), "22023");
        assert!(msg.contains(message), "{schema}: {msg}");
    }
    assert_eq!(snapshot(&mut c), before);
}

#[test]
fn a_new_version_inherits_what_it_is_not_given() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('t', 'v1 {{ x }}', '{"model": "gpt-4o", "temperature": 0.2}',
                              options => '{"trim_blocks": true}', input_schema => '{"required": ["x"]}');
           SELECT prompt_save('t', 'v2 {{ x }}');
           SELECT prompt_save('t', 'v3 {{ x }}', '{"model": "gpt-4o-mini"}', input_schema => '{}');
           SELECT prompt_save('t', 'v4 {{ x }}', parent => 2);"#,
    )
    .unwrap();
    let row = |c: &mut Client, v: i32| -> (Value, bool, Option<Value>) {
        let r = c
            .query_one(&format!("SELECT config, (options ->> 'trim_blocks')::bool, input_schema FROM prompt_get('t', {v})"), &[])
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let first = (json!({"model": "gpt-4o", "temperature": 0.2}), true, Some(json!({"required": ["x"]})));
    assert_eq!(row(&mut c, 1), first);
    assert_eq!(row(&mut c, 2), first, "v2 was given nothing: all of v1's");
    assert_eq!(row(&mut c, 3), (json!({"model": "gpt-4o-mini"}), true, None), "given a config and no schema ('{{}}')");
    assert_eq!(row(&mut c, 4), first, "from its parent, v2, not the newest");
    // The inherited schema is enforced.
    c.batch_execute("SELECT prompt_activate('t', 4)").unwrap();
    expect_error(&mut c, "SELECT prompt_render('t', '{}')", "22023");
    assert_eq!(one::<String>(&mut c, r#"SELECT prompt_render('t', '{"x": 1}', version => 3)"#), "v3 1");
}
