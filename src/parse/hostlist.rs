//! Compresses node names into Slurm's ranged form: node01,node02,node03,gpu7
//! becomes "gpu7,node[01-03]" (the form sinfo prints as NODELIST).

use std::collections::BTreeMap;

/// Ranged host-list string of `names` (duplicates collapse). Names are
/// grouped by the text before their trailing number and by the number's
/// zero-padded width, as Slurm's hostlist does.
pub fn compress<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut plain: Vec<&str> = Vec::new();
    let mut parsed: Vec<(&str, &str)> = Vec::new();
    for name in names {
        let digits_at = name
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let (prefix, digits) = name.split_at(digits_at);
        if digits.is_empty() || digits.len() > 18 {
            plain.push(name);
        } else {
            parsed.push((prefix, digits));
        }
    }
    // Widths that appear zero-padded per prefix: "node10" joins "node09".
    let mut padded: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (prefix, digits) in &parsed {
        if digits.len() > 1 && digits.starts_with('0') {
            padded.entry(prefix).or_default().push(digits.len());
        }
    }
    let mut groups: BTreeMap<(&str, usize), Vec<u64>> = BTreeMap::new();
    for (prefix, digits) in parsed {
        let fixed = digits.len() > 1 && digits.starts_with('0')
            || padded
                .get(prefix)
                .is_some_and(|w| w.contains(&digits.len()));
        let width = if fixed { digits.len() } else { 0 };
        groups
            .entry((prefix, width))
            .or_default()
            .push(digits.parse().unwrap_or(0));
    }
    plain.sort_unstable();
    plain.dedup();
    let mut parts: Vec<String> = plain.into_iter().map(str::to_string).collect();
    for ((prefix, width), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        let fmt = |n: u64| format!("{n:0width$}");
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            ranges.push(if i == j {
                fmt(nums[i])
            } else {
                format!("{}-{}", fmt(nums[i]), fmt(nums[j]))
            });
            i = j + 1;
        }
        if nums.len() == 1 {
            parts.push(format!("{prefix}{}", ranges[0]));
        } else {
            parts.push(format!("{prefix}[{}]", ranges.join(",")));
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::compress;

    #[test]
    fn ranges_keep_padding_and_sort() {
        assert_eq!(
            compress(["node03", "node01", "node02", "node05"]),
            "node[01-03,05]"
        );
        assert_eq!(compress(["node09", "node10"]), "node[09-10]");
        assert_eq!(compress(["n1", "n2", "n10"]), "n[1-2,10]");
        assert_eq!(
            compress(["gpu7", "login", "node1", "node1"]),
            "login,gpu7,node1"
        );
        assert_eq!(compress(std::iter::empty()), "");
    }
}
