//! Profiles: the default one, and those read from a `KubeSchedulerConfiguration` (the subset
//! kube-engine models; anything else is rejected with a clear error).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::config_json;
use super::framework::Profile;
use super::plugins;
use crate::error::{quoted, ConfigError, Error};

/// kube-scheduler's default plugins (v1), in order, with their default score weights (0: no
/// Score extension).
pub const DEFAULT_PLUGINS: &[(&str, i64)] = &[
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("NodeResourcesBalancedAllocation", 1),
];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plugins {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    // Extension points that follow from Filter/Score here; accepted so upstream files load.
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileConfig {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<u32>,
    #[serde(default)]
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1), the fields kube-engine uses.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchedulerConfig {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<u32>,
    #[serde(default)]
    pub profiles: Vec<ProfileConfig>,
    /// Process-level settings that do not affect placement.
    #[serde(default)]
    pub parallelism: Option<u32>,
    #[serde(default)]
    pub leader_election: Option<Value>,
    #[serde(default)]
    pub client_connection: Option<Value>,
}

/// Applies one extension point's enabled/disabled lists to the running list of (name, weight).
fn apply_set(list: &mut Vec<(String, i64)>, set: &PluginSet, default_weight: impl Fn(&str) -> i64) {
    if set.disabled.iter().any(|p| p.name == "*") {
        list.clear();
    } else {
        list.retain(|(n, _)| !set.disabled.iter().any(|p| &p.name == n));
    }
    for p in &set.enabled {
        let weight = p.weight.unwrap_or_else(|| default_weight(&p.name));
        match list.iter_mut().find(|(n, _)| n == &p.name) {
            Some(slot) => slot.1 = weight,
            None => list.push((p.name.clone(), weight)),
        }
    }
}

fn default_weight(name: &str) -> i64 {
    DEFAULT_PLUGINS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(1, |&(_, w)| if w == 0 { 1 } else { w })
}

/// Builds a profile; `percentage` is the configuration-wide default.
pub fn build_profile(cfg: &ProfileConfig, percentage: Option<u32>) -> Result<Profile, ConfigError> {
    let name = cfg
        .scheduler_name
        .clone()
        .unwrap_or_else(|| "default-scheduler".into());
    let ctx = |e: ConfigError| e.within(format!("profile {}", quoted(&name)));
    let mut args: HashMap<&str, &Value> = HashMap::new();
    for pc in &cfg.plugin_config {
        if let Some(a) = &pc.args {
            if args.insert(pc.name.as_str(), a).is_some() {
                let twice =
                    ConfigError::new(format!("pluginConfig lists {} twice", quoted(&pc.name)));
                return Err(ctx(twice.of_plugin(&pc.name)));
            }
        }
    }
    // Upstream: multiPoint expands to every extension point a plugin implements; the specific
    // points then add or remove. Weights only matter for Score.
    let plugins = cfg.plugins.clone().unwrap_or_default();
    let mut multi: Vec<(String, i64)> = DEFAULT_PLUGINS
        .iter()
        .map(|&(n, w)| (n.to_string(), if w == 0 { 1 } else { w }))
        .collect();
    apply_set(&mut multi, &plugins.multi_point, default_weight);
    let mut filters = multi.clone();
    apply_set(&mut filters, &plugins.filter, default_weight);
    let mut scores = multi;
    apply_set(&mut scores, &plugins.score, default_weight);
    for set in [
        &plugins.pre_filter,
        &plugins.pre_score,
        &plugins.queue_sort,
        &plugins.bind,
    ] {
        for p in set.enabled.iter().chain(&set.disabled) {
            if p.name != "*" {
                plugins::build(&p.name, None).map_err(&ctx)?;
            }
        }
    }
    let mut profile = Profile {
        name: name.clone(),
        filters: Vec::new(),
        scores: Vec::new(),
        percentage_of_nodes_to_score: cfg.percentage_of_nodes_to_score.or(percentage),
    };
    for (plugin, _) in &filters {
        if let Some(built) =
            plugins::build(plugin, args.get(plugin.as_str()).copied()).map_err(&ctx)?
        {
            if let Some(f) = built.filter {
                profile.filters.push(f);
            }
        }
    }
    for (plugin, weight) in &scores {
        if !(1..=100).contains(weight) {
            let e = ConfigError::new(format!(
                "score weight of {plugin} must be 1..100, got {weight}"
            ));
            return Err(ctx(e.of_plugin(plugin)));
        }
        if let Some(built) =
            plugins::build(plugin, args.get(plugin.as_str()).copied()).map_err(&ctx)?
        {
            if let Some(s) = built.score {
                profile.scores.push((s, *weight));
            }
        }
    }
    for name in args.keys() {
        if !filters.iter().chain(&scores).any(|(n, _)| n == name)
            && plugins::build(name, None).is_err()
        {
            let e = ConfigError::new(format!(
                "pluginConfig names unknown plugin {}",
                quoted(name)
            ));
            return Err(ctx(e.of_plugin(name)));
        }
    }
    if let Some(p) = profile.percentage_of_nodes_to_score {
        if p > 100 {
            return Err(ctx(ConfigError::new(format!(
                "percentageOfNodesToScore must be 0..100, got {p}"
            ))));
        }
    }
    Ok(profile)
}

pub fn default_profile() -> Profile {
    build_profile(&ProfileConfig::default(), None).expect("the default profile is valid")
}

/// Every profile of a configuration (JSON; the Python layer reads YAML into it).
pub fn profiles_from_json(json: &str) -> Result<Vec<Profile>, Error> {
    let cfg: SchedulerConfig = config_json::from_str(json, "KubeSchedulerConfiguration")?;
    if let Some(kind) = cfg.kind.as_deref() {
        if kind != "KubeSchedulerConfiguration" {
            return Err(ConfigError::new(format!(
                "kind must be KubeSchedulerConfiguration, got {}",
                quoted(kind)
            ))
            .into());
        }
    }
    if let Some(v) = cfg.api_version.as_deref() {
        if !v.starts_with("kubescheduler.config.k8s.io/") {
            return Err(ConfigError::new(format!(
                "apiVersion must be kubescheduler.config.k8s.io/v1, got {}",
                quoted(v)
            ))
            .into());
        }
    }
    if cfg.profiles.is_empty() {
        return Ok(vec![build_profile(
            &ProfileConfig::default(),
            cfg.percentage_of_nodes_to_score,
        )?]);
    }
    let profiles = cfg.profiles.iter();
    Ok(profiles
        .map(|p| build_profile(p, cfg.percentage_of_nodes_to_score))
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Profile) -> (Vec<&str>, Vec<(&str, i64)>) {
        (
            p.filters.iter().map(|f| f.name()).collect(),
            p.scores.iter().map(|(s, w)| (s.name(), *w)).collect(),
        )
    }

    #[test]
    fn default_profile_matches_upstream_weights() {
        let profile = default_profile();
        let (filters, scores) = names(&profile);
        assert_eq!(
            filters,
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeBinding",
                "VolumeZone",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        assert_eq!(
            scores,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1)
            ]
        );
    }

    #[test]
    fn configuration_subset() {
        let ps = profiles_from_json(
            r#"{"apiVersion":"kubescheduler.config.k8s.io/v1","kind":"KubeSchedulerConfiguration",
                "profiles":[{"schedulerName":"packer","percentageOfNodesToScore":100,
                  "plugins":{"score":{"disabled":[{"name":"*"}],"enabled":[{"name":"NodeResourcesFit","weight":5}]},
                             "multiPoint":{"enabled":[{"name":"ImageLocality"}]}},
                  "pluginConfig":[{"name":"NodeResourcesFit","args":{"scoringStrategy":{"type":"MostAllocated"}}}]}]}"#,
        )
        .unwrap();
        let (filters, scores) = names(&ps[0]);
        assert_eq!(ps[0].name, "packer");
        assert_eq!(ps[0].percentage_of_nodes_to_score, Some(100));
        assert_eq!(filters.len(), 10);
        assert_eq!(scores, [("NodeResourcesFit", 5)]);
    }

    #[test]
    fn a_configuration_and_its_parts_are_objects() {
        let err = |j: &str| profiles_from_json(j).err().unwrap().to_string();
        for (json, at) in [
            ("[]", "KubeSchedulerConfiguration: invalid type: an array"),
            ("null", "KubeSchedulerConfiguration: invalid type: null"),
            ("5", "KubeSchedulerConfiguration: invalid type: integer `5`"),
            (
                r#"{"profiles": [[]]}"#,
                "profiles[0]: invalid type: an array",
            ),
            (r#"{"profiles": {}}"#, "profiles: invalid type: map"),
            (
                r#"{"profiles": [{"plugins": []}]}"#,
                "profiles[0].plugins: invalid",
            ),
            (
                r#"{"profiles": [{"plugins": {"score": {"enabled": [["x"]]}}}]}"#,
                "profiles[0].plugins.score.enabled[0]: invalid type: an array",
            ),
            (
                r#"{"percentageOfNodesToScore": -1}"#,
                "percentageOfNodesToScore: invalid value",
            ),
            (
                r#"{"percentageOfNodesToScore": 1.5}"#,
                "percentageOfNodesToScore: invalid type",
            ),
            (
                r#"{"profiles": [{"pluginConfig": [{"name": "NodeResourcesFit", "args": []}]}]}"#,
                "pluginConfig NodeResourcesFit: args: invalid type: an array",
            ),
        ] {
            let e = err(json);
            assert!(e.contains(at), "{json}: {e}");
        }
    }

    #[test]
    fn unknown_plugins_and_args_are_errors() {
        let err = |j: &str| profiles_from_json(j).err().unwrap().to_string();
        assert!(
            err(r#"{"profiles":[{"plugins":{"score":{"enabled":[{"name":"Magic"}]}}}]}"#)
                .contains("unknown plugin \"Magic\"")
        );
        assert!(err(
            r#"{"profiles":[{"pluginConfig":[{"name":"NodeResourcesFit","args":{"speed":11}}]}]}"#
        )
        .contains("unknown field `speed`"));
        assert!(
            err(r#"{"profiles":[{"pluginConfig":[{"name":"Nope","args":{}}]}]}"#)
                .contains("unknown plugin")
        );
        assert!(err(r#"{"kind":"Deployment"}"#).contains("kind must be KubeSchedulerConfiguration"));
        assert!(
            err(r#"{"profiles":[{"plugins":{"permit":{}}}]}"#).contains("unknown field `permit`")
        );
        assert!(err(r#"{"profiles":[{"plugins":{"score":{"enabled":[{"name":"NodeAffinity","weight":0}]}}}]}"#)
            .contains("must be 1..100"));
    }
}
