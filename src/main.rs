fn main() -> std::process::ExitCode {
    // Die quietly on a closed pipe (`directd messages | head`) like other Unix tools, instead of
    // panicking on the failed write.
    // SAFETY: called before any thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    directd::cli::main()
}
