//! (code: to be written)
