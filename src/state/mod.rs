//! Durable state in StateSaveLocation (often NFS): whole-file atomic
//! replacement, never fcntl locks.

pub mod accounting;
pub mod atomic;
pub mod histogram;
