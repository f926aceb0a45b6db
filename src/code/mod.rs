//! Coding stage: coder prompts, calls, parsing, consensus and the built-in offline coder.
pub mod offline;
