fn main() -> std::process::ExitCode {
    huatuo_receiver::cli::main()
}
