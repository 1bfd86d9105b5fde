//! Shared pieces of the fuzz targets (see `fuzz/README.md`).

pub mod driver;
pub mod replies;
pub mod stateful;
