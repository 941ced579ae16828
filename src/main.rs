fn main() -> std::process::ExitCode {
    directd::cli::main()
}
