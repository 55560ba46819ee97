//! The core's errors. Bad input always says where (a JSON path) and what (the value).

use std::fmt;

/// Input that does not describe a valid cluster: malformed JSON, a wrong kind, a missing or mistyped
/// field, an invalid quantity, a duplicate, a dangling reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// Where in the input, e.g. `items[52].spec.containers[0].resources.requests.cpu`.
    pub path: String,
    /// What is wrong, naming the offending value.
    pub message: String,
}

impl InputError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        InputError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for InputError {}

#[derive(Debug)]
pub enum Error {
    Input(InputError),
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A caller passed something unusable (an unknown pod or node name, ...).
    InvalidArgument(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(e) => e.fmt(f),
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            Error::InvalidArgument(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
