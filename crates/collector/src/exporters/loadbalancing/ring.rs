//! Consistent hashing: each backend owns many points ("virtual nodes") on a 64-bit ring and a
//! routing key belongs to the first point at or after its hash. Adding or removing one
//! backend moves only the keys of that backend's arcs, so the traces that stay put keep
//! reaching the backend that already holds their other spans.
//!
//! The hash is FNV-1a with a SplitMix64 finaliser: stable across processes, builds and
//! machines, which matters because every agent must map a trace id to the same gateway.

/// Points each backend places on the ring. More points spread keys more evenly.
pub const VIRTUAL_NODES: usize = 160;

/// A hash ring over a set of backend endpoints.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    endpoints: Vec<String>,
    /// (position, index into `endpoints`), sorted by position.
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// Builds the ring; order and duplicates in `endpoints` do not matter.
    pub fn new<I: IntoIterator<Item = String>>(endpoints: I) -> Ring {
        let mut endpoints: Vec<String> = endpoints.into_iter().collect();
        endpoints.sort();
        endpoints.dedup();
        let mut points = Vec::with_capacity(endpoints.len() * VIRTUAL_NODES);
        for (i, e) in endpoints.iter().enumerate() {
            for v in 0..VIRTUAL_NODES {
                points.push((hash(format!("{e}#{v}").as_bytes()), i));
            }
        }
        // Ties (astronomically rare) resolve by endpoint order, so every process agrees.
        points.sort_unstable();
        Ring { endpoints, points }
    }

    /// The endpoints, sorted; indices returned by [`Ring::index_for`] point into this.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Index of the backend that owns `key`, or None for an empty ring.
    pub fn index_for(&self, key: &[u8]) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash(key);
        let at = self.points.partition_point(|(p, _)| *p < h);
        let (_, i) = self.points[at % self.points.len()];
        Some(i)
    }

    /// The endpoint that owns `key`.
    pub fn endpoint_for(&self, key: &[u8]) -> Option<&str> {
        self.index_for(key).map(|i| self.endpoints[i].as_str())
    }
}

/// FNV-1a 64, then SplitMix64's finaliser so that similar inputs ("a#1", "a#2") land far
/// apart on the ring.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u32) -> Vec<[u8; 16]> {
        (0..n)
            .map(|i| {
                let mut k = [0u8; 16];
                k[..4].copy_from_slice(&i.to_be_bytes());
                k[8..12].copy_from_slice(&(i.wrapping_mul(2_654_435_761)).to_le_bytes());
                k
            })
            .collect()
    }

    fn ring(names: &[&str]) -> Ring {
        Ring::new(names.iter().map(|s| s.to_string()))
    }

    #[test]
    fn empty_ring_routes_nowhere() {
        assert_eq!(Ring::new(Vec::new()).endpoint_for(b"x"), None);
    }

    #[test]
    fn the_same_key_always_reaches_the_same_backend_whatever_the_input_order() {
        let a = ring(&["a:4317", "b:4317", "c:4317"]);
        let b = ring(&["c:4317", "a:4317", "b:4317", "a:4317"]);
        for k in keys(1000) {
            assert_eq!(a.endpoint_for(&k), b.endpoint_for(&k));
        }
    }

    #[test]
    fn keys_spread_over_every_backend() {
        let r = ring(&["10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"]);
        let mut counts = std::collections::BTreeMap::new();
        for k in keys(3000) {
            *counts.entry(r.endpoint_for(&k).unwrap()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3);
        // Each of three backends should get roughly a third; 20% is far from that.
        assert!(counts.values().all(|&c| c > 600), "{counts:?}");
    }

    #[test]
    fn removing_a_backend_moves_only_its_own_keys() {
        let before = ring(&["a:4317", "b:4317", "c:4317"]);
        let after = ring(&["a:4317", "b:4317"]);
        for k in keys(2000) {
            let was = before.endpoint_for(&k).unwrap();
            if was != "c:4317" {
                assert_eq!(after.endpoint_for(&k), Some(was));
            }
        }
    }
}
