//! `vuf run`: every stage that has work to do, in order, as plain library calls.
