import CMalloc

/// Keeps memory the trainer frees inside the process so the next step reuses it.
///
/// Every training step allocates the same large buffers again (im2col columns, activations, gradients;
/// tens of megabytes each, a few hundred per step). glibc serves any allocation above its mmap threshold (32 MB at
/// most) with fresh mmap'd pages and unmaps them on free, so each step page-faults and the kernel zeroes
/// all of that memory again: about a fifth of a D4 training process's cycles in a perf profile (clear_page, page faults,
/// memset; docs/PERFORMANCE.md). Serving everything from the heap, never trimming it, keeps the pages mapped.
/// The cost: the process holds its peak heap until it exits, which a training process does anyway.
/// Process-wide, so call it only in processes that train. No effect where the C library is not glibc.
public func keepFreedMemoryForReuse() {
    #if os(Linux) && canImport(Glibc)
    _ = mallopt(M_MMAP_MAX, 0)                 // no allocation gets its own mmap
    _ = mallopt(M_TRIM_THRESHOLD, Int32.max)   // never hand the top of the heap back
    _ = mallopt(M_TOP_PAD, 64 << 20)           // grow the heap in 64 MB steps, not one brk per buffer
    #endif
}
