//! Integration tests: one binary, one module per command.

mod analyze_expected;
mod cli;
mod codes;
mod collect;
mod common;
mod custom;
mod import;
mod import_codes;
mod local;
mod report_browser;
mod run;
mod status;
