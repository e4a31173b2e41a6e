//! The `lgsp` binary's library: settings, start-up and shutdown of both
//! planes, the demo province, and the admin CLI client.

pub mod cli;
pub mod config;
mod demo;
mod listener;
mod platform;
pub mod server;
