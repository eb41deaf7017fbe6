//! Writes one set of families in the two formats Prometheus reads:
//! text 0.0.4 and OpenMetrics 1.0. A family is rendered when its data
//! changes, as a piece of the exposition (part.rs), so a scrape only copies
//! bytes.

mod escape;
pub mod openmetrics;
pub mod part;
pub mod text;

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which format a scrape gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// Picks the format from an Accept header by q-value: OpenMetrics only
    /// when the client prefers it over text (Prometheus sends both).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best_om = -1.0f32;
        let mut best_text = -1.0f32;
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some(v) = p.strip_prefix("q=") {
                    q = v.parse().unwrap_or(0.0);
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => best_om = best_om.max(q),
                "text/plain" | "*/*" | "text/*" => best_text = best_text.max(q),
                _ => {}
            }
        }
        if best_om > 0.0 && best_om > best_text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

pub fn render(format: Format, families: &[&crate::metrics::Family], out: &mut Vec<u8>) {
    match format {
        Format::Text => text::write(families, out),
        Format::OpenMetrics => openmetrics::write(families, out),
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn negotiation_follows_q_values() {
        let prom = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0.1,text/plain;q=0.9")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
    }
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::metrics::{Family, Kind};

    fn families() -> Vec<Family> {
        let mut c = Family::counter(
            "sacct_terminal_jobs_total",
            "Total Number of completed slurm jobs",
            &["partition", "reason"],
        );
        c.add(&["a\"b", "line1\nline2 \\ end"], 3.0);
        let mut i = Family::info("slurm_exporter_build_info", "Build", &["version"]);
        i.add(&["0.1.0"], 1.0);
        let g = Family::single(
            "slurm_backfill_cycle_mean_seconds",
            "Mean \\ cycle",
            Kind::Gauge,
            0.25,
        );
        let empty = Family::gauge("slurm_unused", "never printed", &["x"]);
        vec![c, i, g, empty]
    }

    #[test]
    fn text_format_bytes() {
        let f = families();
        let refs: Vec<&Family> = f.iter().collect();
        let mut out = Vec::new();
        render(Format::Text, &refs, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP sacct_terminal_jobs_total Total Number of completed slurm jobs\n\
             # TYPE sacct_terminal_jobs_total counter\n\
             sacct_terminal_jobs_total{partition=\"a\\\"b\",reason=\"line1\\nline2 \\\\ end\"} 3\n\
             # HELP slurm_exporter_build_info Build\n\
             # TYPE slurm_exporter_build_info gauge\n\
             slurm_exporter_build_info{version=\"0.1.0\"} 1\n\
             # HELP slurm_backfill_cycle_mean_seconds Mean \\\\ cycle\n\
             # TYPE slurm_backfill_cycle_mean_seconds gauge\n\
             slurm_backfill_cycle_mean_seconds 0.25\n"
        );
    }

    #[test]
    fn openmetrics_bytes() {
        let f = families();
        let refs: Vec<&Family> = f.iter().collect();
        let mut out = Vec::new();
        render(Format::OpenMetrics, &refs, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# TYPE sacct_terminal_jobs counter\n\
             # HELP sacct_terminal_jobs Total Number of completed slurm jobs\n\
             sacct_terminal_jobs_total{partition=\"a\\\"b\",reason=\"line1\\nline2 \\\\ end\"} 3\n\
             # TYPE slurm_exporter_build info\n\
             # HELP slurm_exporter_build Build\n\
             slurm_exporter_build_info{version=\"0.1.0\"} 1\n\
             # TYPE slurm_backfill_cycle_mean_seconds gauge\n\
             # HELP slurm_backfill_cycle_mean_seconds Mean \\\\ cycle\n\
             slurm_backfill_cycle_mean_seconds 0.25\n\
             # EOF\n"
        );
    }

    #[test]
    fn a_histogram_in_both_formats() {
        let mut h = Family::histogram("slurm_job_run_seconds", "Run time", &["partition"]);
        h.add_histogram(&["p"], &[1, 60], &[2, 5], 130.0, 6);
        let mut text = Vec::new();
        render(Format::Text, &[&h], &mut text);
        let body = "slurm_job_run_seconds_bucket{partition=\"p\",le=\"1.0\"} 2\n\
                    slurm_job_run_seconds_bucket{partition=\"p\",le=\"60.0\"} 5\n\
                    slurm_job_run_seconds_bucket{partition=\"p\",le=\"+Inf\"} 6\n\
                    slurm_job_run_seconds_sum{partition=\"p\"} 130\n\
                    slurm_job_run_seconds_count{partition=\"p\"} 6\n";
        assert_eq!(
            String::from_utf8(text).unwrap(),
            format!(
                "# HELP slurm_job_run_seconds Run time\n\
                 # TYPE slurm_job_run_seconds histogram\n{body}"
            )
        );
        let mut om = Vec::new();
        render(Format::OpenMetrics, &[&h], &mut om);
        assert_eq!(
            String::from_utf8(om).unwrap(),
            format!(
                "# TYPE slurm_job_run_seconds histogram\n\
                 # HELP slurm_job_run_seconds Run time\n{body}# EOF\n"
            )
        );
    }
}
