//! TRES strings: "cpu=4,mem=8G,node=1,billing=4,gres/gpu=2".

/// The resources of one TRES string that we export.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tres {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub gpus: u64,
    pub nodes: u64,
}

/// Parses a TRES string. Memory carries a unit suffix (K, M, G, T, P; no
/// suffix means MiB, Slurm's base). Typed GPU entries ("gres/gpu:a100=2")
/// repeat the untyped total, so only "gres/gpu" is counted.
pub fn parse(s: &str) -> Tres {
    let mut t = Tres::default();
    for item in s.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "cpu" => t.cpus = count(value),
            "mem" => t.memory_bytes = mem_bytes(value),
            "gres/gpu" => t.gpus = count(value),
            "node" => t.nodes = count(value),
            _ => {}
        }
    }
    t
}

fn count(v: &str) -> u64 {
    v.trim().parse().unwrap_or(0)
}

/// "8G" -> bytes; a bare number is MiB.
pub fn mem_bytes(v: &str) -> u64 {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, "M"),
    };
    let n: f64 = num.parse().unwrap_or(0.0);
    let mult: f64 = match unit.chars().next().map(|c| c.to_ascii_uppercase()) {
        Some('K') => 1024.0,
        Some('M') => 1024.0 * 1024.0,
        Some('G') => 1024.0 * 1024.0 * 1024.0,
        Some('T') => 1024.0_f64.powi(4),
        Some('P') => 1024.0_f64.powi(5),
        _ => 1024.0 * 1024.0,
    };
    (n * mult).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_mem_gpu() {
        let t = parse("cpu=4,mem=8G,node=1,billing=4,gres/gpu=2,gres/gpu:a100=2");
        assert_eq!(t.cpus, 4);
        assert_eq!(t.memory_bytes, 8 << 30);
        assert_eq!(t.gpus, 2);
        assert_eq!(t.nodes, 1);
    }

    #[test]
    fn bare_memory_is_mib_and_garbage_is_zero() {
        assert_eq!(mem_bytes("500"), 500 << 20);
        assert_eq!(mem_bytes("1.5G"), 3 << 29);
        assert_eq!(parse("").cpus, 0);
        assert_eq!(parse("cpu=x,mem").cpus, 0);
    }
}
