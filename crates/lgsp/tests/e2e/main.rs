//! End-to-end tests: the platform on random ports, real upstreams, real
//! HTTP clients. Each test has its own data directory.

mod admin;
mod calllog;
mod cli;
mod codes;
mod evidence;
mod gateway;
mod imports;
mod manage;
mod process;
mod support;
mod tls;
mod token;
