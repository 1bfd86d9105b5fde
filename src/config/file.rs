//! Config file (being written).
