//! Deterministic assignment of users to experiment variants.
//!
//! A user's bucket is `int(md5(salt + user_id).hexdigest(), 16) % 100` in
//! Python: the whole 128-bit digest read big-endian, modulo 100. With an empty
//! salt this is the seeds' `MD5(user_id) % 100`, so services that bucket users
//! that way agree with the database user for user. Experiments salt with
//! their name, so one experiment's split says nothing about another's.

use md5::{Digest, Md5};

/// The user's bucket, 0..=99.
pub fn bucket(salt: &str, user_id: &str) -> u8 {
    let mut h = Md5::new();
    h.update(salt.as_bytes());
    h.update(user_id.as_bytes());
    let digest: [u8; 16] = h.finalize().into();
    (u128::from_be_bytes(digest) % 100) as u8
}

/// Index of the variant owning `bucket` when variants take consecutive
/// ranges of buckets by weight, in order: weights [50, 30, 20] give buckets
/// 0..=49 to the first, 50..=79 to the second, 80..=99 to the third. None
/// when the weights end before the bucket (they should sum to 100).
pub fn pick(weights: &[u32], bucket: u8) -> Option<usize> {
    let mut upto = 0u32;
    weights.iter().position(|w| {
        upto += w;
        u32::from(bucket) < upto
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed with Python's hashlib (the README publishes them).
    #[test]
    fn buckets_match_python() {
        for (salt, user, expected) in [
            ("", "user-1", 20),
            ("", "user-2", 75),
            ("", "alice", 0),
            ("", "42", 74),
            ("", "élève", 18),
            ("", "", 66),
            ("tutor_tone", "user-1", 13),
            ("tutor_tone", "alice", 78),
        ] {
            assert_eq!(bucket(salt, user), expected, "{salt:?} + {user:?}");
        }
    }

    #[test]
    fn buckets_spread_evenly() {
        let mut counts = [0u32; 100];
        for i in 0..100_000 {
            counts[bucket("exp", &format!("user-{i}")) as usize] += 1;
        }
        // 1000 expected per bucket; 5 sigma is about 160.
        assert!(counts.iter().all(|&c| (840..=1160).contains(&c)), "{counts:?}");
    }

    #[test]
    fn weights_take_consecutive_buckets() {
        let w = [50, 30, 20];
        assert_eq!(pick(&w, 0), Some(0));
        assert_eq!(pick(&w, 49), Some(0));
        assert_eq!(pick(&w, 50), Some(1));
        assert_eq!(pick(&w, 79), Some(1));
        assert_eq!(pick(&w, 80), Some(2));
        assert_eq!(pick(&w, 99), Some(2));
        assert_eq!(pick(&[10, 10], 20), None);
        assert_eq!(pick(&[0, 100], 0), Some(1));
    }
}
