//! Node affinity (`nodeSelector`, required/preferred node selector terms) and pod (anti-)affinity
//! terms, with the API server's validation rules.

use serde::Deserialize;

use super::meta::null_default;
use super::selector::{check_set_values, set_matches, LabelSelector, LabelSet, SelectorOperator};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum NodeSelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "NodeSelectorRequirementWire")]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: NodeSelectorOperator,
    pub values: Vec<String>,
    /// The bound of `Gt`/`Lt`, parsed once.
    pub bound: i64,
    /// Whether kube-scheduler can turn the requirement into a label selector: every `In`/`NotIn`
    /// value a valid label value, a `Gt`/`Lt` value an integer. The API server checks neither,
    /// and a term with a requirement it cannot parse matches no node.
    pub parses: bool,
}

#[derive(Deserialize)]
struct NodeSelectorRequirementWire {
    key: String,
    operator: NodeSelectorOperator,
    #[serde(default, deserialize_with = "null_default")]
    values: Vec<String>,
}

impl NodeSelectorOperator {
    /// The label-selector operator with the same meaning, for all but `Gt`/`Lt`.
    fn as_set(self) -> Option<SelectorOperator> {
        match self {
            NodeSelectorOperator::In => Some(SelectorOperator::In),
            NodeSelectorOperator::NotIn => Some(SelectorOperator::NotIn),
            NodeSelectorOperator::Exists => Some(SelectorOperator::Exists),
            NodeSelectorOperator::DoesNotExist => Some(SelectorOperator::DoesNotExist),
            NodeSelectorOperator::Gt | NodeSelectorOperator::Lt => None,
        }
    }
}

impl TryFrom<NodeSelectorRequirementWire> for NodeSelectorRequirement {
    type Error = String;
    fn try_from(w: NodeSelectorRequirementWire) -> Result<Self, String> {
        let (bound, parses) = match w.operator.as_set() {
            Some(op) => {
                check_set_values(op, &w.key, &w.values)?;
                (0, w.values.iter().all(|v| is_label_value(v)))
            }
            None => {
                // Validation requires exactly one value; kube-scheduler, an integer.
                let [v] = w.values.as_slice() else {
                    return Err(format!(
                        "operator {:?} on key {:?} needs exactly one value, got {:?}",
                        w.operator, w.key, w.values
                    ));
                };
                v.parse().map_or((0, false), |b| (b, true))
            }
        };
        Ok(NodeSelectorRequirement {
            key: w.key,
            operator: w.operator,
            values: w.values,
            bound,
            parses,
        })
    }
}

/// A valid label value: at most 63 characters, alphanumerics with `-`, `_` or `.` inside.
fn is_label_value(v: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    v.len() <= 63
        && v.chars().all(inner)
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

impl NodeSelectorRequirement {
    pub(crate) fn matches_value(&self, value: Option<&str>) -> bool {
        let number = || value.and_then(|v| v.parse::<i64>().ok());
        match self.operator {
            // A label that is missing or not an integer never satisfies Gt/Lt.
            NodeSelectorOperator::Gt => number().is_some_and(|v| v > self.bound),
            NodeSelectorOperator::Lt => number().is_some_and(|v| v < self.bound),
            op => set_matches(op.as_set().expect("set operator"), &self.values, value),
        }
    }
}

/// One node selector term: all its expressions and fields must hold. `matchFields` supports
/// `metadata.name`, the only field Kubernetes allows there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "NodeSelectorTermWire")]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<NodeSelectorRequirement>,
    pub match_fields: Vec<NodeSelectorRequirement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeSelectorTermWire {
    #[serde(default, deserialize_with = "null_default")]
    match_expressions: Vec<NodeSelectorRequirement>,
    #[serde(default, deserialize_with = "null_default")]
    match_fields: Vec<NodeSelectorRequirement>,
}

impl TryFrom<NodeSelectorTermWire> for NodeSelectorTerm {
    type Error = String;
    fn try_from(w: NodeSelectorTermWire) -> Result<Self, String> {
        if let Some(f) = w.match_fields.iter().find(|f| f.key != "metadata.name") {
            return Err(format!(
                "matchFields key {:?} is not supported (only metadata.name)",
                f.key
            ));
        }
        Ok(NodeSelectorTerm {
            match_expressions: w.match_expressions,
            match_fields: w.match_fields,
        })
    }
}

impl NodeSelectorTerm {
    /// An empty term matches no node (Kubernetes: "a null or empty node selector term matches no
    /// objects").
    pub fn matches(&self, node_name: &str, labels: &impl LabelSet) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        self.match_expressions
            .iter()
            .all(|r| r.parses && r.matches_value(labels.label(&r.key)))
            && self
                .match_fields
                .iter()
                .all(|r| r.matches_value(Some(node_name)))
    }
}

/// Required node affinity: the terms are ORed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelector {
    #[serde(deserialize_with = "null_default")]
    pub node_selector_terms: Vec<NodeSelectorTerm>,
}

impl NodeSelector {
    pub fn matches(&self, node_name: &str, labels: &impl LabelSet) -> bool {
        self.node_selector_terms
            .iter()
            .any(|t| t.matches(node_name, labels))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "PreferredSchedulingTermWire")]
pub struct PreferredSchedulingTerm {
    pub weight: i32,
    pub preference: NodeSelectorTerm,
}

#[derive(Deserialize)]
struct PreferredSchedulingTermWire {
    weight: i32,
    preference: NodeSelectorTerm,
}

impl TryFrom<PreferredSchedulingTermWire> for PreferredSchedulingTerm {
    type Error = String;
    fn try_from(w: PreferredSchedulingTermWire) -> Result<Self, String> {
        check_weight(w.weight)?;
        Ok(PreferredSchedulingTerm {
            weight: w.weight,
            preference: w.preference,
        })
    }
}

fn check_weight(weight: i32) -> Result<(), String> {
    if (1..=100).contains(&weight) {
        Ok(())
    } else {
        Err(format!("weight {weight} is outside 1..=100"))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAffinity {
    #[serde(default, rename = "requiredDuringSchedulingIgnoredDuringExecution")]
    pub required: Option<NodeSelector>,
    #[serde(
        default,
        rename = "preferredDuringSchedulingIgnoredDuringExecution",
        deserialize_with = "null_default"
    )]
    pub preferred: Vec<PreferredSchedulingTerm>,
}

/// A pod (anti-)affinity term: pods matching `label_selector` in the selected namespaces, counted
/// per domain of `topology_key`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "PodAffinityTermWire")]
pub struct PodAffinityTerm {
    /// `None` (a null selector) matches no pod.
    pub label_selector: Option<LabelSelector>,
    pub namespaces: Vec<String>,
    /// `None`: only `namespaces` (or the pod's own namespace when that is empty too); an empty
    /// selector selects every namespace.
    pub namespace_selector: Option<LabelSelector>,
    pub topology_key: String,
    pub match_label_keys: Vec<String>,
    pub mismatch_label_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodAffinityTermWire {
    #[serde(default)]
    label_selector: Option<LabelSelector>,
    #[serde(default, deserialize_with = "null_default")]
    namespaces: Vec<String>,
    #[serde(default)]
    namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    topology_key: String,
    #[serde(default, deserialize_with = "null_default")]
    match_label_keys: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    mismatch_label_keys: Vec<String>,
}

impl TryFrom<PodAffinityTermWire> for PodAffinityTerm {
    type Error = String;
    fn try_from(w: PodAffinityTermWire) -> Result<Self, String> {
        if w.topology_key.is_empty() {
            return Err("topologyKey must not be empty".into());
        }
        Ok(PodAffinityTerm {
            label_selector: w.label_selector,
            namespaces: w.namespaces,
            namespace_selector: w.namespace_selector,
            topology_key: w.topology_key,
            match_label_keys: w.match_label_keys,
            mismatch_label_keys: w.mismatch_label_keys,
        })
    }
}

impl PodAffinityTerm {
    /// Whether `pod` (in `namespace`, with `labels`) is selected by this term written on a pod in
    /// `owner_namespace`. `namespace_labels` resolves namespace selectors; without namespace
    /// objects in the snapshot only the empty selector (all namespaces) can match.
    pub fn selects(
        &self,
        owner_namespace: &str,
        namespace: &str,
        labels: &impl LabelSet,
        namespace_labels: Option<&dyn Fn(&str) -> bool>,
    ) -> bool {
        let Some(selector) = &self.label_selector else {
            return false;
        };
        let in_namespace = if self.namespaces.iter().any(|n| n == namespace) {
            true
        } else if let Some(ns_sel) = &self.namespace_selector {
            ns_sel.is_empty() || namespace_labels.is_some_and(|f| f(namespace))
        } else {
            self.namespaces.is_empty() && namespace == owner_namespace
        };
        in_namespace && selector.matches(labels)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "WeightedPodAffinityTermWire")]
pub struct WeightedPodAffinityTerm {
    pub weight: i32,
    pub pod_affinity_term: PodAffinityTerm,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WeightedPodAffinityTermWire {
    weight: i32,
    pod_affinity_term: PodAffinityTerm,
}

impl TryFrom<WeightedPodAffinityTermWire> for WeightedPodAffinityTerm {
    type Error = String;
    fn try_from(w: WeightedPodAffinityTermWire) -> Result<Self, String> {
        check_weight(w.weight)?;
        Ok(WeightedPodAffinityTerm {
            weight: w.weight,
            pod_affinity_term: w.pod_affinity_term,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct PodAffinity {
    #[serde(
        default,
        rename = "requiredDuringSchedulingIgnoredDuringExecution",
        deserialize_with = "null_default"
    )]
    pub required: Vec<PodAffinityTerm>,
    #[serde(
        default,
        rename = "preferredDuringSchedulingIgnoredDuringExecution",
        deserialize_with = "null_default"
    )]
    pub preferred: Vec<WeightedPodAffinityTerm>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    #[serde(default)]
    pub node_affinity: Option<NodeAffinity>,
    #[serde(default)]
    pub pod_affinity: Option<PodAffinity>,
    #[serde(default)]
    pub pod_anti_affinity: Option<PodAffinity>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::meta::KeyValues;

    fn labels(pairs: &[(&str, &str)]) -> KeyValues<String> {
        KeyValues::from_pairs(pairs)
    }

    fn term(json: &str) -> NodeSelectorTerm {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn operators() {
        let node = labels(&[("zone", "a"), ("cores", "16"), ("gpu", "yes")]);
        let cases = [
            (r#"{"key":"zone","operator":"In","values":["a","b"]}"#, true),
            (r#"{"key":"zone","operator":"In","values":["b"]}"#, false),
            (r#"{"key":"zone","operator":"NotIn","values":["b"]}"#, true),
            (
                r#"{"key":"missing","operator":"NotIn","values":["b"]}"#,
                true,
            ),
            (r#"{"key":"gpu","operator":"Exists"}"#, true),
            (r#"{"key":"gpu","operator":"DoesNotExist"}"#, false),
            (r#"{"key":"missing","operator":"DoesNotExist"}"#, true),
            (r#"{"key":"cores","operator":"Gt","values":["8"]}"#, true),
            (r#"{"key":"cores","operator":"Gt","values":["16"]}"#, false),
            (r#"{"key":"cores","operator":"Lt","values":["32"]}"#, true),
            (r#"{"key":"zone","operator":"Lt","values":["32"]}"#, false),
            (r#"{"key":"missing","operator":"Gt","values":["1"]}"#, false),
        ];
        for (req, want) in cases {
            let t = term(&format!(r#"{{"matchExpressions":[{req}]}}"#));
            assert_eq!(t.matches("n1", &node), want, "{req}");
        }
    }

    #[test]
    fn terms_are_ored_expressions_anded_and_empty_terms_match_nothing() {
        let sel: NodeSelector = serde_json::from_str(
            r#"{"nodeSelectorTerms":[
                {"matchExpressions":[{"key":"zone","operator":"In","values":["a"]},
                                     {"key":"gpu","operator":"Exists"}]},
                {"matchFields":[{"key":"metadata.name","operator":"In","values":["n2"]}]},
                {}]}"#,
        )
        .unwrap();
        assert!(sel.matches("n1", &labels(&[("zone", "a"), ("gpu", "1")])));
        assert!(!sel.matches("n1", &labels(&[("zone", "a")])));
        assert!(sel.matches("n2", &labels(&[])));
        assert!(!NodeSelector::default().matches("n1", &labels(&[])));
    }

    #[test]
    fn a_term_kube_scheduler_cannot_parse_matches_no_node() {
        // The API server admits these; kube-scheduler's label selector rejects the values, and
        // the term they are in then matches nothing (its other terms still may).
        let sel: NodeSelector = serde_json::from_str(
            r#"{"nodeSelectorTerms":[
                {"matchExpressions":[{"key":"foo","operator":"NotIn","values":["invalid value: ___@#$%^"]}]},
                {"matchExpressions":[{"key":"cores","operator":"Gt","values":["many"]}]},
                {"matchFields":[{"key":"metadata.name","operator":"In","values":["n2"]}]}]}"#,
        )
        .unwrap();
        let node = labels(&[("foo", "bar"), ("cores", "64")]);
        assert!(!sel.matches("n1", &node));
        assert!(sel.matches("n2", &node));
        assert!(is_label_value("") && is_label_value("a.b-c_d") && !is_label_value("-a"));
        assert!(!is_label_value(&"a".repeat(64)) && !is_label_value("a b"));
    }

    #[test]
    fn validation_errors_name_the_problem() {
        let err = |j: &str| {
            serde_json::from_str::<NodeSelectorTerm>(j)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(r#"{"matchExpressions":[{"key":"c","operator":"Gt","values":["1","2"]}]}"#)
                .contains("needs exactly one value")
        );
        assert!(
            err(r#"{"matchFields":[{"key":"metadata.uid","operator":"In","values":["x"]}]}"#)
                .contains("not supported")
        );
        let e = serde_json::from_str::<WeightedPodAffinityTerm>(
            r#"{"weight":0,"podAffinityTerm":{"topologyKey":"zone","labelSelector":{}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("weight 0 is outside 1..=100"), "{e}");
        let e = serde_json::from_str::<PodAffinityTerm>(r#"{"labelSelector":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("topologyKey must not be empty"), "{e}");
    }

    #[test]
    fn pod_affinity_term_namespaces() {
        let t: PodAffinityTerm = serde_json::from_str(
            r#"{"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"db"}}}"#,
        )
        .unwrap();
        let db = labels(&[("app", "db")]);
        assert!(t.selects("prod", "prod", &db, None));
        assert!(!t.selects("prod", "dev", &db, None));
        assert!(!t.selects("prod", "prod", &labels(&[("app", "web")]), None));
        let all: PodAffinityTerm = serde_json::from_str(
            r#"{"topologyKey":"zone","namespaceSelector":{},"labelSelector":{"matchLabels":{"app":"db"}}}"#,
        )
        .unwrap();
        assert!(all.selects("prod", "dev", &db, None));
        let null_sel: PodAffinityTerm = serde_json::from_str(r#"{"topologyKey":"zone"}"#).unwrap();
        assert!(!null_sel.selects("prod", "prod", &db, None));
    }
}
