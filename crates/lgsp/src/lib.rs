//! The `lgsp` binary's library: settings, start-up and shutdown of both
//! planes, the demo province, and the admin CLI client.

pub mod cli;
pub mod config;
mod demo;
mod listener;
pub mod logcmd;
pub mod managecli;
mod platform;
pub mod server;
