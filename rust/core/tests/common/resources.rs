//! Nodes and pods described by their resources: the clusters of the resource and taint tests.

/// A node with its hostname label; `extra` holds spec members.
pub fn node(name: &str, cpu: &str, mem: &str, extra: &str) -> String {
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "spec":{{{extra}}},"status":{{"allocatable":{{"cpu":"{cpu}","memory":"{mem}","pods":"110"}}}}}}"#
    )
}

/// A pod in `default` with one container asking for `cpu` and `mem`; `spec_extra` holds spec
/// members, each followed by a comma.
pub fn pod(name: &str, cpu: &str, mem: &str, spec_extra: &str) -> String {
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
            "spec":{{{spec_extra}"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"{cpu}","memory":"{mem}"}}}}}}]}}}}"#
    )
}
