//! (collect: to be written)
