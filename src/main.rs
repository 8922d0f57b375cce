//! The `dma` binary: everything lives in the library; see `dma --help`.

fn main() -> std::process::ExitCode {
    dma::cli::main()
}
