//! The plugin registry: every plugin kube-engine implements, by its kube-scheduler name.

pub mod balanced_allocation;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod packing;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volumes;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config_json;
use super::framework::{FilterPlugin, ScorePlugin};
use crate::error::{quoted, ConfigError};

/// What a name in a profile turns into.
pub struct Built {
    pub filter: Option<Box<dyn FilterPlugin>>,
    pub score: Option<Box<dyn ScorePlugin>>,
}

/// Upstream plugins kube-engine accepts in a configuration but does not model (volume limits and
/// restrictions, images, preemption, queueing and binding); they have no effect on placement.
pub const NOT_MODELLED: &[&str] = &[
    "PrioritySort",
    "DefaultBinder",
    "DefaultPreemption",
    "SchedulingGates",
    "ImageLocality",
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "DynamicResources",
    "EBSLimits",
    "GCEPDLimits",
    "AzureDiskLimits",
];

/// Plugin `name`'s args (its defaults when there are none).
fn args<T: DeserializeOwned + Default>(name: &str, args: Option<&Value>) -> Result<T, ConfigError> {
    match args {
        None => Ok(T::default()),
        Some(v) => config_json::from_value(v, "args")
            .map_err(|e| e.within(format!("pluginConfig {name}")).of_plugin(name)),
    }
}

/// Checks that plugin `name`, which takes no args, was given none (or only their type meta).
fn no_args(name: &str, a: Option<&Value>) -> Result<(), ConfigError> {
    match a {
        None => Ok(()),
        Some(Value::Object(m)) if m.keys().all(|k| k == "kind" || k == "apiVersion") => Ok(()),
        Some(_) => Err(ConfigError::at(
            format!("pluginConfig {name}"),
            "this plugin takes no args",
        )
        .of_plugin(name)),
    }
}

/// A plugin constructor's complaint about its args, placed under the plugin's `pluginConfig`.
fn invalid_args(name: &str) -> impl Fn(ConfigError) -> ConfigError + '_ {
    move |e| e.within(format!("pluginConfig {name}")).of_plugin(name)
}

/// The plugin called `name`, configured with `args`; `Ok(None)` for a plugin in [`NOT_MODELLED`].
pub fn build(name: &str, a: Option<&Value>) -> Result<Option<Built>, ConfigError> {
    if let Some(built) = packing::build(name, a)? {
        return Ok(Some(built));
    }
    use balanced_allocation::BalancedAllocation;
    use node_resources_fit::NodeResourcesFit;
    let both = |f: Box<dyn FilterPlugin>, s: Box<dyn ScorePlugin>| Built {
        filter: Some(f),
        score: Some(s),
    };
    let filter = |f: Box<dyn FilterPlugin>| Built {
        filter: Some(f),
        score: None,
    };
    let built = match name {
        "NodeUnschedulable" => {
            no_args(name, a).map(|_| filter(Box::new(node_unschedulable::NodeUnschedulable)))?
        }
        "NodeName" => no_args(name, a).map(|_| filter(Box::new(node_name::NodeName)))?,
        "NodePorts" => no_args(name, a).map(|_| filter(Box::new(node_ports::NodePorts)))?,
        "TaintToleration" => no_args(name, a).map(|_| {
            both(
                Box::new(taint_toleration::TaintToleration),
                Box::new(taint_toleration::TaintToleration),
            )
        })?,
        "NodeAffinity" => {
            let na_args: node_affinity::NodeAffinityArgs = args(name, a)?;
            let plugin = node_affinity::NodeAffinity::new(na_args).map_err(invalid_args(name))?;
            both(Box::new(plugin.clone()), Box::new(plugin))
        }
        "NodeResourcesFit" => {
            let fit_args: node_resources_fit::FitArgs = args(name, a)?;
            both(
                Box::new(NodeResourcesFit::new(fit_args.clone()).map_err(invalid_args(name))?),
                Box::new(NodeResourcesFit::new(fit_args).map_err(invalid_args(name))?),
            )
        }
        "PodTopologySpread" => {
            let spread_args: pod_topology_spread::PodTopologySpreadArgs = args(name, a)?;
            let build = || {
                pod_topology_spread::PodTopologySpread::new(spread_args.clone())
                    .map_err(invalid_args(name))
            };
            both(Box::new(build()?), Box::new(build()?))
        }
        "InterPodAffinity" => {
            let ipa_args: inter_pod_affinity::InterPodAffinityArgs = args(name, a)?;
            let build = || {
                inter_pod_affinity::InterPodAffinity::new(ipa_args.clone())
                    .map_err(invalid_args(name))
            };
            both(Box::new(build()?), Box::new(build()?))
        }
        "VolumeBinding" => {
            no_args(name, a).map(|_| filter(Box::new(volumes::Volumes(volumes::Part::Binding))))?
        }
        "VolumeZone" => {
            no_args(name, a).map(|_| filter(Box::new(volumes::Volumes(volumes::Part::Zone))))?
        }
        "NodeResourcesBalancedAllocation" => Built {
            filter: None,
            score: Some(Box::new(BalancedAllocation::new(args(name, a)?))),
        },
        _ if NOT_MODELLED.contains(&name) => return Ok(None),
        _ => {
            return Err(ConfigError::new(format!("unknown plugin {}", quoted(name))).of_plugin(name))
        }
    };
    Ok(Some(built))
}
