//! The processes' memory allocator: jemalloc.
//!
//! A worker allocates and frees many short-lived buffers on two runtime
//! threads (HTTP bodies, JSON, statement arrays), often freeing on one
//! thread what the other allocated. glibc's malloc spent a third of the
//! worker's CPU time on that (arena locks, consolidating freed chunks);
//! with jemalloc the worker needs about a third less CPU per conversion (see
//! docs/src/throughput.md).
//!
//! Tuned for a small resident set, since a worker holds a backlog of
//! messages: one arena per CPU instead of four (each arena keeps its own
//! free pages), and freed pages returned to the system after a second
//! rather than ten (`muzzy_decay_ms:0`: returned at once, not kept lazily).
//! The options are compiled in (`.cargo/config.toml` sets
//! `JEMALLOC_SYS_WITH_MALLOC_CONF`); `_RJEM_MALLOC_CONF` in a process's
//! environment overrides them.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(test)]
mod tests {
    use tikv_jemalloc_ctl::{config, opt};

    #[test]
    fn the_options_are_compiled_in_and_in_effect() {
        assert_eq!(
            config::malloc_conf::read()
                .expect("jemalloc answers")
                .trim_end_matches('\0'),
            "percpu_arena:percpu,dirty_decay_ms:1000,muzzy_decay_ms:0"
        );
        if std::env::var_os("_RJEM_MALLOC_CONF").is_none() {
            // One arena per CPU, not jemalloc's four.
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let arenas = opt::narenas::read().expect("jemalloc answers") as usize;
            assert!(arenas < 4 * cpus.max(2), "{arenas} arenas for {cpus} CPUs");
        }
    }
}
