//! Integration tests: one binary, one module per command.
mod report_browser;
