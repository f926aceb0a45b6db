//! (analyze: to be written)
