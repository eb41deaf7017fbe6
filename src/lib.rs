//! slurm-ha-exporter: a Prometheus exporter for Slurm that reads slurmctld
//! through libslurm and stays correct across controller fail-over.

pub mod parse;
pub mod slurm;
