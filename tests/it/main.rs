//! Integration tests: one binary, one module per command.

mod analyze_expected;
mod codes;
mod common;
mod import;
mod local;
mod status;
mod report_browser;
mod run;
mod collect;
