//! The core's errors: one [`Error`] for everything that can fail, each variant carrying what a
//! caller needs to act on it. Bad input always says where (a JSON path) and what (the value).

use std::borrow::Cow;
use std::fmt;

use crate::quantity::QuantityError;

/// The most characters of a value an error message quotes: a 10 MB value of the wrong type makes
/// a message of a line, not of 10 MB.
pub const QUOTED_CHARS: usize = 100;
/// A bound on a whole message (or path), whatever it quotes.
const MESSAGE_CHARS: usize = 2000;

/// `value` as an error message quotes it: cut to [`QUOTED_CHARS`] characters and `...` when longer.
pub fn cut(value: &str) -> Cow<'_, str> {
    cut_to(value, QUOTED_CHARS)
}

/// `text` cut to `chars` characters and `...` when longer (a whole message quoting a value whose
/// length it does not control, as serde's do).
pub fn cut_to(text: &str, chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(chars) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}...", &text[..end])),
    }
}

/// `message` with every quoted span (`"..."`, with backslash escapes, or `` `...` ``) cut as
/// [`cut`] cuts a value: messages made by serde quote the input, at any length.
fn cut_quoted(message: &str) -> Cow<'_, str> {
    if message.len() <= QUOTED_CHARS {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len().min(MESSAGE_CHARS));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        let mut escaped = false;
        let close = body.bytes().position(|b| {
            let closes = !escaped && b == quote;
            escaped = quote == b'"' && !escaped && b == b'\\';
            closes
        });
        let Some(close) = close else {
            rest = body;
            break;
        };
        out.push_str(&cut(&body[..close]));
        out.push(char::from(quote));
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    match cut_to(&out, MESSAGE_CHARS) {
        Cow::Borrowed(_) => Cow::Owned(out),
        Cow::Owned(cut) => Cow::Owned(cut),
    }
}

/// A path with each long segment cut: map keys are the input's, at any length.
fn cut_path(path: &str) -> Cow<'_, str> {
    if path.len() <= QUOTED_CHARS {
        return Cow::Borrowed(path);
    }
    let segments: Vec<Cow<str>> = path.split('.').map(cut).collect();
    Cow::Owned(cut_to(&segments.join("."), MESSAGE_CHARS).into_owned())
}

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
    /// Long values quoted in `message`, and long keys in `path`, are cut (see [`cut`]).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        let (path, message) = (path.into(), message.into());
        InputError {
            path: match cut_path(&path) {
                Cow::Borrowed(_) => path,
                Cow::Owned(cut) => cut,
            },
            message: match cut_quoted(&message) {
                Cow::Borrowed(_) => message,
                Cow::Owned(cut) => cut,
            },
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join(f, &self.path, &self.message)
    }
}

impl std::error::Error for InputError {}

/// A scheduler configuration (a `KubeSchedulerConfiguration`, a profile, a plugin's args) that
/// kube-engine cannot run: an unknown plugin, args upstream's validation rejects, a weight out of
/// range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The plugin at fault, when one is.
    pub plugin: Option<String>,
    /// Where in the configuration, outermost first, in the words kube-scheduler's messages use:
    /// `profile "default-scheduler": pluginConfig PodTopologySpread: defaultConstraints[0].maxSkew`.
    /// Empty when the whole configuration is at fault.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError::at("", message)
    }

    /// An error at `path` (see [`ConfigError::path`]).
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            plugin: None,
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error, seen from one level up: `outer` goes in front of the path.
    pub fn within(mut self, outer: impl Into<String>) -> Self {
        let outer = outer.into();
        self.path = if self.path.is_empty() {
            outer
        } else {
            format!("{outer}: {}", self.path)
        };
        self
    }

    /// The same error, blamed on `plugin` unless a plugin already is.
    pub fn of_plugin(mut self, plugin: &str) -> Self {
        self.plugin.get_or_insert_with(|| plugin.to_string());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join(f, &self.path, &self.message)
    }
}

impl std::error::Error for ConfigError {}

/// How an argument is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgumentErrorKind {
    /// A value out of range or inconsistent with the others.
    Invalid,
    /// A name (of a pod, a node, a resource) the snapshot does not have: a failed look-up, as a
    /// missing key is.
    UnknownName,
}

/// An argument a caller passed that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgumentError {
    /// The argument, by the name the caller knows it (`pods`, `target`, `load`).
    pub argument: String,
    pub kind: ArgumentErrorKind,
    /// What is wrong: the whole text (some name the argument, some need not).
    pub message: String,
}

impl ArgumentError {
    /// A value out of range or inconsistent with the others.
    pub fn invalid(argument: impl Into<String>, message: impl Into<String>) -> Self {
        ArgumentError::new(argument, ArgumentErrorKind::Invalid, message)
    }

    /// A name the snapshot does not have.
    pub fn unknown_name(argument: impl Into<String>, message: impl Into<String>) -> Self {
        ArgumentError::new(argument, ArgumentErrorKind::UnknownName, message)
    }

    fn new(
        argument: impl Into<String>,
        kind: ArgumentErrorKind,
        message: impl Into<String>,
    ) -> Self {
        ArgumentError {
            argument: argument.into(),
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgumentError {}

#[derive(Debug)]
pub enum Error {
    /// A snapshot, a pod spec or a list page that is not valid Kubernetes input.
    Input(InputError),
    /// A string that is not a Kubernetes quantity (given on its own: a quantity inside a
    /// snapshot is [`Error::Input`], with its path).
    Quantity(QuantityError),
    /// A scheduler configuration kube-engine cannot run.
    Config(ConfigError),
    /// A caller passed something unusable (an unknown pod or node name, an option out of range).
    InvalidArgument(ArgumentError),
    /// A file that cannot be read.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A consistency check failed: a bug, never an input.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(e) => e.fmt(f),
            Error::Quantity(e) => e.fmt(f),
            Error::Config(e) => e.fmt(f),
            Error::InvalidArgument(e) => e.fmt(f),
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            Error::Internal(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(e)
    }
}

impl From<QuantityError> for Error {
    fn from(e: QuantityError) -> Self {
        Error::Quantity(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<ArgumentError> for Error {
    fn from(e: ArgumentError) -> Self {
        Error::InvalidArgument(e)
    }
}

/// `value` quoted (as `{:?}` quotes it), cut to [`QUOTED_CHARS`] characters followed by `...`.
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{:?}...", &value[..end]),
        None => format!("{value:?}"),
    }
}

/// `path: message`, or the message alone without a path.
fn join(f: &mut fmt::Formatter<'_>, path: &str, message: &str) -> fmt::Result {
    if path.is_empty() {
        f.write_str(message)
    } else {
        write!(f, "{path}: {message}")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(10_000_000);
        assert_eq!(cut("short"), "short");
        assert_eq!(cut(&long), format!("{}...", "x".repeat(QUOTED_CHARS)));
        // serde's own words quote the input whole.
        let e = InputError::new(
            format!("items[0].metadata.labels.{long}"),
            format!("invalid type: string \"{long}\", expected a number; unknown field `{long}`"),
        );
        let x = "x".repeat(QUOTED_CHARS);
        assert_eq!(e.path, format!("items[0].metadata.labels.{x}..."));
        assert_eq!(
            e.message,
            format!("invalid type: string \"{x}...\", expected a number; unknown field `{x}...`")
        );
        // Escaped quotes stay inside their string; multi-byte characters are never split.
        let e = InputError::new(
            "",
            format!("got \"{}\\\"{}\" here", "é".repeat(99), "ü".repeat(50)),
        );
        assert_eq!(e.message, format!("got \"{}\\...\" here", "é".repeat(99)));
        // An unclosed quote still gives a bounded message.
        let e = InputError::new("", format!("oops \"{long}"));
        assert!(e.message.len() < MESSAGE_CHARS + 10, "{}", e.message.len());
    }

    #[test]
    fn config_errors_read_outermost_first() {
        let e = ConfigError::at("defaultConstraints[0].maxSkew", "Invalid value: 0")
            .within("pluginConfig PodTopologySpread")
            .of_plugin("PodTopologySpread")
            .within("profile \"default-scheduler\"");
        assert_eq!(
            e.to_string(),
            "profile \"default-scheduler\": pluginConfig PodTopologySpread: \
             defaultConstraints[0].maxSkew: Invalid value: 0"
        );
        assert_eq!(e.plugin.as_deref(), Some("PodTopologySpread"));
        assert_eq!(ConfigError::new("no profile").to_string(), "no profile");
    }

    #[test]
    fn long_values_are_quoted_cut() {
        assert_eq!(quoted("a\"b"), r#""a\"b""#);
        let long = "é".repeat(10_000);
        assert_eq!(quoted(&long), format!("{:?}...", "é".repeat(QUOTED_CHARS)));
        assert_eq!(cut(&long), format!("{}...", "é".repeat(QUOTED_CHARS)));
    }
}
