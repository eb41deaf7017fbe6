//! Array task expressions of pending array records: "0-99%10", "1,3,5-9",
//! "0-30:3", or a hex mask "0x3F".

/// Number of tasks an expression names. The "%N" throttle is not a task.
/// A string Slurm cut short (ending in "...") gives what it still names;
/// callers prefer the record's bitmap when there is one.
pub fn count_tasks(expr: &str) -> u64 {
    let expr = expr.split('%').next().unwrap_or("").trim();
    if let Some(hex) = expr.strip_prefix("0x").or_else(|| expr.strip_prefix("0X")) {
        return hex
            .chars()
            .filter_map(|c| c.to_digit(16))
            .map(|d| d.count_ones() as u64)
            .sum();
    }
    expr.split(',')
        .map(|part| part.trim_end_matches('.'))
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (range, step) = match part.split_once(':') {
                Some((r, s)) => (r, s.parse::<u64>().unwrap_or(1).max(1)),
                None => (part, 1),
            };
            match range.split_once('-') {
                Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                    (Ok(a), Ok(b)) if b >= a => (b - a) / step + 1,
                    _ => 0,
                },
                None => u64::from(range.parse::<u64>().is_ok()),
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::count_tasks;

    #[test]
    fn counts_ranges_steps_lists_and_masks() {
        assert_eq!(count_tasks("0-99%10"), 100);
        assert_eq!(count_tasks("1,3,5-9"), 7);
        assert_eq!(count_tasks("0-30:3"), 11);
        assert_eq!(count_tasks("0x3F"), 6);
        assert_eq!(count_tasks("7"), 1);
        assert_eq!(count_tasks(""), 0);
        assert_eq!(count_tasks("1-3,5..."), 4);
    }
}
