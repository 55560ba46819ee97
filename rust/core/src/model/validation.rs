//! The API server's checks on names, label keys and values, as apimachinery's
//! `util/validation` words them: an input the API server would refuse is refused here too, with
//! the message a user knows from `kubectl`.
//!
//! Each check returns the detail of `field.Invalid` (what follows `Invalid value: "x": `); the
//! caller puts the path and the value in front, through [`invalid`].

use crate::error::cut;

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
/// The API server's bound on all of an object's annotations together, keys and values.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 << 10;

const DNS1123_LABEL_ERROR: &str = "a lowercase RFC 1123 label must consist of lower case \
    alphanumeric characters or '-', and must start and end with an alphanumeric character \
    (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_ERROR: &str = "a lowercase RFC 1123 subdomain must consist of lower \
    case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
    character (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_ERROR: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
    and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
    '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_ERROR: &str = "a valid label must be an empty string or consist of \
    alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
    character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
    '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `Invalid value: "<value>": <detail>`, the value cut when long.
pub fn invalid(value: &str, detail: &str) -> String {
    format!("Invalid value: \"{}\": {detail}", cut(value))
}

fn too_long(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, without the length bound.
fn dns_label_chars(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(&a), Some(&z)) => {
            is_lower_alnum(a)
                && is_lower_alnum(z)
                && s.iter().all(|&b| is_lower_alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// An RFC 1123 label (namespace names, container names).
pub fn dns1123_label(value: &str) -> Result<(), String> {
    if value.len() > DNS1123_LABEL_MAX {
        return Err(too_long(DNS1123_LABEL_MAX));
    }
    if !dns_label_chars(value.as_bytes()) {
        return Err(DNS1123_LABEL_ERROR.into());
    }
    Ok(())
}

/// An RFC 1123 subdomain (the names of pods, nodes, volumes, claims, storage classes).
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(too_long(DNS1123_SUBDOMAIN_MAX));
    }
    if value.is_empty()
        || !value
            .split('.')
            .all(|part| dns_label_chars(part.as_bytes()))
    {
        return Err(DNS1123_SUBDOMAIN_ERROR.into());
    }
    Ok(())
}

/// A name that can be a path segment (`path.ValidatePathSegmentName`): what the API server asks
/// of every object's name, and all it asks of a PodDisruptionBudget's.
pub fn path_segment_name(value: &str) -> Result<(), String> {
    if value == "." || value == ".." {
        return Err(format!("may not be '{value}'"));
    }
    for bad in ['/', '%'] {
        if value.contains(bad) {
            return Err(format!("may not contain '{bad}'"));
        }
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, without the length bound.
fn qualified_chars(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(a), Some(z)) => {
            a.is_ascii_alphanumeric()
                && z.is_ascii_alphanumeric()
                && s.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        }
        _ => false,
    }
}

/// A qualified name (label keys, annotation keys, taint and toleration keys): an optional DNS
/// subdomain prefix and `/`, then a name of at most 63 characters.
pub fn qualified_name(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.split_once('/') {
        Some((_, rest)) if rest.contains('/') => {
            return Err(format!(
                "a qualified name {QUALIFIED_NAME_ERROR} with an optional DNS subdomain prefix \
                 and '/' (e.g. 'example.com/MyName')"
            ))
        }
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        dns1123_subdomain(prefix).map_err(|e| format!("prefix part {e}"))?;
    }
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > QUALIFIED_NAME_MAX {
        return Err(format!("name part {}", too_long(QUALIFIED_NAME_MAX)));
    }
    if !qualified_chars(name.as_bytes()) {
        return Err(format!("name part {QUALIFIED_NAME_ERROR}"));
    }
    Ok(())
}

/// A label value: empty, or up to 63 characters of the qualified-name alphabet.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.len() > LABEL_VALUE_MAX {
        return Err(too_long(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !qualified_chars(value.as_bytes()) {
        return Err(LABEL_VALUE_ERROR.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "web-0", "node-1.example.com", &"a".repeat(253)] {
            assert_eq!(dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/b",
            "-a",
            "a-",
            "a..b",
            "a_b",
            ".a",
            &"a".repeat(254),
        ] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
        assert_eq!(dns1123_label(&"a".repeat(63)), Ok(()));
        assert_eq!(dns1123_label(&"a".repeat(64)), Err(too_long(63)));
        assert!(dns1123_label("a.b").is_err());
        assert_eq!(path_segment_name("Any_Name:1"), Ok(()));
        assert_eq!(path_segment_name("a/b"), Err("may not contain '/'".into()));
        assert_eq!(path_segment_name(".."), Err("may not be '..'".into()));
    }

    #[test]
    fn qualified_names_and_label_values() {
        for ok in [
            "app",
            "App_1.x",
            "example.com/Name",
            "kubernetes.io/hostname",
            &"a".repeat(63),
        ] {
            assert_eq!(qualified_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            qualified_name(""),
            Err("name part must be non-empty".into())
        );
        assert_eq!(
            qualified_name("a/"),
            Err("name part must be non-empty".into())
        );
        assert_eq!(
            qualified_name("/a"),
            Err("prefix part must be non-empty".into())
        );
        assert!(qualified_name("a/b/c")
            .unwrap_err()
            .starts_with("a qualified name must"));
        assert!(qualified_name("Example.com/a")
            .unwrap_err()
            .starts_with("prefix part a lowercase"));
        assert!(qualified_name("bad key")
            .unwrap_err()
            .starts_with("name part must consist"));
        assert_eq!(
            qualified_name(&"a".repeat(64)),
            Err("name part must be no more than 63 characters".into())
        );
        assert_eq!(
            qualified_name(&format!("{}/a", "b".repeat(254))),
            Err("prefix part must be no more than 253 characters".into())
        );
        for ok in ["", "v", "V1.2_x-y", &"a".repeat(63)] {
            assert_eq!(label_value(ok), Ok(()), "{ok}");
        }
        for bad in ["-v", "v-", "a b", "é", &"a".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad}");
        }
        assert_eq!(invalid("a b", "x"), "Invalid value: \"a b\": x");
    }
}
