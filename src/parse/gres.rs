//! GRES strings of nodes: "gpu:a100:4(S:0-1),shard:8" (configured) and
//! "gpu:a100:2(IDX:0,2),shard:0" (in use).

/// Sums the count of every entry named `name` ("gpu"), typed or not.
pub fn count(s: &str, name: &'static str) -> u64 {
    entries(s, name).map(|(_, n)| n).sum()
}

/// The count of each type of the entries named `name`: "gpu:a100:4" is
/// ("a100", 4), an untyped "gpu:2" is ("", 2); a type listed twice adds up.
pub fn by_type<'a>(s: &'a str, name: &'static str) -> std::collections::BTreeMap<&'a str, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (kind, n) in entries(s, name) {
        *out.entry(kind).or_insert(0) += n;
    }
    out
}

/// (type, count) of each entry named `name`.
fn entries<'a>(s: &'a str, name: &'static str) -> impl Iterator<Item = (&'a str, u64)> + 'a {
    split_top_level(s).filter_map(move |entry| {
        // Drop the "(S:0-1)" / "(IDX:...)" detail.
        let entry = entry.split('(').next().unwrap_or("").trim();
        let parts: Vec<&str> = entry.split(':').collect();
        match parts.as_slice() {
            [n, count] if *n == name => Some(("", parse_count(count))),
            [n, kind, count] if *n == name => Some((*kind, parse_count(count))),
            _ => None,
        }
    })
}

/// Splits on commas outside parentheses ("IDX:0,2" has its own commas).
fn split_top_level(s: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0i32;
    let mut start = 0;
    let mut out = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|e| !e.is_empty())
}

/// "4" -> 4, "2K" -> 2048. Slurm ends every entry with its count, so
/// anything else reads as 0.
fn parse_count(v: &str) -> u64 {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let n: u64 = num.parse().unwrap_or(0);
    match unit {
        "" => n,
        "K" | "k" => n * 1024,
        "M" | "m" => n * 1024 * 1024,
        "G" | "g" => n * 1024 * 1024 * 1024,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_gpus_in_configured_and_used_strings() {
        assert_eq!(count("gpu:a100:4(S:0-1),shard:8", "gpu"), 4);
        assert_eq!(count("gpu:a100:2,gpu:v100:2", "gpu"), 4);
        assert_eq!(count("gpu:2(IDX:0,2),shard:0(0/8,0/8)", "gpu"), 2);
        assert_eq!(count("gpu:0", "gpu"), 0);
        assert_eq!(count("", "gpu"), 0);
        assert_eq!(count("(null)", "gpu"), 0);
        assert_eq!(count("mps:200", "gpu"), 0);
    }

    #[test]
    fn gpus_by_type() {
        use super::by_type;
        let v: Vec<(&str, u64)> = by_type("gpu:a100:2(IDX:0-1),gpu:v100:1(IDX:2),shard:8", "gpu")
            .into_iter()
            .collect();
        assert_eq!(v, vec![("a100", 2), ("v100", 1)]);
        let v: Vec<(&str, u64)> = by_type("gpu:2(S:0)", "gpu").into_iter().collect();
        assert_eq!(v, vec![("", 2)]);
        assert!(by_type("", "gpu").is_empty());
        assert!(by_type("(null)", "gpu").is_empty());
    }
}
