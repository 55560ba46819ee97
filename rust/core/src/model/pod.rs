//! Pods: the spec fields scheduling depends on, and the effective request kube-scheduler computes.

use std::collections::HashSet;

use serde::Deserialize;

use super::affinity::Affinity;
use super::gpu::{GpuDemand, GPU_MILLI_RESOURCE, GPU_RESOURCE, MAX_DEVICES};
use super::meta::{
    non_negative_quantities, null_default, valid_labels, KeyValues, Labels, ObjectMeta,
};
use super::spread::TopologySpreadConstraint;
use super::taints::Toleration;
use super::validation;
use crate::error::{cut, InputError};
use crate::quantity::Quantity;
use crate::resources::{amount, sparse_get, SparseResources, Tally};

#[derive(Clone, Debug, Deserialize)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    #[serde(default, deserialize_with = "null_default")]
    pub status: PodStatus,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub node_name: Option<String>,
    pub containers: Vec<Container>,
    #[serde(default, deserialize_with = "null_default")]
    pub init_containers: Vec<Container>,
    #[serde(default, deserialize_with = "non_negative_quantities")]
    pub overhead: KeyValues<Quantity>,
    #[serde(default, deserialize_with = "valid_labels")]
    pub node_selector: Labels,
    #[serde(default)]
    pub affinity: Option<Affinity>,
    #[serde(default, deserialize_with = "null_default")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, deserialize_with = "null_default")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub volumes: Vec<Volume>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub resources: ResourceRequirements,
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<ContainerPort>,
    /// `Always` on an init container makes it a restartable "sidecar" that runs for the pod's life.
    #[serde(default)]
    pub restart_policy: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ResourceRequirements {
    #[serde(default, deserialize_with = "non_negative_quantities")]
    pub requests: KeyValues<Quantity>,
    #[serde(default, deserialize_with = "non_negative_quantities")]
    pub limits: KeyValues<Quantity>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// Required by the API server; left optional here because hand-written snapshots (and the
    /// lab's generators) give only the host port, the one scheduling reads.
    #[serde(default)]
    pub container_port: Option<i32>,
    #[serde(default)]
    pub host_port: Option<i32>,
    #[serde(default)]
    pub protocol: Option<Protocol>,
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
}

/// A port a pod takes on its node's network namespace (NodePorts plugin).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `0.0.0.0` when unset: the port on every address.
    pub ip: String,
    pub protocol: Protocol,
    pub port: i32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default)]
    pub empty_dir: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub host_path: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub persistent_volume_claim: Option<ClaimSource>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource {
    pub claim_name: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum PodPhase {
    /// A pod without `status.phase` is Pending: the API server sets that on creation.
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    /// Terminal pods hold no resources (kube-scheduler and the kubelet ignore them).
    pub fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodStatus {
    #[serde(default)]
    pub phase: PodPhase,
}

/// A pod's effective request: ordinary resources plus its GPU demand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EffectiveRequest {
    /// Includes `pods: 1`.
    pub resources: SparseResources,
    pub gpu: GpuDemand,
    /// cpu (milli) and memory (bytes) with the scheduler's defaults for containers that ask for
    /// none — what NodeResourcesFit scores with.
    pub nonzero: [i64; 2],
}

/// kube-scheduler's defaults for scoring containers without cpu / memory requests.
pub const DEFAULT_CPU_MILLI: i64 = 100;
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

impl PodSpec {
    /// The API server's checks on the containers (`validateContainers`), in its words: names
    /// that are RFC 1123 labels and unique within the pod, port numbers in range. `path` is this
    /// spec's JSON path.
    ///
    /// Deliberately lenient: a pod with no containers, which the API server refuses, is read as
    /// asking for nothing. kube-scheduler's own tests use such pods, and so does the conformance
    /// suite ported from them, where a container would add the scoring defaults (100m, 200Mi).
    pub fn validate(&self, path: &str) -> Result<(), InputError> {
        let mut names = HashSet::with_capacity(self.containers.len() + self.init_containers.len());
        let all = self
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| ("containers", i, c));
        let init = self.init_containers.iter().enumerate();
        for (field, i, c) in all.chain(init.map(|(i, c)| ("initContainers", i, c))) {
            let at = |rest: &str| format!("{path}.{field}[{i}].{rest}");
            validation::dns1123_label(&c.name)
                .map_err(|e| InputError::new(at("name"), validation::invalid(&c.name, &e)))?;
            if !names.insert(c.name.as_str()) {
                return Err(InputError::new(
                    at("name"),
                    format!("Duplicate value: \"{}\"", c.name),
                ));
            }
            for (k, p) in c.ports.iter().enumerate() {
                // A host port of 0 is "none".
                let ports = [
                    ("containerPort", p.container_port),
                    ("hostPort", p.host_port.filter(|&h| h != 0)),
                ];
                for (name, port) in ports {
                    if let Some(port) = port.filter(|p| !(1..=65535).contains(p)) {
                        return Err(InputError::new(
                            at(&format!("ports[{k}].{name}")),
                            format!(
                                "Invalid value: {port}: must be between 1 and 65535, inclusive"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Host ports of app containers and sidecars (restartable init containers); a regular init
    /// container's ports are released before the app starts (upstream `GetHostPorts`).
    pub fn host_ports(&self) -> Vec<HostPort> {
        let mut out = Vec::new();
        let sidecars = self
            .init_containers
            .iter()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        for c in self.containers.iter().chain(sidecars) {
            for p in &c.ports {
                if let Some(port) = p.host_port.filter(|&p| p > 0) {
                    out.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|s| !s.is_empty())
                            .unwrap_or("0.0.0.0".into()),
                        protocol: p.protocol.unwrap_or_default(),
                        port,
                    });
                }
            }
        }
        out
    }

    /// The names of the PersistentVolumeClaims its volumes use (in its namespace).
    pub fn claims(&self) -> Vec<String> {
        self.volumes
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.clone())
            .collect()
    }

    /// The kinds of its volumes whose data dies with the pod's node (the descheduler's rule):
    /// `emptyDir` and `hostPath`.
    pub fn local_storage(&self) -> LocalVolumes {
        self.volumes.iter().fold(LocalVolumes::NONE, |kinds, v| {
            let mut k = kinds;
            if v.empty_dir.is_some() {
                k = k.with(LocalVolumes::EMPTY_DIR);
            }
            if v.host_path.is_some() {
                k = k.with(LocalVolumes::HOST_PATH);
            }
            k
        })
    }

    /// Per-container requests combined by the scheduler's rule (below), plus overhead.
    fn combine(
        &self,
        path: &str,
        requests_of: impl Fn(&Container, &str) -> Result<SparseResources, InputError>,
    ) -> Result<SparseResources, InputError> {
        let mut apps = Tally::default();
        for (i, c) in self.containers.iter().enumerate() {
            for (name, v) in requests_of(c, &format!("{path}.containers[{i}]"))? {
                apps.add(&name, v);
            }
        }
        let mut sidecars = Tally::default();
        let mut init_peak = Tally::default();
        for (i, c) in self.init_containers.iter().enumerate() {
            let requests = requests_of(c, &format!("{path}.initContainers[{i}]"))?;
            // Each init step runs next to the sidecars started before it. Of a resource the
            // step does not ask for it holds only the sidecars' amount, which the app phase
            // (holding every sidecar) covers already, so only its own resources are compared:
            // linear in the pod's size, not steps × resources.
            for (name, v) in &requests {
                init_peak.raise(name, sidecars.get(name).saturating_add(*v));
            }
            if c.restart_policy.as_deref() == Some("Always") {
                for (name, v) in &requests {
                    apps.add(name, *v);
                    sidecars.add(name, *v);
                }
            }
        }
        let mut total = apps;
        for (name, v) in init_peak.iter() {
            total.raise(name, *v);
        }
        for (name, q) in self.overhead.iter() {
            total.add(name, amount(name, *q));
        }
        Ok(total.into_list())
    }

    /// The effective request as kube-scheduler computes it (`computePodResourceRequest`):
    ///
    /// * app containers are summed;
    /// * a restartable (sidecar) init container keeps running, so it adds to the app sum, and every
    ///   init container started after it runs alongside it;
    /// * each regular init container runs alone (plus the sidecars started before it), so the pod
    ///   needs the larger of the app phase and each init step;
    /// * pod overhead is added on top.
    ///
    /// `path` is this spec's JSON path, used in errors.
    pub fn effective_request(&self, path: &str) -> Result<EffectiveRequest, InputError> {
        let mut total = self.combine(path, container_requests)?;
        // kube-scheduler scores with "non-zero" requests: a container that does not ask for cpu or
        // memory counts as asking for 100m / 200Mi, so empty pods do not all pile onto one node.
        let nonzero = self.combine(path, |c, path| {
            let mut r = container_requests(c, path)?;
            for (name, default) in [("cpu", DEFAULT_CPU_MILLI), ("memory", DEFAULT_MEMORY)] {
                if !r.iter().any(|(n, _)| n == name) {
                    r.push((name.to_string(), default));
                }
            }
            Ok(r)
        })?;
        let nonzero = [sparse_get(&nonzero, "cpu"), sparse_get(&nonzero, "memory")];
        let whole = sparse_get(&total, GPU_RESOURCE);
        let share = sparse_get(&total, GPU_MILLI_RESOURCE);
        total.retain(|(n, v)| n != GPU_RESOURCE && n != GPU_MILLI_RESOURCE && *v != 0);
        let gpu = match (whole, share) {
            (0, 0) => GpuDemand::NONE,
            (k, 0) if k <= i64::from(MAX_DEVICES) => GpuDemand::whole(k as u32),
            (k, 0) => {
                return Err(InputError::new(
                    path,
                    format!("requests {k} {GPU_RESOURCE}; at most {MAX_DEVICES} devices per pod"),
                ))
            }
            (0, m) if m <= 1000 => GpuDemand::share(m as u32),
            (0, m) => {
                return Err(InputError::new(
                    path,
                    format!(
                        "requests {GPU_MILLI_RESOURCE} {m}: a share of one GPU is 1..1000 milli; \
                         ask for whole GPUs with {GPU_RESOURCE}"
                    ),
                ))
            }
            (k, m) => {
                return Err(InputError::new(
                    path,
                    format!(
                        "requests both {GPU_RESOURCE} ({k}) and {GPU_MILLI_RESOURCE} ({m}); \
                         a pod asks for whole GPUs or for a share of one"
                    ),
                ))
            }
        };
        match total.iter_mut().find(|(n, _)| n == "pods") {
            Some((_, v)) => *v = v.saturating_add(1),
            None => total.push(("pods".to_string(), 1)),
        }
        Ok(EffectiveRequest {
            resources: total,
            gpu,
            nonzero,
        })
    }
}

/// A container's requests, with limits standing in for missing requests (the API server's
/// defaulting), validated and converted to scheduler units. (Negative quantities were refused
/// as they were read, with the text the user wrote.)
fn container_requests(c: &Container, path: &str) -> Result<SparseResources, InputError> {
    let requests = &c.resources.requests;
    let limits = &c.resources.limits;
    let (requested, limited) = (requests.index(), limits.index());
    let mut out = SparseResources::with_capacity(requests.len() + limits.len());
    for (name, q) in requests.iter() {
        if let Some(limit) = limited.get(name).filter(|limit| q > limit) {
            // The API server's check and words (ValidateResourceRequirements).
            return Err(InputError::new(
                format!("{path}.resources.requests.{name}"),
                format!(
                    "Invalid value: \"{q}\": must be less than or equal to {} limit of {limit}",
                    cut(name)
                ),
            ));
        }
    }
    let defaulted = limits.iter().filter(|(n, _)| requested.get(n).is_none());
    let all = requests.iter().map(|(n, q)| (n, q, "requests"));
    for (name, q, field) in all.chain(defaulted.map(|(n, q)| (n, q, "limits"))) {
        if name == GPU_RESOURCE && q.milli() % 1000 != 0 {
            return Err(InputError::new(
                format!("{path}.resources.{field}.{name}"),
                format!("{GPU_RESOURCE} must be a whole number of devices, got \"{q}\""),
            ));
        }
        out.push((name.clone(), amount(name, *q)));
    }
    Ok(out)
}

/// A set of kinds of node-local volumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalVolumes(u8);

impl LocalVolumes {
    pub const NONE: LocalVolumes = LocalVolumes(0);
    pub const EMPTY_DIR: LocalVolumes = LocalVolumes(1);
    pub const HOST_PATH: LocalVolumes = LocalVolumes(2);
    pub const ALL: LocalVolumes = LocalVolumes(3);
    /// The kinds by their names in a pod spec.
    pub const NAMES: [(&'static str, LocalVolumes); 2] = [
        ("emptyDir", LocalVolumes::EMPTY_DIR),
        ("hostPath", LocalVolumes::HOST_PATH),
    ];

    pub fn with(self, other: LocalVolumes) -> LocalVolumes {
        LocalVolumes(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in `self` that are not in `allowed`.
    pub fn beyond(self, allowed: LocalVolumes) -> LocalVolumes {
        LocalVolumes(self.0 & !allowed.0)
    }

    /// The kind named `name` (`emptyDir`, `hostPath`).
    pub fn named(name: &str) -> Option<LocalVolumes> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> PodSpec {
        serde_json::from_str(json).unwrap()
    }

    fn req(json: &str) -> EffectiveRequest {
        spec(json).effective_request("spec").unwrap()
    }

    fn c(name: &str, cpu: &str, mem: &str) -> String {
        format!(
            r#"{{"name":"{name}","resources":{{"requests":{{"cpu":"{cpu}","memory":"{mem}"}}}}}}"#
        )
    }

    #[test]
    fn app_containers_are_summed_plus_one_pod() {
        let r = req(&format!(
            r#"{{"containers":[{},{}]}}"#,
            c("a", "100m", "1Gi"),
            c("b", "0.5", "1Gi")
        ));
        assert_eq!(sparse_get(&r.resources, "cpu"), 600);
        assert_eq!(sparse_get(&r.resources, "memory"), 2 << 30);
        assert_eq!(sparse_get(&r.resources, "pods"), 1);
        assert_eq!(r.gpu, GpuDemand::NONE);
    }

    #[test]
    fn init_containers_take_the_max() {
        // Docs example: init containers 2 and 1 cpu run one at a time, apps 1 cpu in total -> 2.
        let r = req(&format!(
            r#"{{"initContainers":[{},{}],"containers":[{}]}}"#,
            c("i1", "2", "100Mi"),
            c("i2", "1", "1Gi"),
            c("a", "1", "200Mi")
        ));
        assert_eq!(sparse_get(&r.resources, "cpu"), 2000);
        assert_eq!(sparse_get(&r.resources, "memory"), 1 << 30);
    }

    #[test]
    fn sidecars_add_to_apps_and_to_later_init_steps() {
        // sidecar 1 cpu (restartPolicy Always), then an init container of 2 cpu runs next to it
        // (3 cpu), then the app of 1 cpu runs next to the sidecar (2 cpu): peak 3.
        let sidecar =
            r#"{"name":"s","restartPolicy":"Always","resources":{"requests":{"cpu":"1"}}}"#;
        let r = req(&format!(
            r#"{{"initContainers":[{sidecar},{}],"containers":[{}]}}"#,
            c("i", "2", "0"),
            c("a", "1", "0")
        ));
        assert_eq!(sparse_get(&r.resources, "cpu"), 3000);
        // A regular init container before the sidecar does not run alongside it.
        let r = req(&format!(
            r#"{{"initContainers":[{},{sidecar}],"containers":[{}]}}"#,
            c("i", "2", "0"),
            c("a", "1", "0")
        ));
        assert_eq!(sparse_get(&r.resources, "cpu"), 2000);
    }

    #[test]
    fn overhead_is_added_and_limits_default_requests() {
        let r = req(r#"{"overhead":{"cpu":"250m","memory":"120Mi"},
                "containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"},
                                                       "requests":{"memory":"512Mi"}}}]}"#);
        assert_eq!(sparse_get(&r.resources, "cpu"), 1250);
        assert_eq!(sparse_get(&r.resources, "memory"), (512 + 120) << 20);
    }

    #[test]
    fn pods_without_requests_ask_only_for_a_pod_slot() {
        let r = req(r#"{"containers":[{"name":"a"}]}"#);
        assert_eq!(r.resources, vec![("pods".to_string(), 1)]);
        assert_eq!(r.nonzero, [DEFAULT_CPU_MILLI, DEFAULT_MEMORY]);
    }

    #[test]
    fn nonzero_requests_default_per_container() {
        // One container asks for cpu only, the other for nothing: scoring sees 250m + 100m cpu and
        // 200Mi + 200Mi memory; an explicit zero stays zero.
        let r = req(&format!(
            r#"{{"containers":[{},{{"name":"b"}},{}]}}"#,
            r#"{"name":"a","resources":{"requests":{"cpu":"250m"}}}"#,
            r#"{"name":"z","resources":{"requests":{"cpu":"0","memory":"0"}}}"#
        ));
        assert_eq!(sparse_get(&r.resources, "cpu"), 250);
        assert_eq!(r.nonzero, [350, 2 * DEFAULT_MEMORY]);
    }

    #[test]
    fn gpu_whole_and_share() {
        let r =
            req(r#"{"containers":[{"name":"a","resources":{"limits":{"nvidia.com/gpu":"2"}}}]}"#);
        assert_eq!(r.gpu, GpuDemand::whole(2));
        assert_eq!(sparse_get(&r.resources, GPU_RESOURCE), 0);
        let r = req(
            r#"{"containers":[{"name":"a","resources":{"requests":{"kube-engine.io/gpu-milli":"460"}}}]}"#,
        );
        assert_eq!(r.gpu, GpuDemand::share(460));
    }

    #[test]
    fn gpu_errors_name_the_field() {
        let err = |j: &str| {
            spec(j)
                .effective_request("items[3].spec")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(
                r#"{"containers":[{"name":"a","resources":{"requests":{"nvidia.com/gpu":"0.5"}}}]}"#
            ),
            "items[3].spec.containers[0].resources.requests.nvidia.com/gpu: \
             nvidia.com/gpu must be a whole number of devices, got \"500m\""
        );
        assert!(err(
            r#"{"containers":[{"name":"a","resources":{"requests":{"nvidia.com/gpu":"1"}}},
                              {"name":"b","resources":{"requests":{"kube-engine.io/gpu-milli":"5"}}}]}"#
        )
        .contains("requests both"));
        assert!(err(
            r#"{"containers":[{"name":"a","resources":{"requests":{"kube-engine.io/gpu-milli":"1500"}}}]}"#
        )
        .contains("1..1000 milli"));
        assert_eq!(
            err(
                r#"{"containers":[{"name":"a","resources":{"requests":{"cpu":"1"},"limits":{"cpu":"500m"}}}]}"#
            ),
            "items[3].spec.containers[0].resources.requests.cpu: Invalid value: \"1\": \
             must be less than or equal to cpu limit of 500m"
        );
    }

    #[test]
    fn host_ports_and_local_storage() {
        let s = spec(
            r#"{"containers":[{"name":"a","ports":[{"containerPort":80,"hostPort":8080},
                                                  {"containerPort":53,"protocol":"UDP"}]}],
                "volumes":[{"name":"tmp","emptyDir":{}},{"name":"cfg","configMap":{"name":"x"}}]}"#,
        );
        assert_eq!(
            s.host_ports(),
            vec![HostPort {
                ip: "0.0.0.0".into(),
                protocol: Protocol::Tcp,
                port: 8080
            }]
        );
        assert_eq!(s.local_storage(), LocalVolumes::EMPTY_DIR);
        let both = spec(
            r#"{"containers":[{"name":"a"}],"volumes":[{"name":"h","hostPath":{"path":"/x"}},
                {"name":"t","emptyDir":{}}]}"#,
        );
        assert_eq!(both.local_storage(), LocalVolumes::ALL);
        assert_eq!(
            both.local_storage().beyond(LocalVolumes::EMPTY_DIR),
            LocalVolumes::HOST_PATH
        );
        assert!(s.local_storage().beyond(LocalVolumes::EMPTY_DIR).is_empty());
    }
}
