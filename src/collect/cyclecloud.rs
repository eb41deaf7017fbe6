//! Azure CycleCloud metadata, kept from the exporter this one replaces:
//! `azslurm_partition_info` (from `azslurm partitions` + `azslurm limits`)
//! and `jetpack_cluster_info{region}`. The only place we run a program, and
//! only where those programs exist; elsewhere the collector reports nothing.

use super::{Collector, Source, Sources};
use crate::metrics::Family;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

const DEFAULT_AZSLURM: &str = "/root/bin/azslurm";
const DEFAULT_JETPACK: &str = "/opt/cycle/jetpack/bin/jetpack";
const TIMEOUT: Duration = Duration::from_secs(120);

pub struct CycleCloudCollector {
    azslurm: String,
    jetpack: String,
}

impl CycleCloudCollector {
    pub fn new(azslurm: Option<String>, jetpack: Option<String>) -> Self {
        CycleCloudCollector {
            azslurm: azslurm.unwrap_or_else(|| DEFAULT_AZSLURM.into()),
            jetpack: jetpack.unwrap_or_else(|| DEFAULT_JETPACK.into()),
        }
    }
}

/// Runs a program with a deadline; its stdout on exit status 0.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    // crate::child: inside slurmctld a child must not send SIGCHLD.
    let out = crate::child::run(Path::new(program), args, &[], timeout)
        .map_err(|e| format!("{program}: {e}"))?;
    if out.timed_out {
        Err(format!(
            "{program} {} timed out after {timeout:?}",
            args.join(" ")
        ))
    } else if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{program} {} exited with {}",
            args.join(" "),
            out.status
        ))
    }
}

/// `azslurm partitions` prints "PartitionName=x" lines, each followed by a
/// "Nodename=<hostlist>" line. Returns partition -> host list.
pub fn parse_partitions(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for token in line.split_whitespace() {
            if let Some(v) = token.strip_prefix("PartitionName=") {
                current = Some(v.to_string());
            } else if let Some(v) = token.strip_prefix("Nodename=") {
                if let Some(p) = current.take() {
                    out.insert(p, v.to_string());
                }
            }
        }
    }
    out
}

/// `azslurm limits` prints a JSON array, one object per node array.
pub fn partition_info(partitions: &str, limits: &str) -> Result<Family, String> {
    let nodelists = parse_partitions(partitions);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(limits).map_err(|e| format!("azslurm limits: bad JSON: {e}"))?;
    let mut f = Family::gauge(
        "azslurm_partition_info",
        "Partition specs for cluster and available nodecount for each partitions",
        &[
            "partition",
            "nodelist",
            "vm_size",
            "azure_count",
            "ncpus",
            "ngpus",
            "memory_gib",
        ],
    );
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let num = |v: &serde_json::Value| text(v).trim().parse::<i64>().unwrap_or(0);
    for row in rows {
        let array = text(&row["nodearray"]);
        let azure = num(&row["family_available_count"]).min(num(&row["regional_available_count"]));
        // "memory::4.00g" -> "4.00"
        let mem = text(&row["memgb"]);
        let mem = mem
            .rsplit(':')
            .next()
            .unwrap_or("")
            .trim_end_matches(['g', 'G'])
            .to_string();
        let nodelist = nodelists.get(&array).cloned().unwrap_or_default();
        f.add(
            &[
                array.as_str(),
                nodelist.as_str(),
                text(&row["vm_size"]).as_str(),
                azure.to_string().as_str(),
                text(&row["ncpus"]).as_str(),
                text(&row["ngpus"]).as_str(),
                mem.as_str(),
            ],
            num(&row["available_count"]) as f64,
        );
    }
    Ok(f)
}

impl Collector for CycleCloudCollector {
    fn name(&self) -> &'static str {
        "cyclecloud"
    }
    fn needs(&self) -> &'static [Source] {
        &[]
    }
    fn uses_slurmctld(&self) -> bool {
        false
    }
    fn collect(&mut self, _: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        if Path::new(&self.azslurm).exists() {
            let parts = run(&self.azslurm, &["partitions"], TIMEOUT)?;
            let limits = run(&self.azslurm, &["limits"], TIMEOUT)?;
            out.push(partition_info(&parts, &limits)?);
        }
        if Path::new(&self.jetpack).exists() {
            let region = run(
                &self.jetpack,
                &["config", "azure.metadata.compute.location", "None"],
                TIMEOUT,
            )?;
            let mut f = Family::gauge("jetpack_cluster_info", "Cluster Metadata", &["region"]);
            f.add(&[region.trim()], 1.0);
            out.push(f);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_partitions_and_limits() {
        let parts =
            "# comment\nPartitionName=hpc\nNodename=hpc-[1-4]\nPartitionName=htc\nNodename=htc-1\n";
        let limits = r#"[{"nodearray":"hpc","vm_size":"Standard_HB120rs_v3","available_count":"4","family_available_count":"10","regional_available_count":"8","ncpus":120,"ngpus":0,"memgb":"memory::448.00g"}]"#;
        let f = partition_info(parts, limits).unwrap();
        assert_eq!(f.samples.len(), 1);
        assert_eq!(
            f.samples[0].label_values,
            vec![
                "hpc",
                "hpc-[1-4]",
                "Standard_HB120rs_v3",
                "8",
                "120",
                "0",
                "448.00"
            ]
        );
        assert_eq!(f.samples[0].value, 4.0);
        assert!(partition_info(parts, "not json").is_err());
    }

    #[test]
    fn run_enforces_deadline_and_exit_status() {
        assert_eq!(
            run("/bin/echo", &["eastus"], TIMEOUT).unwrap().trim(),
            "eastus"
        );
        assert!(run("/bin/false", &[], TIMEOUT).is_err());
        assert!(run("/bin/sleep", &["5"], Duration::from_millis(200))
            .unwrap_err()
            .contains("timed out"));
        assert!(run("/nonexistent", &[], TIMEOUT).is_err());
    }
}
