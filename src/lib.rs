//! gwshim as a library: the modules the binary wires together, one responsibility each.
//! A library so that fuzz targets and benchmarks can reach the parsers.

pub mod child;
pub mod cli;
pub mod error;
pub mod exit;
pub mod guard;
pub mod hermes;
pub mod leftovers;
pub mod logging;
pub mod notify;
pub mod pacing;
pub mod pidfd;
pub mod pidfile;
pub mod proc;
pub mod reap;
pub mod safepath;
pub mod signals;
pub mod supervisor;
pub mod terminal;
pub mod timespan;
pub mod unit;
pub mod workdir;
