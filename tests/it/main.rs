//! One integration-test crate (one link step), one module per area.

mod common;
mod lab;
