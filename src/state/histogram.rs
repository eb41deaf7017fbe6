//! Histograms of finished jobs' queue wait and run time, kept in the
//! accounting state beside the counters and changed by the same step that
//! counts a job: each ending counted once is observed once, so a
//! histogram's count equals the counter of the same jobs, across crashes,
//! failovers and failbacks.

/// Upper bounds in seconds, from a second to a week (HPC jobs wait and run
/// for seconds to days); +Inf is implied.
pub const BOUNDS: [u64; 16] = [
    1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 345600, 604800,
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bound (not cumulative): `buckets[i]` counts the
    /// values in (BOUNDS[i-1], BOUNDS[i]]; above the last bound, only
    /// `count` has them.
    pub buckets: [u64; BOUNDS.len()],
    /// Sum of the observed values (whole seconds).
    pub sum: u64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: u64) {
        if let Some(i) = BOUNDS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// Cumulative counts per bound, as Prometheus exposes `_bucket`.
    pub fn cumulative(&self) -> [u64; BOUNDS.len()] {
        let mut out = self.buckets;
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
        out
    }

    /// `[buckets..., sum, count]` for the state file.
    pub fn to_row(&self) -> Vec<u64> {
        let mut row = self.buckets.to_vec();
        row.extend([self.sum, self.count]);
        row
    }

    pub fn from_row(row: &[u64]) -> Result<Histogram, String> {
        let n = BOUNDS.len();
        if row.len() != n + 2 {
            return Err(format!(
                "a histogram has {} numbers, not {} buckets, sum and count",
                row.len(),
                n
            ));
        }
        let mut h = Histogram {
            sum: row[n],
            count: row[n + 1],
            ..Default::default()
        };
        h.buckets.copy_from_slice(&row[..n]);
        if h.buckets.iter().sum::<u64>() > h.count {
            return Err("a histogram has more observations in its buckets than its count".into());
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::default();
        for s in [0, 1, 2, 3600, 3601, 10_000_000] {
            h.observe(s);
        }
        assert_eq!(h.count, 6);
        assert_eq!(h.sum, 1 + 2 + 3600 + 3601 + 10_000_000);
        let c = h.cumulative();
        assert_eq!(c[0], 2, "0 and 1 are <= 1");
        assert_eq!(c[1], 3);
        assert_eq!(c[7], 4, "3600 is <= 3600");
        assert_eq!(c[8], 5);
        assert_eq!(c[BOUNDS.len() - 1], 5, "the week-long one is only in +Inf");
        assert_eq!(Histogram::from_row(&h.to_row()), Ok(h));
        assert!(Histogram::from_row(&[1, 2]).is_err());
        let mut bad = Histogram::default().to_row();
        bad[0] = 5;
        assert!(Histogram::from_row(&bad)
            .unwrap_err()
            .contains("more observations"));
    }
}
