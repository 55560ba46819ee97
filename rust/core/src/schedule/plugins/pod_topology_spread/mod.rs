//! PodTopologySpread: `DoNotSchedule` topology spread constraints filter a node; `ScheduleAnyway`
//! ones score it (fewer matching pods in the node's domain is better), as kube-scheduler's
//! `podtopologyspread` plugin.
//!
//! Filter, per constraint: the eligible nodes are those that have every constraint's topology key
//! and pass the pod's `nodeSelector` / required node affinity (`nodeAffinityPolicy: Honor`, the
//! default) and its taints (`nodeTaintsPolicy: Honor`; the default is `Ignore`). Each eligible
//! domain counts the placed pods in the pod's namespace that the selector (narrowed by
//! `matchLabelKeys`) matches. A node is rejected when its domain's count, plus one if the pod
//! matches the selector itself, exceeds the global minimum by more than `maxSkew`; the minimum is
//! 0 while there are fewer eligible domains than `minDomains` (default 1). A node without a
//! constraint's key is rejected outright.
//!
//! Score: each `ScheduleAnyway` constraint gives a node `count × log(domains + 2) + maxSkew − 1`,
//! where the domains are those of the feasible nodes (for `kubernetes.io/hostname`: the feasible
//! nodes themselves, counted on the node); the sums are rounded and reversed to 0..100 so the
//! emptiest domain scores highest.
//!
//! A pod with no constraints of its own gets the plugin's default constraints (by default
//! upstream's system defaults: hostname maxSkew 3 and zone maxSkew 5, both `ScheduleAnyway`).
//! Upstream applies them with a selector built from the Services, ReplicaSets, StatefulSets and
//! ReplicationControllers that select the pod. A snapshot has none of those objects, so the
//! defaults apply to pods whose controller is a ReplicaSet, StatefulSet or ReplicationController,
//! and select the pods of that same controller: the set a ReplicaSet's or StatefulSet's selector
//! matches in practice. Pods owned by nothing, a DaemonSet or a Job get no default spreading
//! (upstream would spread them only if a Service selected them). With the system defaults, nodes
//! without every key are still scored (by the keys they have); with constraints of the pod's own
//! or listed defaults, they score 0.
//!
//! Upstream's quirks are kept: an empty `labelSelector` (`{}`) counts no placed pod yet matches
//! the pod itself; when scoring, nodes without a key form one domain of the value "".
//!
//! The placed pods a selector counts come from the snapshot's pod index (candidates by label, or
//! the controller's pods), and the eligible domains of a constraint set are kept there per set:
//! a cycle touches the pods that can match and the feasible nodes, not the whole cluster. The
//! index also numbers each topology key's values, so a cycle counts per domain in arrays.
//!
//! As upstream's `podtopologyspread` package: the plugin and its args here, the constraints a
//! pod is checked against in `common`, the system defaults in `defaults`, and the two extension
//! points in `filter` and `score`.

mod common;
mod defaults;
mod filter;
mod score;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::model::spread::{InclusionPolicy, TopologySpreadConstraint, WhenUnsatisfiable};
pub(crate) use common::HardSpread;
use defaults::{system_default, HOSTNAME, ZONE};
pub use score::{normalize_reversed, score_for_count, topology_normalizing_weight};

/// How a pod without constraints of its own gets some (`defaultingType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DefaultingType {
    /// Upstream's built-in defaults; `defaultConstraints` must then be empty.
    #[default]
    System,
    /// `defaultConstraints` as given (possibly none).
    List,
}

/// `PodTopologySpreadArgs`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTopologySpreadArgs {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub default_constraints: Vec<DefaultConstraint>,
    #[serde(default)]
    pub defaulting_type: DefaultingType,
}

/// A `v1.TopologySpreadConstraint` in `defaultConstraints`: the selector comes from the pod.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultConstraint {
    #[serde(default)]
    pub max_skew: i32,
    #[serde(default)]
    pub topology_key: String,
    pub when_unsatisfiable: WhenUnsatisfiable,
    /// Forbidden; read only to say so.
    #[serde(default)]
    pub label_selector: Option<serde_json::Value>,
    #[serde(default)]
    pub min_domains: Option<i32>,
    #[serde(default)]
    pub node_affinity_policy: Option<InclusionPolicy>,
    #[serde(default)]
    pub node_taints_policy: Option<InclusionPolicy>,
    #[serde(default)]
    pub match_label_keys: Vec<String>,
}

pub struct PodTopologySpread {
    defaults: Vec<TopologySpreadConstraint>,
    system_defaulted: bool,
}

impl PodTopologySpread {
    /// Validates the args as upstream's `ValidatePodTopologySpreadArgs`.
    pub fn new(args: PodTopologySpreadArgs) -> Result<Self, ConfigError> {
        if args.defaulting_type == DefaultingType::System && !args.default_constraints.is_empty() {
            return Err(ConfigError::at(
                "defaultingType",
                "Invalid value: \"System\": when .defaultConstraints are not empty (use \"List\")",
            ));
        }
        let mut defaults: Vec<TopologySpreadConstraint> = Vec::new();
        for (i, c) in args.default_constraints.into_iter().enumerate() {
            let at = format!("defaultConstraints[{i}]");
            if c.max_skew <= 0 {
                return Err(ConfigError::at(
                    format!("{at}.maxSkew"),
                    format!("Invalid value: {}: not in valid range (0, inf)", c.max_skew),
                ));
            }
            if c.topology_key.is_empty() {
                return Err(ConfigError::at(
                    format!("{at}.topologyKey"),
                    "Required value: can not be empty",
                ));
            }
            if c.label_selector.is_some() {
                return Err(ConfigError::at(
                    format!("{at}.labelSelector"),
                    "Forbidden: constraint must not define a selector, as they deduced for each pod",
                ));
            }
            if defaults.iter().any(|d| {
                d.topology_key == c.topology_key && d.when_unsatisfiable == c.when_unsatisfiable
            }) {
                return Err(ConfigError::at(
                    at,
                    format!(
                        "Duplicate value: {{{}, {:?}}}",
                        c.topology_key, c.when_unsatisfiable
                    ),
                ));
            }
            defaults.push(TopologySpreadConstraint {
                max_skew: c.max_skew,
                topology_key: c.topology_key,
                when_unsatisfiable: c.when_unsatisfiable,
                label_selector: None,
                min_domains: c.min_domains,
                node_affinity_policy: c.node_affinity_policy.unwrap_or(InclusionPolicy::Honor),
                node_taints_policy: c.node_taints_policy.unwrap_or(InclusionPolicy::Ignore),
                match_label_keys: c.match_label_keys,
            });
        }
        let system_defaulted = args.defaulting_type == DefaultingType::System;
        if system_defaulted {
            defaults = vec![system_default(3, HOSTNAME), system_default(5, ZONE)];
        }
        Ok(PodTopologySpread {
            defaults,
            system_defaulted,
        })
    }
}

impl Default for PodTopologySpread {
    fn default() -> Self {
        PodTopologySpread::new(PodTopologySpreadArgs::default()).expect("valid defaults")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(json: &str) -> Result<PodTopologySpread, String> {
        let args: PodTopologySpreadArgs = serde_json::from_str(json).map_err(|e| e.to_string())?;
        PodTopologySpread::new(args).map_err(|e| e.to_string())
    }

    #[test]
    fn system_defaults_and_list() {
        let p = build("{}").unwrap();
        assert!(p.system_defaulted);
        let keys: Vec<(&str, i32)> = p
            .defaults
            .iter()
            .map(|c| (c.topology_key.as_str(), c.max_skew))
            .collect();
        assert_eq!(keys, [(HOSTNAME, 3), (ZONE, 5)]);
        let p = build(
            r#"{"defaultingType":"List","defaultConstraints":[
                {"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule"}]}"#,
        )
        .unwrap();
        assert!(!p.system_defaulted);
        assert_eq!(p.defaults.len(), 1);
        assert_eq!(p.defaults[0].node_taints_policy, InclusionPolicy::Ignore);
        let p = build(r#"{"defaultingType":"List"}"#).unwrap();
        assert!(p.defaults.is_empty());
    }

    #[test]
    fn args_are_validated_like_upstream() {
        let err = |j: &str| build(j).err().unwrap();
        assert!(err(r#"{"defaultConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
            .contains("when .defaultConstraints are not empty"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":0,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
            .contains("defaultConstraints[0].maxSkew"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":1,"whenUnsatisfiable":"ScheduleAnyway"}]}"#)
            .contains("topologyKey: Required value"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{}}]}"#)
            .contains("must not define a selector"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[
                {"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"},
                {"maxSkew":2,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
        .contains("defaultConstraints[1]: Duplicate value"));
        assert!(err(r#"{"defaultingType":"Magic"}"#).contains("unknown variant `Magic`"));
        assert!(err(r#"{"defaultConstraint":[]}"#).contains("unknown field `defaultConstraint`"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":1,"topologyKey":"z","whenUnsatisfiable":"ScheduleAnyway","skew":2}]}"#)
            .contains("unknown field `skew`"));
    }
}
