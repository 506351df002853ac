//! What prompt_save checks besides the body: the model configuration
//! (`model_config`) and the input schema of a version. The rules are the
//! engine's (`model_config`, `json_schema`); this is their SQL face.

use pgrx::prelude::*;
use pgrx::JsonB;

use super::raise::OrRaise;
use super::vars::JsonbArg;
use crate::json_schema::Schema;
use crate::model_config;

/// A model configuration checked against the documented shape and
/// normalised (`model_name` stored as `model`); 22023 naming the path of
/// what is wrong.
#[pg_extern(immutable, parallel_safe, strict)]
fn _model_config(config: JsonbArg) -> JsonB {
    JsonB(model_config::normalize(&config.to_json("model_config").or_raise()).or_raise())
}

/// An input schema checked (a valid JSON Schema: 22023 naming where it is
/// not), or NULL when it constrains nothing (`{}` or `true`).
#[pg_extern(immutable, parallel_safe, strict)]
fn _input_schema(schema: JsonbArg) -> Option<JsonB> {
    let schema = schema.to_json("input_schema").or_raise();
    if schema == serde_json::Value::Bool(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
        return None;
    }
    Schema::compile(&schema, "input_schema").or_raise();
    Some(JsonB(schema))
}
