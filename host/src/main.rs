use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc. Per request the server allocates
/// and frees thousands of small blocks on two worker threads (hyper,
/// wasmtime's store and instance bookkeeping, the execution record), and
/// glibc's malloc and free were 5% of its CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    edgefn_host::sqlite_without_memory_statistics();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("EDGEFN_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn")))
        .with_writer(std::io::stderr)
        .init();
    let config = edgefn_host::config::Config::parse();
    match edgefn_host::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("edgefn: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
