//! Integration tests: one binary, one module per command.

mod common;
mod import;
mod status;
