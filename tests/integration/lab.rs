//! Lab tests (need root): see tests/integration/lab.rs
