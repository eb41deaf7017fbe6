//! The finished-jobs counters' durable state:
//! StateSaveLocation/ha_exporter/accounting.json.
//!
//! It holds everything needed to continue counting exactly once after a
//! crash, fail-over or fail-back: the cumulative counts per label set, when
//! counting started, the end of the last window read from slurmdbd, and the
//! slurmdbd ids (db_index) already counted within the look-back window.
//! Counts are published only after the file that holds them is written.

use super::atomic;
use super::histogram::{Histogram, BOUNDS};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const FORMAT: u64 = 1;

/// partition, exit_code, reason, state
pub type Key = (String, String, String, String);

/// What a histogram measures ("wait" or "run"), partition, state class.
pub type HistogramKey = (String, String, String);

/// How far each query reaches back behind the watermark when nothing
/// else is said: also what every file written before the setting existed
/// was counted with.
pub const DEFAULT_OVERLAP_SECS: i64 = 300;

#[derive(Clone, Debug, PartialEq)]
pub struct AccountingState {
    /// Bumped by every write: readers see whether someone else wrote.
    pub generation: u64,
    /// Jobs that ended before this are history, never counted.
    pub counting_since: i64,
    /// End of the last window read from slurmdbd (0: none yet).
    pub watermark: i64,
    /// How far each query reaches back behind the watermark, in seconds.
    /// Kept in the file because every exporter that writes it must prune
    /// `seen` by the same window: one that reached back further than
    /// another pruned would count again what that one forgot.
    pub overlap: i64,
    pub counts: BTreeMap<Key, u64>,
    /// Queue wait and run time of the same jobs (see histogram.rs).
    pub histograms: BTreeMap<HistogramKey, Histogram>,
    /// db_index -> end time, for ids within the look-back window.
    pub seen: HashMap<u64, i64>,
    /// db_index -> (end time, first seen) of records still waiting for
    /// their partition. Persisted so a new active exporter neither counts
    /// them early nor restarts their wait.
    pub waiting: BTreeMap<u64, (i64, i64)>,
    /// Who wrote it last, for `state show`.
    pub writer: String,
}

impl Default for AccountingState {
    fn default() -> AccountingState {
        AccountingState {
            generation: 0,
            counting_since: 0,
            watermark: 0,
            overlap: DEFAULT_OVERLAP_SECS,
            counts: BTreeMap::new(),
            histograms: BTreeMap::new(),
            seen: HashMap::new(),
            waiting: BTreeMap::new(),
            writer: String::new(),
        }
    }
}

pub fn path(state_save_location: &Path) -> PathBuf {
    state_save_location
        .join("ha_exporter")
        .join("accounting.json")
}

impl AccountingState {
    pub fn to_json(&self) -> String {
        let counts: Vec<Value> = self
            .counts
            .iter()
            .map(|((p, e, r, s), n)| json!([p, e, r, s, n]))
            .collect();
        let mut seen: Vec<(&u64, &i64)> = self.seen.iter().collect();
        seen.sort();
        let seen: Vec<Value> = seen.iter().map(|(i, t)| json!([i, t])).collect();
        let waiting: Vec<Value> = self
            .waiting
            .iter()
            .map(|(i, (end, first))| json!([i, end, first]))
            .collect();
        let histograms: Vec<Value> = self
            .histograms
            .iter()
            .map(|((what, p, class), h)| json!([what, p, class, h.to_row()]))
            .collect();
        let v = json!({
            "format": FORMAT,
            "generation": self.generation,
            "counting_since": self.counting_since,
            "watermark": self.watermark,
            "overlap_secs": self.overlap,
            "writer": self.writer,
            "counts": counts,
            "seen": seen,
            "waiting": waiting,
            "histogram_bounds": BOUNDS,
            "histograms": histograms,
        });
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    }

    pub fn from_json(text: &str) -> Result<AccountingState, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let int = |k: &str| {
            v.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| format!("field {k:?} missing or not an integer"))
        };
        let format = int("format")?;
        if format as u64 != FORMAT {
            return Err(format!(
                "format {format}, this exporter reads format {FORMAT}"
            ));
        }
        let mut st = AccountingState {
            generation: int("generation")? as u64,
            counting_since: int("counting_since")?,
            watermark: int("watermark")?,
            // Files from before the setting were counted with the default.
            overlap: match v.get("overlap_secs") {
                None => DEFAULT_OVERLAP_SECS,
                Some(o) => o
                    .as_i64()
                    .filter(|o| *o > 0)
                    .ok_or("field \"overlap_secs\" is not a positive integer")?,
            },
            writer: v
                .get("writer")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            ..Default::default()
        };
        for row in v
            .get("counts")
            .and_then(Value::as_array)
            .ok_or("field \"counts\" missing")?
        {
            let r = row
                .as_array()
                .filter(|r| r.len() == 5)
                .ok_or("a counts row is not [partition, exit_code, reason, state, n]")?;
            let s = |i: usize| {
                r[i].as_str()
                    .map(str::to_string)
                    .ok_or("a counts label is not a string")
            };
            let n = r[4]
                .as_u64()
                .ok_or("a count is not a non-negative integer")?;
            st.counts.insert((s(0)?, s(1)?, s(2)?, s(3)?), n);
        }
        for row in v
            .get("seen")
            .and_then(Value::as_array)
            .ok_or("field \"seen\" missing")?
        {
            let r = row
                .as_array()
                .filter(|r| r.len() == 2)
                .ok_or("a seen row is not [db_index, end]")?;
            let (i, t) = (r[0].as_u64(), r[1].as_i64());
            match (i, t) {
                (Some(i), Some(t)) => {
                    st.seen.insert(i, t);
                }
                _ => return Err("a seen row is not [db_index, end]".into()),
            }
        }
        // Absent in files written before it existed: nothing waits.
        for row in v
            .get("waiting")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
        {
            let r = row
                .as_array()
                .filter(|r| r.len() == 3)
                .map(|r| (r[0].as_u64(), r[1].as_i64(), r[2].as_i64()));
            match r {
                Some((Some(i), Some(end), Some(first))) => {
                    st.waiting.insert(i, (end, first));
                }
                _ => return Err("a waiting row is not [db_index, end, first_seen]".into()),
            }
        }
        // Absent in files written before they existed: histograms start
        // empty. Made with other bounds (a later version): they restart
        // rather than be read into the wrong buckets.
        let same_bounds = v
            .get("histogram_bounds")
            .and_then(Value::as_array)
            .is_some_and(|b| {
                b.iter()
                    .map(Value::as_u64)
                    .eq(BOUNDS.iter().map(|b| Some(*b)))
            });
        if same_bounds {
            for row in v
                .get("histograms")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
            {
                let bad =
                    || "a histograms row is not [what, partition, class, [buckets, sum, count]]";
                let r = row.as_array().filter(|r| r.len() == 4).ok_or_else(bad)?;
                let s = |i: usize| r[i].as_str().map(str::to_string).ok_or_else(bad);
                let numbers: Option<Vec<u64>> = r[3]
                    .as_array()
                    .map(|n| n.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
                    .unwrap_or(None);
                let h = Histogram::from_row(&numbers.ok_or_else(bad)?)?;
                st.histograms.insert((s(0)?, s(1)?, s(2)?), h);
            }
        }
        Ok(st)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// What loading found.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    State(AccountingState),
    Missing,
    /// Unreadable or corrupt: kept aside under this name, with the reason.
    SetAside {
        reason: String,
        kept_as: Option<PathBuf>,
    },
}

/// Reads and validates without touching the file (for `state check`).
pub fn inspect(file: &Path) -> Result<AccountingState, String> {
    let text = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let text = std::str::from_utf8(&text).map_err(|_| format!("{}: not UTF-8", file.display()))?;
    AccountingState::from_json(text).map_err(|e| format!("{}: {e}", file.display()))
}

pub fn load(file: &Path) -> Loaded {
    let text = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => {
            return Loaded::SetAside {
                reason: format!("cannot read {}: {e}", file.display()),
                kept_as: None,
            }
        }
    };
    let parsed = std::str::from_utf8(&text)
        .map_err(|_| "not UTF-8".to_string())
        .and_then(AccountingState::from_json);
    match parsed {
        Ok(st) => Loaded::State(st),
        Err(reason) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let aside = file.with_extension(format!("json.corrupt.{now}"));
            let kept_as = std::fs::rename(file, &aside).ok().map(|_| aside);
            Loaded::SetAside {
                reason: format!("{}: {reason}", file.display()),
                kept_as,
            }
        }
    }
}

pub fn save(file: &Path, st: &AccountingState) -> Result<(), String> {
    atomic::replace(file, st.to_json().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccountingState {
        let mut st = AccountingState {
            generation: 3,
            counting_since: 100,
            watermark: 200,
            overlap: 60,
            writer: "ctl1".into(),
            ..Default::default()
        };
        st.counts.insert(
            ("debug".into(), "0:0".into(), "".into(), "completed".into()),
            7,
        );
        st.counts.insert(
            (
                "a\"b".into(),
                "1:0".into(),
                "General failure".into(),
                "failed".into(),
            ),
            2,
        );
        st.seen.insert(42, 150);
        st.waiting.insert(43, (151, 160));
        st
    }

    #[test]
    fn files_from_before_the_waiting_field_still_load() {
        let mut st = sample();
        st.waiting.clear();
        let mut v: Value = serde_json::from_str(&st.to_json()).unwrap();
        v.as_object_mut().unwrap().remove("waiting");
        assert_eq!(AccountingState::from_json(&v.to_string()).unwrap(), st);
    }

    #[test]
    fn a_file_from_before_the_overlap_setting_was_counted_with_the_default() {
        let st = sample();
        let mut v: Value = serde_json::from_str(&st.to_json()).unwrap();
        v.as_object_mut().unwrap().remove("overlap_secs");
        let read = AccountingState::from_json(&v.to_string()).unwrap();
        assert_eq!(read.overlap, DEFAULT_OVERLAP_SECS);
        v["overlap_secs"] = json!(0);
        let err = AccountingState::from_json(&v.to_string()).unwrap_err();
        assert!(err.contains("overlap_secs"), "{err}");
    }

    #[test]
    fn round_trips() {
        let st = sample();
        assert_eq!(AccountingState::from_json(&st.to_json()).unwrap(), st);
        assert_eq!(st.total(), 9);
    }

    #[test]
    fn truncated_or_garbage_files_are_set_aside_with_a_reason() {
        let dir = std::env::temp_dir().join(format!("acct-state-{}", std::process::id()));
        let f = path(&dir);
        assert_eq!(load(&f), Loaded::Missing);
        save(&f, &sample()).unwrap();
        assert_eq!(load(&f), Loaded::State(sample()));
        let full = std::fs::read(&f).unwrap();
        for bad in [
            &full[..full.len() / 2],
            b"\x00\xffgarbage".as_slice(),
            b"{\"format\": 99}".as_slice(),
        ] {
            std::fs::write(&f, bad).unwrap();
            match load(&f) {
                Loaded::SetAside {
                    reason,
                    kept_as: Some(p),
                } => {
                    assert!(!reason.is_empty());
                    assert_eq!(
                        std::fs::read(&p).unwrap(),
                        bad,
                        "the bad file is kept as it was"
                    );
                    assert!(!f.exists());
                }
                other => panic!("{other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
