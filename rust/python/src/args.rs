//! Arguments as the caller gave them: a value that does not convert (a wrong type, an integer
//! out of range) is an `InvalidArgumentError` naming the argument and the value, not pyo3's bare
//! `TypeError` or `OverflowError`.

use std::collections::HashMap;

use kube_engine_core::error::{cut, quoted};
use kube_engine_core::model::gpu::{self, DeviceMask};
use kube_engine_core::snapshot::{NodeId, PodId, Snapshot};
use pyo3::conversion::FromPyObjectOwned;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{invalid_argument, unknown_name};

/// `value` as a `T`; `argument` is its name, or its path inside one (`gpu_devices["a/b"][0]`).
pub fn extract<'py, T: FromPyObjectOwned<'py>>(
    value: &Bound<'py, PyAny>,
    argument: &str,
    expected: &str,
) -> PyResult<T> {
    value.extract::<T>().map_err(|_| {
        let message = format!("{argument}: expected {expected}, got {}", shown(value));
        invalid_argument(value.py(), root(argument), message)
    })
}

/// `value`'s repr, cut as messages cut values.
pub fn shown(value: &Bound<'_, PyAny>) -> String {
    let text = value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("a {}", value.get_type()));
    cut(&text).into_owned()
}

/// The argument a path starts in (`gpu_devices` of `gpu_devices["a/b"]`).
fn root(path: &str) -> &str {
    path.split(['[', '.']).next().unwrap_or(path)
}

/// A `{pod: value}` mapping, by pod id; `argument` names it.
pub fn by_pod<'py>(
    s: &Snapshot,
    mapping: &Bound<'py, PyAny>,
    argument: &str,
) -> PyResult<Vec<(PodId, String, Bound<'py, PyAny>)>> {
    let dict = mapping.cast::<PyDict>().map_err(|_| {
        let message = format!("{argument}: expected a dict, got {}", shown(mapping));
        invalid_argument(mapping.py(), argument, message)
    })?;
    dict.iter()
        .map(|(key, value)| {
            let pod: String = extract(&key, argument, "pod names (namespace/name)")?;
            let p = s.pods.id(&pod).ok_or_else(|| {
                unknown_name(key.py(), argument, format!("unknown pod {}", quoted(&pod)))
            })?;
            Ok((p, pod, value))
        })
        .collect()
}

/// `gpu_devices` (`{pod: [device, ...]}`) as masks, checked against the node each pod goes to
/// (`node_of`, None: the pod is not moved or goes nowhere): the pod's own number of devices,
/// distinct, each one the node has.
pub fn device_masks(
    s: &Snapshot,
    gpu_devices: Option<&Bound<'_, PyAny>>,
    mover: &str,
    node_of: impl Fn(PodId) -> Option<NodeId>,
) -> PyResult<HashMap<PodId, DeviceMask>> {
    let Some(gpu_devices) = gpu_devices.filter(|g| !g.is_none()) else {
        return Ok(HashMap::new());
    };
    let py = gpu_devices.py();
    let mut masks = HashMap::new();
    for (p, pod, list) in by_pod(s, gpu_devices, "gpu_devices")? {
        let at = format!("gpu_devices[{}]", quoted(&pod));
        let indices: Vec<u64> = extract(&list, &at, "a list of device indices")?;
        let Some(n) = node_of(p) else {
            let message = format!("{at}: {mover} does not move the pod to a node");
            return Err(invalid_argument(py, "gpu_devices", message));
        };
        let node = &s.nodes.name[n as usize];
        let uses = s.pods.gpu[p as usize].count;
        if indices.len() != uses as usize {
            let message = format!(
                "{at}: {} device(s) given, the pod uses {uses}",
                indices.len()
            );
            return Err(invalid_argument(py, "gpu_devices", message));
        }
        let mask = gpu::device_mask(indices, s.nodes.gpu_devices[n as usize]).map_err(|e| {
            invalid_argument(py, "gpu_devices", format!("{at}: node {node:?}: {e}"))
        })?;
        masks.insert(p, mask);
    }
    Ok(masks)
}
