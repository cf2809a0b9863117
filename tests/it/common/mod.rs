//! Shared test helpers: the lab's environment, hermetic binary runs.

pub mod lab_env;
