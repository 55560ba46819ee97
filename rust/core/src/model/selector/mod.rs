//! Label selectors (`metav1.LabelSelector`) and the label sets they match.

mod interned;

use serde::Deserialize;

use super::meta::{null_default, KeyValues};
pub(crate) use interned::InternedSelector;

/// Anything that has labels: a node, a pod, a namespace.
pub trait LabelSet {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSet for KeyValues<String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "RequirementWire")]
pub struct Requirement {
    pub key: String,
    pub operator: SelectorOperator,
    pub values: Vec<String>,
}

#[derive(Deserialize)]
struct RequirementWire {
    key: String,
    operator: SelectorOperator,
    #[serde(default, deserialize_with = "null_default")]
    values: Vec<String>,
}

impl TryFrom<RequirementWire> for Requirement {
    type Error = String;
    fn try_from(w: RequirementWire) -> Result<Self, String> {
        check_set_values(w.operator, &w.key, &w.values)?;
        Ok(Requirement {
            key: w.key,
            operator: w.operator,
            values: w.values,
        })
    }
}

/// The API server's validation of set-based operators: `In`/`NotIn` need values,
/// `Exists`/`DoesNotExist` take none. Shared by label and node selector requirements.
pub(crate) fn check_set_values(
    operator: SelectorOperator,
    key: &str,
    values: &[String],
) -> Result<(), String> {
    match operator {
        SelectorOperator::In | SelectorOperator::NotIn if values.is_empty() => Err(format!(
            "operator {operator:?} on key {key:?} needs at least one value"
        )),
        SelectorOperator::Exists | SelectorOperator::DoesNotExist if !values.is_empty() => Err(
            format!("operator {operator:?} on key {key:?} takes no values, got {values:?}"),
        ),
        _ => Ok(()),
    }
}

/// Whether a label `value` (None: absent) satisfies a set-based operator.
pub(crate) fn set_matches(
    operator: SelectorOperator,
    values: &[String],
    value: Option<&str>,
) -> bool {
    match operator {
        SelectorOperator::In => value.is_some_and(|v| values.iter().any(|x| x == v)),
        SelectorOperator::NotIn => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        SelectorOperator::Exists => value.is_some(),
        SelectorOperator::DoesNotExist => value.is_none(),
    }
}

impl Requirement {
    pub fn matches(&self, labels: &impl LabelSet) -> bool {
        set_matches(self.operator, &self.values, labels.label(&self.key))
    }
}

/// A label selector: all requirements must hold. `matchLabels` entries become `In [value]`.
/// An empty selector matches everything; callers represent a *null* selector (which matches
/// nothing where Kubernetes says so) as `Option::None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "LabelSelectorWire")]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelSelectorWire {
    #[serde(default, deserialize_with = "null_default")]
    match_labels: KeyValues<String>,
    #[serde(default, deserialize_with = "null_default")]
    match_expressions: Vec<Requirement>,
}

impl From<LabelSelectorWire> for LabelSelector {
    fn from(w: LabelSelectorWire) -> Self {
        let mut requirements: Vec<Requirement> = w
            .match_labels
            .0
            .into_iter()
            .map(|(key, value)| Requirement {
                key,
                operator: SelectorOperator::In,
                values: vec![value],
            })
            .collect();
        requirements.extend(w.match_expressions);
        LabelSelector { requirements }
    }
}

impl LabelSelector {
    pub fn matches(&self, labels: &impl LabelSet) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> KeyValues<String> {
        KeyValues::from_pairs(pairs)
    }

    fn sel(json: &str) -> LabelSelector {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let s = sel(r#"{"matchLabels":{"app":"web"},
            "matchExpressions":[{"key":"tier","operator":"In","values":["fe","be"]},
                                {"key":"canary","operator":"DoesNotExist"}]}"#);
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("tier", "fe")])));
    }

    #[test]
    fn not_in_matches_absent_keys_and_exists_needs_presence() {
        let s = sel(r#"{"matchExpressions":[{"key":"env","operator":"NotIn","values":["prod"]}]}"#);
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("env", "dev")])));
        assert!(!s.matches(&labels(&[("env", "prod")])));
        let s = sel(r#"{"matchExpressions":[{"key":"env","operator":"Exists"}]}"#);
        assert!(s.matches(&labels(&[("env", "")])));
        assert!(!s.matches(&labels(&[])));
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(sel("{}").matches(&labels(&[("a", "b")])));
        assert!(sel(r#"{"matchLabels":null}"#).matches(&labels(&[])));
    }

    #[test]
    fn invalid_requirements_are_rejected_with_the_key() {
        let e = serde_json::from_str::<LabelSelector>(
            r#"{"matchExpressions":[{"key":"env","operator":"In","values":[]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("operator In on key \"env\" needs at least one value"),
            "{e}"
        );
        let e = serde_json::from_str::<LabelSelector>(
            r#"{"matchExpressions":[{"key":"env","operator":"Exists","values":["x"]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("takes no values"), "{e}");
        let e = serde_json::from_str::<LabelSelector>(
            r#"{"matchExpressions":[{"key":"env","operator":"Like","values":["x"]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown variant `Like`"), "{e}");
    }
}
