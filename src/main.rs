fn main() -> std::process::ExitCode {
    // SIGPIPE stays ignored, as the Rust runtime leaves it: a HISP or client that resets its
    // connection must surface as an EPIPE error on that connection, never kill the daemon or the
    // sandbox. A closed stdout (`directd messages | head`) is handled where output is written.
    directd::cli::main()
}
