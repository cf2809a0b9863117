//! One integration-test crate (one link step), one module per area.

mod common;
mod jobs_check;
mod jobs_hostile;
mod jobs_lines;
mod jobs_messages;
mod jobs_preview;
mod jobs_support;
mod lab;
mod send_budget;
mod send_crash;
mod send_interrupt;
mod send_journal;
mod send_lab;
mod send_lock;
mod send_output;
mod send_preflight;
mod send_status;
mod send_stops;
mod smtp_faults;
mod smtp_lab;
mod smtp_lab_pipeline;
mod smtp_pipeline;
mod smtp_pki;
mod smtp_probe;
mod smtp_server;
mod smtp_tls;
