//! `--shard K/N`: which sites this runner takes, without a scheduler.
//!
//! Rendezvous (highest-random-weight) hashing on the pipeline name: a site
//! goes to the shard whose weight `h(name, k)` is highest. A site's shard
//! depends on its own name and N only, so adding or removing a site moves no
//! other site, and going from N to N+1 shards moves only the sites the new
//! shard wins (about 1/(N+1) of them). The hash is written out here (FNV-1a
//! and a SplitMix64 finaliser), not std's, so every build and platform
//! agrees on the partition.

use std::fmt;
use std::str::FromStr;

/// Shard `index` (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether this shard takes the site named `pipeline`.
    pub fn takes(&self, pipeline: &str) -> bool {
        owner(pipeline, self.count) == self.index
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "shard \"{s}\" is not K/N: want two integers with 0 ≤ K < N ≤ 65536, e.g. 0/4 (K is 0-based like JOB_COMPLETION_INDEX)"
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > 65536 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (0-based) of `count` that owns `pipeline`.
pub fn owner(pipeline: &str, count: u32) -> u32 {
    let base = fnv1a(pipeline.as_bytes());
    (0..count.max(1))
        .max_by_key(|&k| (mix(base ^ mix(u64::from(k) + 1)), std::cmp::Reverse(k)))
        .unwrap_or(0)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: spreads every input bit over the whole word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("3/8".parse::<Shard>(), Ok(Shard { index: 3, count: 8 }));
        for bad in ["8/8", "1", "a/2", "0/0", "-1/4", "1/70000"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("0 ≤ K < N"), "{bad}: {e}");
        }
    }

    #[test]
    fn known_values_stay_put() {
        // The partition is a contract between runners of different builds:
        // a change to the hash would move sites between shards.
        let got: Vec<u32> = ["site-1", "site-2", "site-3", "a", ""]
            .iter()
            .map(|n| owner(n, 7))
            .collect();
        assert_eq!(got, KNOWN);
    }

    const KNOWN: [u32; 5] = [3, 2, 6, 4, 3];

    #[test]
    fn growing_n_moves_only_sites_to_the_new_shard() {
        let names: Vec<String> = (0..2000).map(|i| format!("site-{i}")).collect();
        for n in 1..16u32 {
            let mut moved = 0;
            for name in &names {
                let (a, b) = (owner(name, n), owner(name, n + 1));
                if a != b {
                    assert_eq!(b, n, "{name} moved from {a} to {b}, not to the new shard");
                    moved += 1;
                }
            }
            let expect = names.len() as f64 / f64::from(n + 1);
            assert!(
                (moved as f64) < expect * 1.3 && (moved as f64) > expect * 0.7,
                "n={n}: {moved} moved, ~{expect} expected"
            );
        }
    }
}
