//! The one error type of the extension.
//!
//! Every failure a caller can provoke has a kind, and every kind has exactly one
//! SQLSTATE, so applications can branch on the code instead of parsing messages.
//! Only standard PostgreSQL codes are used: PL/pgSQL handlers can name them
//! (`EXCEPTION WHEN undefined_object THEN ...`) and drivers already know them.
//! The table is repeated in the README; `sqlstates_are_distinct` keeps it honest.

use std::fmt;

/// What went wrong, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required argument was NULL.
    NullArgument,
    /// An argument has the wrong shape (vars not an object, bad label name, ...).
    InvalidArgument,
    /// A template, version or label that does not exist.
    UnknownObject,
    /// The template body does not parse (syntax error, bad chat message list).
    InvalidTemplate,
    /// The template needs a variable the caller did not pass.
    MissingVariable,
    /// A chat template asked for as text, or the other way round.
    WrongKind,
    /// An input or output size limit was exceeded.
    LimitExceeded,
    /// Rendering ran out of fuel (endless loop) or recursed too deep.
    FuelExhausted,
    /// The template failed while rendering (type error, unknown filter, ...).
    RenderFailed,
    /// The rendered text cannot be stored in a PostgreSQL text value.
    InvalidOutput,
    /// A number too large to compute exactly (a cost of absurdly many tokens).
    OutOfRange,
    /// A time outside what can be stored (infinity as a call's time).
    DatetimeOutOfRange,
    /// The template called `raise_exception(message)`: the message is the
    /// template's own (chat templates refuse conversations they cannot
    /// format this way).
    Raised,
    /// Vars given as JSON text do not parse.
    InvalidJson,
    /// Vars given as JSON text repeat a key within one object.
    DuplicateKey,
    /// Concurrent writers kept changing what this one builds on (scorers
    /// correcting the same score): retrying the transaction is the cure.
    SerializationFailure,
}

impl ErrorKind {
    /// The SQLSTATE reported for this kind.
    pub const fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::NullArgument => "22004",
            ErrorKind::InvalidArgument => "22023",
            ErrorKind::UnknownObject => "42704",
            ErrorKind::InvalidTemplate => "42601",
            ErrorKind::MissingVariable => "42P02",
            ErrorKind::WrongKind => "42809",
            ErrorKind::LimitExceeded => "54000",
            ErrorKind::FuelExhausted => "54001",
            ErrorKind::RenderFailed => "38000",
            ErrorKind::InvalidOutput => "22021",
            ErrorKind::OutOfRange => "22003",
            ErrorKind::DatetimeOutOfRange => "22008",
            ErrorKind::Raised => "P0001",
            ErrorKind::InvalidJson => "22P02",
            ErrorKind::DuplicateKey => "22030",
            ErrorKind::SerializationFailure => "40001",
        }
    }

    /// PostgreSQL's condition name for the SQLSTATE (what PL/pgSQL handlers use).
    pub const fn condition(self) -> &'static str {
        match self {
            ErrorKind::NullArgument => "null_value_not_allowed",
            ErrorKind::InvalidArgument => "invalid_parameter_value",
            ErrorKind::UnknownObject => "undefined_object",
            ErrorKind::InvalidTemplate => "syntax_error",
            ErrorKind::MissingVariable => "undefined_parameter",
            ErrorKind::WrongKind => "wrong_object_type",
            ErrorKind::LimitExceeded => "program_limit_exceeded",
            ErrorKind::FuelExhausted => "statement_too_complex",
            ErrorKind::RenderFailed => "external_routine_exception",
            ErrorKind::InvalidOutput => "character_not_in_repertoire",
            ErrorKind::OutOfRange => "numeric_value_out_of_range",
            ErrorKind::DatetimeOutOfRange => "datetime_field_overflow",
            ErrorKind::Raised => "raise_exception",
            ErrorKind::InvalidJson => "invalid_text_representation",
            ErrorKind::DuplicateKey => "duplicate_json_object_key_value",
            ErrorKind::SerializationFailure => "serialization_failure",
        }
    }

    /// Every kind, for documentation and tests.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::NullArgument,
        ErrorKind::InvalidArgument,
        ErrorKind::UnknownObject,
        ErrorKind::InvalidTemplate,
        ErrorKind::MissingVariable,
        ErrorKind::WrongKind,
        ErrorKind::LimitExceeded,
        ErrorKind::FuelExhausted,
        ErrorKind::RenderFailed,
        ErrorKind::InvalidOutput,
        ErrorKind::OutOfRange,
        ErrorKind::DatetimeOutOfRange,
        ErrorKind::Raised,
        ErrorKind::InvalidJson,
        ErrorKind::DuplicateKey,
        ErrorKind::SerializationFailure,
    ];
}

/// An error with a message for humans and optional detail and hint lines,
/// mirroring PostgreSQL's `errmsg`, `errdetail` and `errhint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), detail: None, hint: None }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn null_argument(name: &str) -> Self {
        Error::new(ErrorKind::NullArgument, format!("argument \"{name}\" must not be NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn limit(what: &str, size: usize, limit: usize, setting: &str) -> Self {
        Error::new(
            ErrorKind::LimitExceeded,
            format!("{what} is {size} bytes, more than the limit of {limit} bytes"),
        )
        .with_hint(format!("The limit is set by {setting}."))
    }

    pub fn sqlstate(&self) -> &'static str {
        self.kind.sqlstate()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sqlstates_are_distinct_and_well_formed() {
        let codes: HashSet<_> = ErrorKind::ALL.iter().map(|k| k.sqlstate()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len(), "two kinds share a SQLSTATE");
        for k in ErrorKind::ALL {
            let s = k.sqlstate();
            assert_eq!(s.len(), 5);
            assert!(s.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        }
    }

    #[test]
    fn builders_keep_kind_and_text() {
        let e = Error::limit("template body", 20, 10, "pgprompt.max_template_bytes");
        assert_eq!(e.kind, ErrorKind::LimitExceeded);
        assert!(e.message.contains("20 bytes"));
        assert!(e.hint.unwrap().contains("pgprompt.max_template_bytes"));
        assert_eq!(Error::null_argument("name").sqlstate(), "22004");
    }
}
