//! The `vuf` binary: parse the command line, dispatch to one subcommand, map errors to
//! exit codes. Everything real lives in the library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
