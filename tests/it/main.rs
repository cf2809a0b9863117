//! One integration-test crate (one link step), one module per area.

mod common;
mod jobs_check;
mod jobs_messages;
mod jobs_preview;
mod jobs_support;
mod lab;
mod smtp_faults;
mod smtp_lab;
mod smtp_lab_pipeline;
mod smtp_pipeline;
mod smtp_pki;
mod smtp_probe;
mod smtp_server;
mod smtp_tls;
