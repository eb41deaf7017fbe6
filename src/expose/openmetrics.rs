//! OpenMetrics 1.0 text: counters and infos are typed under their base
//! name, samples keep the `_total` / `_info` suffix, and `# EOF` ends it.

use super::escape;
use crate::metrics::{Family, Kind};

pub fn write(families: &[&Family], out: &mut Vec<u8>) {
    write_families(families, out);
    out.extend_from_slice(EOF);
}

/// The last line of an exposition.
pub const EOF: &[u8] = b"# EOF\n";

/// The families alone, without `# EOF`: a piece of a longer exposition.
pub fn write_families(families: &[&Family], out: &mut Vec<u8>) {
    for f in families {
        if f.samples.is_empty() {
            continue;
        }
        let (base, kind): (&str, &[u8]) = match f.kind {
            Kind::Counter => (
                f.name.strip_suffix("_total").unwrap_or(&f.name),
                b" counter\n",
            ),
            Kind::Info => (f.name.strip_suffix("_info").unwrap_or(&f.name), b" info\n"),
            Kind::Gauge => (&f.name, b" gauge\n"),
            Kind::Histogram => (&f.name, b" histogram\n"),
        };
        out.extend_from_slice(b"# TYPE ");
        out.extend_from_slice(base.as_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(base.as_bytes());
        out.push(b' ');
        escape::help(&f.help, true, out);
        out.push(b'\n');
        for s in &f.samples {
            escape::sample(&f.name, &f.label_names, s, out);
        }
    }
}
