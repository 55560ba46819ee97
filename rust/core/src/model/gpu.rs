//! GPU devices and GPU sharing (see docs/encoding.md).
//!
//! A node has N devices of 1000 milli. A pod asks for k whole devices (`nvidia.com/gpu: k`) or for a
//! share of one device (`kube-engine.io/gpu-milli: m`); the devices it holds are a bitmask over its
//! node's devices.

/// Whole devices, the NVIDIA device plugin's resource.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// A share of one device, in milli.
pub const GPU_MILLI_RESOURCE: &str = "kube-engine.io/gpu-milli";
/// The GPU model label set by NVIDIA GPU feature discovery.
pub const GPU_MODEL_LABEL: &str = "nvidia.com/gpu.product";
/// The devices a bound pod holds, e.g. `"0,3"`.
pub const GPU_DEVICES_ANNOTATION: &str = "kube-engine.io/gpu-devices";
/// Capacity of one device.
pub const DEVICE_MILLI: u32 = 1000;
/// Device sets are 64-bit masks; no real node has more GPUs than that.
pub const MAX_DEVICES: u32 = 64;

/// What a pod asks of a node's GPUs: `count` devices with `milli` each (0 devices: no GPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GpuDemand {
    pub count: u32,
    pub milli: u32,
}

impl GpuDemand {
    pub const NONE: GpuDemand = GpuDemand { count: 0, milli: 0 };

    pub fn whole(count: u32) -> Self {
        GpuDemand {
            count,
            milli: if count == 0 { 0 } else { DEVICE_MILLI },
        }
    }

    /// A share of one device; 1000 milli is one whole device.
    pub fn share(milli: u32) -> Self {
        GpuDemand { count: 1, milli }
    }

    pub fn is_none(&self) -> bool {
        self.count == 0
    }

    pub fn total_milli(&self) -> u64 {
        u64::from(self.count) * u64::from(self.milli)
    }
}

/// A set of device indices on one node.
pub type DeviceMask = u64;

/// The indices of the devices in `mask`, in increasing order.
pub fn mask_indices(mask: DeviceMask) -> impl Iterator<Item = u32> {
    // Set bit by set bit, lowest first: binding a pod without GPUs takes no steps at all.
    let mut rest = mask;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let i = rest.trailing_zeros();
            rest &= rest - 1;
            i
        })
    })
}

/// Parses `kube-engine.io/gpu-devices` (`"0,3"`): distinct indices below `devices`.
pub fn parse_device_list(value: &str, devices: u32) -> Result<DeviceMask, String> {
    let indices = value
        .split(',')
        .map(|part| {
            let part = part.trim();
            part.parse::<u64>()
                .map_err(|_| format!("invalid device list {value:?}: {part:?} is not an index"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    device_mask(indices, devices).map_err(|e| format!("invalid device list {value:?}: {e}"))
}

/// The mask of device `indices` on a node of `devices` devices: each index below `devices`
/// (and so below [`MAX_DEVICES`]) and none twice.
pub fn device_mask(
    indices: impl IntoIterator<Item = u64>,
    devices: u32,
) -> Result<DeviceMask, String> {
    let mut mask: DeviceMask = 0;
    for i in indices {
        if i >= u64::from(devices.min(MAX_DEVICES)) {
            return Err(format!("device {i} does not exist (node has {devices})"));
        }
        if mask & (1 << i) != 0 {
            return Err(format!("device {i} listed twice"));
        }
        mask |= 1 << i;
    }
    Ok(mask)
}

pub fn format_device_list(mask: DeviceMask) -> String {
    mask_indices(mask)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `demand` fits devices with `free` milli each.
pub fn fits(free: &[u32], demand: GpuDemand) -> bool {
    demand.is_none() || free.iter().filter(|&&f| f >= demand.milli).count() >= demand.count as usize
}

/// Devices for `demand` chosen by best fit: the devices with the least free milli that still fit
/// (lowest index on ties), so partially used devices fill up before whole ones are broken.
/// `None` when it does not fit.
pub fn best_fit(free: &[u32], demand: GpuDemand) -> Option<DeviceMask> {
    if demand.is_none() {
        return Some(0);
    }
    let mut candidates: Vec<(u32, usize)> = free
        .iter()
        .enumerate()
        .filter(|(_, &f)| f >= demand.milli)
        .map(|(i, &f)| (f, i))
        .collect();
    if candidates.len() < demand.count as usize {
        return None;
    }
    candidates.sort_unstable();
    Some(
        candidates[..demand.count as usize]
            .iter()
            .fold(0, |m, &(_, i)| m | (1 << i)),
    )
}

/// Takes `demand` from the devices in `mask`.
pub fn take(free: &mut [u32], mask: DeviceMask, demand: GpuDemand) {
    for i in mask_indices(mask) {
        free[i as usize] = free[i as usize].saturating_sub(demand.milli);
    }
}

/// Undoes [`take`]: devices in `mask` get `demand.milli` back (never above a whole device).
pub fn give(free: &mut [u32], mask: DeviceMask, demand: GpuDemand) {
    for i in mask_indices(mask) {
        free[i as usize] = (free[i as usize] + demand.milli).min(DEVICE_MILLI);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_indices_are_the_set_bits_in_order() {
        let of = |m: DeviceMask| mask_indices(m).collect::<Vec<_>>();
        assert_eq!(of(0), Vec::<u32>::new());
        assert_eq!(of(0b1001), vec![0, 3]);
        assert_eq!(of(1 << 63 | 1 << 5), vec![5, 63]);
        assert_eq!(of(u64::MAX), (0..MAX_DEVICES).collect::<Vec<_>>());
    }

    #[test]
    fn device_lists() {
        assert_eq!(parse_device_list("0,3", 4), Ok(0b1001));
        assert_eq!(parse_device_list(" 2 ", 4), Ok(0b100));
        assert!(parse_device_list("4", 4)
            .unwrap_err()
            .contains("device 4 does not exist"));
        assert!(parse_device_list("1,1", 4)
            .unwrap_err()
            .contains("listed twice"));
        assert!(parse_device_list("a", 4)
            .unwrap_err()
            .contains("\"a\" is not an index"));
        assert!(parse_device_list("", 4).is_err());
        assert_eq!(format_device_list(0b1001), "0,3");
    }

    #[test]
    fn best_fit_prefers_fullest_devices() {
        let free = [1000, 300, 600, 1000];
        assert_eq!(best_fit(&free, GpuDemand::share(250)), Some(0b10));
        assert_eq!(best_fit(&free, GpuDemand::share(500)), Some(0b100));
        assert_eq!(best_fit(&free, GpuDemand::whole(2)), Some(0b1001));
        assert_eq!(best_fit(&free, GpuDemand::whole(3)), None);
        assert!(fits(&free, GpuDemand::share(1000)));
        assert!(!fits(&free, GpuDemand::whole(3)));
        let mut f = free;
        take(&mut f, 0b10, GpuDemand::share(250));
        assert_eq!(f, [1000, 50, 600, 1000]);
    }
}
