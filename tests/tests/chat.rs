//! Chat templates with messages as providers accept them: content parts
//! (text, image_url, input_audio, file), an assistant's tool_calls, tool
//! messages with tool_call_id, templated names; spliced history checked at
//! render (22023), template mistakes refused at save (42601).

use pgprompt_tests::*;
use serde_json::{json, Value};

#[test]
fn multimodal_content_tool_calls_and_tool_results_render() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('vision', $j$[
             {"role": "system", "content": "You describe images for grade {{ grade }}."},
             {"role": "user", "name": "{{ student | replace(' ', '_') }}", "content": [
                 {"type": "text", "text": "What is in this picture of {{ topic }}?"},
                 {"type": "image_url", "image_url": {"url": "{{ image_url }}", "detail": "low"}},
                 {"type": "input_audio", "input_audio": {"data": "{{ audio }}", "format": "wav"}},
                 {"type": "file", "file": {"file_id": "{{ file_id }}", "filename": "notes.pdf"}}]},
             {"role": "assistant", "content": null, "tool_calls": [
                 {"id": "call_{{ n }}", "type": "function",
                  "function": {"name": "lookup", "arguments": "{{ {'topic': topic} | tojson }}"}}]},
             {"role": "tool", "tool_call_id": "call_{{ n }}", "content": "{{ result }}"},
             {"placeholder": "history", "optional": true}
           ]$j$, kind => 'chat')"#,
    )
    .unwrap();
    let vars = json!({"grade": 4, "student": "Ada Lovelace", "topic": "volcanoes", "image_url": "https://example.com/v.png",
                      "audio": "UklGRg==", "file_id": "file-123", "n": 7, "result": "Volcanoes erupt.",
                      "history": [{"role": "user", "content": [{"type": "text", "text": "thanks"}]},
                                  {"role": "assistant", "content": "You're welcome", "refusal": null}]});
    let out: Value = c.query_one("SELECT prompt_render_chat('vision', $1::jsonb)", &[&vars]).unwrap().get(0);
    assert_eq!(
        out,
        json!([
            {"role": "system", "content": "You describe images for grade 4."},
            {"role": "user", "name": "Ada_Lovelace", "content": [
                {"type": "text", "text": "What is in this picture of volcanoes?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/v.png", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-123", "filename": "notes.pdf"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": "{\"topic\": \"volcanoes\"}"}}]},
            {"role": "tool", "tool_call_id": "call_7", "content": "Volcanoes erupt."},
            {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
            {"role": "assistant", "content": "You're welcome", "refusal": null}
        ])
    );
    let variables: Vec<String> = one(&mut c, "SELECT variables FROM prompt_get('vision')");
    assert_eq!(variables, ["audio", "file_id", "grade", "history", "image_url", "n", "result", "student", "topic"]);
    // A missing variable in a part is named with where it is.
    let mut partial = vars.clone();
    partial.as_object_mut().unwrap().remove("image_url");
    let msg = expect_error(&mut c, &format!("SELECT prompt_render_chat('vision', '{}')", partial.to_string().replace('\'', "''")), "42P02");
    assert!(msg.contains("image_url") && msg.contains("message 2"), "{msg}");
}

#[test]
fn malformed_messages_are_refused_where_they_are() {
    let db = TestDb::new();
    let mut c = db.connect();
    let before = snapshot(&mut c);
    for (body, why) in [
        (r#"[{"role": "user", "content": [{"type": "video", "video": {"url": "x"}}]}]"#, "unknown type \"video\""),
        (r#"[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "{{ u }}"}}]}]"#, "user messages only"),
        (r#"[{"role": "tool", "content": "{{ r }}"}]"#, "tool_call_id is missing"),
        (r#"[{"role": "assistant"}]"#, "needs \"content\""),
        (r#"[{"role": "user", "content": [{"type": "text", "text": "{{ x "}]}]"#, "message 1 content part 1 text"),
        (r#"[{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}]"#, "arguments is missing"),
    ] {
        let msg = expect_error(&mut c, &format!("SELECT prompt_save('bad', '{body}', kind => 'chat')"), "42601");
        assert!(msg.contains(why), "{body}: {msg}");
    }
    assert_eq!(snapshot(&mut c), before);

    // Spliced history: checked when it renders.
    c.batch_execute(r#"SELECT prompt_save('chat', '[{"role": "system", "content": "Be brief."}, {"placeholder": "history"}]', kind => 'chat')"#)
        .unwrap();
    for (history, why) in [
        (json!([{"role": "robot", "content": "hi"}]), "message 1 of variable \"history\": unknown role \"robot\""),
        (json!([{"role": "user", "content": "hi"}, {"role": "user"}]), "message 2 of variable \"history\" needs \"content\""),
        (json!([{"role": "tool", "content": "42"}]), "tool_call_id is missing"),
        (json!([{"role": "user", "content": [{"type": "audio", "audio": {}}]}]), "unknown type \"audio\""),
        (json!([{"role": "user", "content": 5}]), "content must be a string"),
        (json!(["hello"]), "must be an object"),
        (json!({"role": "user", "content": "hi"}), "must be an array of messages"),
    ] {
        let vars = json!({ "history": history });
        let err = c.query_one("SELECT prompt_render_chat('chat', $1::jsonb)", &[&vars]).unwrap_err();
        let db_err = err.as_db_error().unwrap();
        assert_eq!(db_err.code().code(), "22023", "{history}: {}", db_err.message());
        assert!(db_err.message().contains(why), "{history}: {}", db_err.message());
    }
}
