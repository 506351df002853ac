//! pgprompt's template engine, shared by the extension and the client so
//! that a template renders byte for byte the same on the server and in an
//! application's offline fallback: `render` (templates compiled with
//! minijinja, Jinja2's semantics, bounded work), `model_config` (the shape
//! of a version's model configuration), `json_schema` (tool parameters,
//! response formats and input schemas) and `error` (the one error type and
//! its SQLSTATEs). Nothing here knows PostgreSQL.

pub mod error;
pub mod json_schema;
pub mod model_config;
pub mod render;
