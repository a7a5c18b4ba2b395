//! `limit_allocator_arenas` in a process of its own (it changes the allocator for the
//! whole process, so it stays out of the unit tests that look at per-thread arenas).

#[test]
fn the_arena_cap_is_taken_by_glibc_and_allocation_goes_on() {
    let taken = axs_pty::limit_allocator_arenas(2);
    let gnu = cfg!(all(target_os = "linux", target_env = "gnu"));
    assert_eq!(taken, gnu, "taken: {taken}");
    // Threads beyond the cap share arenas: allocating and freeing from many of them at
    // once still works, and what they built is intact.
    let sums: Vec<u64> = (0..16u64)
        .map(|t| {
            std::thread::spawn(move || {
                let blocks: Vec<Vec<u64>> = (0..256).map(|i| vec![t + i; 512]).collect();
                blocks.iter().map(|b| b[511]).sum::<u64>()
            })
        })
        .map(|h| h.join().unwrap_or(0))
        .collect();
    for (t, sum) in (0..16u64).zip(sums) {
        assert_eq!(sum, (0..256).map(|i| t + i).sum::<u64>(), "thread {t}");
    }
}
