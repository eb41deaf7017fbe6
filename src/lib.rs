//! slurm-ha-exporter: a Prometheus exporter for Slurm that reads slurmctld
//! through libslurm and stays correct across controller fail-over.
//!
//! Path of a metric from C to text: `slurm/` (raw structs -> typed views),
//! `collect/` (views -> `metrics::Family`), `expose/` (families -> bytes).

pub mod admin;
pub mod child;
pub mod cli;
pub mod collect;
pub mod engine;
pub mod expose;
pub mod http;
pub mod log;
pub mod metrics;
pub mod parse;
pub mod plugin;
pub mod publish;
pub mod role;
pub mod setup;
pub mod slurm;
pub mod state;
