//! Rendering cost of a large snapshot: 100,000 series in both formats,
//! against a baseline of writing the same lines with format!() into a
//! String (what a naive exporter does). Prints figures and the ratio.
//!   cargo bench --bench render

use slurm_ha_exporter::expose::{render, Format};
use slurm_ha_exporter::metrics::Family;
use std::fmt::Write;
use std::time::Instant;

fn families(series: usize) -> Vec<Family> {
    let per = series / 10;
    (0..10)
        .map(|f| {
            let mut fam = Family::gauge(
                &format!("slurm_bench_metric_{f}"),
                "Benchmark family",
                &["node", "state"],
            );
            for i in 0..per {
                fam.add(&[format!("node{i:05}").as_str(), "idle"], i as f64 * 1.5);
            }
            fam
        })
        .collect()
}

fn naive(fams: &[Family]) -> String {
    let mut s = String::new();
    for f in fams {
        let _ = writeln!(s, "# HELP {} {}\n# TYPE {} gauge", f.name, f.help, f.name);
        for x in &f.samples {
            let labels: Vec<String> = f
                .label_names
                .iter()
                .zip(&x.label_values)
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect();
            let _ = writeln!(s, "{}{{{}}} {}", f.name, labels.join(","), x.value);
        }
    }
    s
}

fn time<T>(runs: u32, mut f: impl FnMut() -> T) -> f64 {
    let t0 = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    t0.elapsed().as_secs_f64() * 1000.0 / runs as f64
}

fn main() {
    let fams = families(100_000);
    let refs: Vec<&Family> = fams.iter().collect();
    let runs = 20;
    let mut size = 0;
    let text = time(runs, || {
        let mut out = Vec::with_capacity(8 << 20);
        render(Format::Text, &refs, &mut out);
        size = out.len();
        out
    });
    let om = time(runs, || {
        let mut out = Vec::with_capacity(8 << 20);
        render(Format::OpenMetrics, &refs, &mut out);
        out
    });
    let base = time(runs, || naive(&fams));
    println!(
        "100000 series, {} KiB per exposition, mean of {runs} runs",
        size / 1024
    );
    println!("{:28} {:>10}", "", "ms/render");
    println!("{:28} {:>10.2}", "ours: text 0.0.4", text);
    println!("{:28} {:>10.2}", "ours: OpenMetrics 1.0", om);
    println!("{:28} {:>10.2}", "baseline: format!() lines", base);
    println!("{:28} {:>10.3}", "ratio ours(text)/baseline", text / base);
}
