//! The `dma` binary: everything lives in the library; see `dma --help`.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    dma::cli::main()
}

/// glibc's malloc gives each thread that allocates an arena of its own, up to eight per core,
/// and an arena keeps the memory it once held. The server's threads each take their turn at
/// a page of an export or a report, so every arena grew to the largest page it saw: two
/// arenas instead held the server at 76 MiB through the full exports at 30,000
/// organisations, against 102 MiB (BENCHMARKS.md). Called first, before any thread exists.
/// (`services::auth::password` relies on the mapping threshold set here.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other
    // thread exists, as glibc asks, and its result (1 on success) needs no handling: on
    // failure glibc keeps its default.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Allocations of 16 MiB and more (argon2's 19 MiB working memory) are mapped on their
        // own and unmapped when freed. glibc's default threshold rises to the size of the
        // last such block freed, after which the next ones came from an arena, which kept
        // them: 38 MiB resident for good after the first sign-ins on two cores.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
