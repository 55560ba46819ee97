//! GPU devices held by pods: read from annotations or assigned at load, and re-assigned for pods a
//! placement moves. One rule for both: best fit (the fullest devices that still fit, lowest index
//! on ties), so partly used devices fill up before whole ones are broken.

use super::{Assignment, NodeId, PodId, Snapshot};
use crate::error::{ArgumentError, InputError};
use crate::model::gpu::{self, DeviceMask, GpuDemand, GPU_DEVICES_ANNOTATION};

/// Devices for `demand` on a node with `free` milli per device, taken from `free`. When nothing
/// fits, the emptiest devices are taken anyway: the over-commit is then visible as a
/// `gpu-devices` violation instead of being hidden.
fn take_best_fit(free: &mut [u32], demand: GpuDemand) -> DeviceMask {
    let mask = gpu::best_fit(free, demand).unwrap_or_else(|| {
        let mut order: Vec<usize> = (0..free.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(free[i]), i));
        order
            .iter()
            .take(demand.count as usize)
            .fold(0, |m, &i| m | (1 << i))
    });
    gpu::take(free, mask, demand);
    mask
}

fn all_free(s: &Snapshot) -> Vec<Vec<u32>> {
    s.nodes
        .gpu_devices
        .iter()
        .map(|&d| vec![gpu::DEVICE_MILLI; d as usize])
        .collect()
}

/// At load: devices from `kube-engine.io/gpu-devices` where present (validated), then best fit
/// in input order for the other bound pods (see docs/encoding.md).
pub(super) fn assign_at_load(
    s: &mut Snapshot,
    paths: &[&str],
    annotations: &[Option<String>],
) -> Result<(), InputError> {
    let n_pods = s.pods.len();
    s.current.gpu_devices = vec![0; n_pods];
    s.pods.gpu_devices_inferred = vec![false; n_pods];
    let mut free = all_free(s);
    let mut unannotated = Vec::new();
    for p in 0..n_pods {
        let demand = s.pods.gpu[p];
        let Some(node) = s.current.node[p] else {
            continue;
        };
        if demand.is_none() || s.pods.phase[p].is_terminal() {
            continue;
        }
        let Some(value) = &annotations[p] else {
            unannotated.push(p);
            continue;
        };
        let path = format!("{}.metadata.annotations.{GPU_DEVICES_ANNOTATION}", paths[p]);
        let mask = gpu::parse_device_list(value, s.nodes.gpu_devices[node as usize])
            .map_err(|e| InputError::new(&path, e))?;
        if mask.count_ones() != demand.count {
            return Err(InputError::new(
                path,
                format!(
                    "lists {} device(s) in {value:?} but the pod needs {}",
                    mask.count_ones(),
                    demand.count
                ),
            ));
        }
        gpu::take(&mut free[node as usize], mask, demand);
        s.current.gpu_devices[p] = mask;
    }
    for p in unannotated {
        let node = s.current.node[p].expect("only bound pods need devices") as usize;
        s.current.gpu_devices[p] = take_best_fit(&mut free[node], s.pods.gpu[p]);
        s.pods.gpu_devices_inferred[p] = true;
    }
    Ok(())
}

impl Snapshot {
    /// The current placement with some pods moved (`None`: unbound), optionally onto given GPU
    /// devices. Moved pods without given devices get them by best fit on their new node, in pod
    /// order, after the pods that stay and those with given devices have taken theirs. Given
    /// devices must exist on the pod's new node (an `ArgumentError` on `gpu_devices` otherwise).
    pub fn assignment_with(
        &self,
        moves: &[(PodId, Option<NodeId>, Option<DeviceMask>)],
    ) -> Result<Assignment, ArgumentError> {
        let mut a = self.current.clone();
        let mut fit = vec![false; self.pods.len()];
        for &(p, n, devices) in moves {
            if let (Some(n), Some(mask)) = (n, devices) {
                let have = self.nodes.gpu_devices[n as usize];
                if let Some(d) = gpu::mask_indices(mask).find(|&d| d >= have) {
                    let message = format!(
                        "gpu_devices[{:?}]: node {:?} has no device {d} (it has {have})",
                        self.pod_key(p),
                        self.nodes.name[n as usize]
                    );
                    return Err(ArgumentError::invalid("gpu_devices", message));
                }
            }
            if a.node[p as usize] != n || devices.is_some() {
                a.node[p as usize] = n;
                a.gpu_devices[p as usize] = devices.unwrap_or(0);
                fit[p as usize] = devices.is_none();
            }
        }
        let mut free = all_free(self);
        for p in 0..self.pods.len() {
            if let (Some(n), false) = (a.node[p], fit[p]) {
                if self.is_active(p as PodId) {
                    gpu::take(&mut free[n as usize], a.gpu_devices[p], self.pods.gpu[p]);
                }
            }
        }
        for p in (0..self.pods.len()).filter(|&p| fit[p]) {
            let demand = self.pods.gpu[p];
            let Some(n) = a.node[p] else { continue };
            if demand.is_none() || !self.is_active(p as PodId) {
                continue;
            }
            a.gpu_devices[p] = take_best_fit(&mut free[n as usize], demand);
        }
        Ok(a)
    }
}
