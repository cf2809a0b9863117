//! One integration-test crate (one link step), one module per area.

mod common;
mod lab;
mod smtp_faults;
mod smtp_lab;
mod smtp_pki;
mod smtp_probe;
mod smtp_server;
mod smtp_tls;
