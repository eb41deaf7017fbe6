//! Parsers for the small text formats Slurm puts in its records (TRES and
//! GRES strings, array task expressions, host lists). Pure functions, so
//! they are tested without a cluster.

pub mod array;
pub mod gres;
pub mod hostlist;
pub mod tres;
