//! Prometheus text format 0.0.4.

use super::escape;
use crate::metrics::{Family, Kind};

pub fn write(families: &[&Family], out: &mut Vec<u8>) {
    for f in families {
        if f.samples.is_empty() {
            continue;
        }
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(f.name.as_bytes());
        out.push(b' ');
        escape::help(&f.help, false, out);
        out.extend_from_slice(b"\n# TYPE ");
        out.extend_from_slice(f.name.as_bytes());
        out.extend_from_slice(match f.kind {
            Kind::Counter => b" counter\n",
            Kind::Gauge | Kind::Info => b" gauge\n",
            Kind::Histogram => b" histogram\n",
        });
        for s in &f.samples {
            escape::sample(&f.name, &f.label_names, s, out);
        }
    }
}
