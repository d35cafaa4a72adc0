import Dispatch

/// Splits `0..<count` into `threads` contiguous chunks and runs them concurrently.
///
/// Chunks are contiguous and their boundaries depend only on `count` and `threads`, so a kernel whose
/// chunks write disjoint outputs gives the same bits for a given thread count on every run.
@inline(__always)
public func parallelChunks(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let chunks = max(1, min(threads, count))
    if chunks == 1 {
        body(0..<count)
        return
    }
    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// The number of cores this process may use (at least 1).
public var availableCores: Int {
    #if os(Linux)
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
    return max(1, ProcessInfo.processInfo.activeProcessorCount)
    #endif
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Foundation
#endif
