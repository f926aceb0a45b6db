//! (providers: to be written)
