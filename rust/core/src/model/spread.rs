//! Pod topology spread constraints.

use serde::Deserialize;

use super::meta::null_default;
use super::selector::LabelSelector;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum WhenUnsatisfiable {
    DoNotSchedule,
    ScheduleAnyway,
}

/// Whether node affinity / taints decide which nodes count as domains (`nodeAffinityPolicy`,
/// `nodeTaintsPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum InclusionPolicy {
    Honor,
    Ignore,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "SpreadWire")]
pub struct TopologySpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub when_unsatisfiable: WhenUnsatisfiable,
    /// `None` selects no pod (each domain then counts 0).
    pub label_selector: Option<LabelSelector>,
    pub min_domains: Option<i32>,
    /// Default `Honor`.
    pub node_affinity_policy: InclusionPolicy,
    /// Default `Ignore`.
    pub node_taints_policy: InclusionPolicy,
    pub match_label_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpreadWire {
    max_skew: i32,
    topology_key: String,
    when_unsatisfiable: WhenUnsatisfiable,
    #[serde(default)]
    label_selector: Option<LabelSelector>,
    #[serde(default)]
    min_domains: Option<i32>,
    #[serde(default)]
    node_affinity_policy: Option<InclusionPolicy>,
    #[serde(default)]
    node_taints_policy: Option<InclusionPolicy>,
    #[serde(default, deserialize_with = "null_default")]
    match_label_keys: Vec<String>,
}

impl TryFrom<SpreadWire> for TopologySpreadConstraint {
    type Error = String;
    fn try_from(w: SpreadWire) -> Result<Self, String> {
        if w.max_skew < 1 {
            return Err(format!("maxSkew must be at least 1, got {}", w.max_skew));
        }
        if w.topology_key.is_empty() {
            return Err("topologyKey must not be empty".into());
        }
        if let Some(m) = w.min_domains {
            if m < 1 {
                return Err(format!("minDomains must be at least 1, got {m}"));
            }
            if w.when_unsatisfiable != WhenUnsatisfiable::DoNotSchedule {
                return Err(
                    "minDomains is only allowed with whenUnsatisfiable DoNotSchedule".into(),
                );
            }
        }
        Ok(TopologySpreadConstraint {
            max_skew: w.max_skew,
            topology_key: w.topology_key,
            when_unsatisfiable: w.when_unsatisfiable,
            label_selector: w.label_selector,
            min_domains: w.min_domains,
            node_affinity_policy: w.node_affinity_policy.unwrap_or(InclusionPolicy::Honor),
            node_taints_policy: w.node_taints_policy.unwrap_or(InclusionPolicy::Ignore),
            match_label_keys: w.match_label_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c: TopologySpreadConstraint = serde_json::from_str(
            r#"{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule",
                "labelSelector":{"matchLabels":{"app":"web"}}}"#,
        )
        .unwrap();
        assert_eq!(c.node_affinity_policy, InclusionPolicy::Honor);
        assert_eq!(c.node_taints_policy, InclusionPolicy::Ignore);
        assert_eq!(c.min_domains, None);
        let err = |j: &str| {
            serde_json::from_str::<TopologySpreadConstraint>(j)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(r#"{"maxSkew":0,"topologyKey":"z","whenUnsatisfiable":"DoNotSchedule"}"#)
                .contains("maxSkew must be at least 1, got 0")
        );
        assert!(err(
            r#"{"maxSkew":1,"topologyKey":"z","whenUnsatisfiable":"ScheduleAnyway","minDomains":2}"#
        )
        .contains("only allowed with whenUnsatisfiable DoNotSchedule"));
        assert!(
            err(r#"{"maxSkew":1,"topologyKey":"z","whenUnsatisfiable":"Sometimes"}"#)
                .contains("unknown variant `Sometimes`")
        );
    }
}
