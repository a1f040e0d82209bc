//! The connector's tools: the quick start, the benchmarks and the fault
//! suite. They run the connector's own executables (`worker`, `ingest`,
//! `sandbox`) as child processes, found beside their own (see [`binaries`]).

pub mod bench;
pub mod binaries;
pub mod faults;
pub mod process;
pub mod quickstart;
pub mod support;
