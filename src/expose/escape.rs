/// Escapes a label value: backslash, double quote and newline.
pub fn label_value(s: &str, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Escapes HELP text: backslash and newline (OpenMetrics also quotes).
pub fn help(s: &str, quote: bool, out: &mut Vec<u8>) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

/// Formats a value: integers without a fraction, special values as
/// Prometheus spells them.
pub fn value(v: f64, out: &mut Vec<u8>) {
    use std::io::Write;
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes `{a="x",b="y"}` (nothing for no labels).
pub fn labels(names: &[&str], values: &[String], out: &mut Vec<u8>) {
    if names.is_empty() {
        return;
    }
    out.push(b'{');
    for (i, (n, v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"=\"");
        label_value(v, out);
        out.push(b'"');
    }
    out.push(b'}');
}

/// Writes one sample line: `name{labels} value\n` (a histogram bucket
/// with its `le`).
pub fn sample(name: &str, label_names: &[&str], s: &crate::metrics::Sample, out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(s.suffix.as_bytes());
    if s.suffix == "_bucket" {
        let mut names = label_names.to_vec();
        names.push("le");
        labels(&names, &s.label_values, out);
    } else {
        labels(label_names, &s.label_values, out);
    }
    out.push(b' ');
    value(s.value, out);
    out.push(b'\n');
}
