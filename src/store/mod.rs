//! (store: to be written)
