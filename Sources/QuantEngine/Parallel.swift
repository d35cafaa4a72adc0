import Dispatch
import Foundation
import Synchronization

/// Splits `0..<count` into contiguous chunks and runs them on `threads` threads.
///
/// Chunks are contiguous and their boundaries depend only on `count` and `threads`, so a kernel whose
/// chunks write disjoint outputs gives the same bits for a given thread count on every run, whichever
/// thread runs which chunk. There is `chunksPerThread` chunk per thread, claimed as threads come free (a
/// helper that has not started by the time the caller is done with its own chunk leaves the next one to
/// the caller). One large chunk per thread beat four smaller ones in each kernel's cache reuse: at 2
/// threads an int8 frame took 4.86 instead of 5.33 ms (D-all and full-ft alike), a full-ft training step
/// 0.365 instead of 0.378 s, a D-all step 0.263 instead of 0.282 s, and a float frame the same (11.46 and
/// 11.42 ms); medians of 4-5 alternated runs (docs/PERFORMANCE.md). Four chunks per thread (06b4b47) had
/// been chosen for the float frame, whose caller then spun waiting for late helpers; measured again, one
/// is as fast there and faster everywhere else.
///
/// The chunks go to `WorkerPool.shared` (threads that spin briefly between jobs, as ONNX Runtime's do) when
/// it is free, else to Dispatch (a nested call, or two models run from two threads at once).
@inline(__always)
public func parallelChunks(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    guard threads > 1, count > 1 else {
        body(0..<count)
        return
    }
    let chunks = min(count, threads * chunksPerThread)
    @inline(__always) func run(_ chunk: Int) {
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        if start < end { body(start..<end) }
    }
    if !WorkerPool.shared.run(chunks: chunks, run) {
        // Dispatch wants a @Sendable body. The chunks write disjoint outputs (the contract above), which the
        // compiler cannot see through the kernels' pointers, so the body crosses threads unchecked.
        withoutActuallyEscaping(run) { run in
            let body = UncheckedSendable(run)
            DispatchQueue.concurrentPerform(iterations: chunks) { body.value($0) }
        }
    }
}

/// See `parallelChunks`.
let chunksPerThread = 1

/// A value handed to other threads where the compiler cannot prove that is safe and the caller can: one
/// place to look for every such hand-over.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Helper threads for `parallelChunks`, one per core beyond the caller's.
///
/// Why not Dispatch alone: an int8 frame is about 150 parallel steps of 10-500 µs each, and Dispatch's
/// workers go to sleep between them; waking them cost about a quarter of a 2-thread frame (the per-op
/// profile, which repeats each op while the workers are awake, summed to 9.4 ms against 12.9 ms for the
/// frame). These helpers spin for `spinNanoseconds` after each job before they sleep, so the next op of the
/// same frame starts at once; between frames they sleep and cost nothing.
///
/// A job is published by bumping `generation`; chunks are claimed from `ticket`, which holds the job's
/// generation, its chunk count and the next chunk (`Ticket`), so a helper that is late for a job can never
/// claim a chunk of the next one: it claims only while the job it saw is unfinished.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool(helpers: availableCores - 1)

    /// How long a helper keeps looking for work after a job before it sleeps.
    static let spinNanoseconds: UInt64 = 200_000

    private let helpers: Int
    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let ticket = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    /// Bit h set: helper h is asleep (or about to be) on wakeUps[h].
    private let sleeping = Atomic<Int>(0)
    private let wakeUps: [DispatchSemaphore]
    /// The current job, written before `generation` is bumped and read after it is seen.
    private nonisolated(unsafe) var job: ((Int) -> Void)?

    /// generation << 40 | chunks << 20 | next chunk.
    private enum Ticket {
        static func make(generation: Int, chunks: Int) -> Int { generation << 40 | chunks << 20 }
        static func generation(_ t: Int) -> Int { t >> 40 }
        static func chunks(_ t: Int) -> Int { (t >> 20) & 0xF_FFFF }
        static func next(_ t: Int) -> Int { t & 0xF_FFFF }
    }

    private init(helpers: Int) {
        self.helpers = min(max(0, helpers), Int.bitWidth - 1)
        wakeUps = (0..<self.helpers).map { _ in DispatchSemaphore(value: 0) }
        for helper in 0..<self.helpers {
            let thread = Thread { [unowned self] in self.helperLoop(helper) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body(0..<chunks)` on the caller and the helpers; false (nothing run) if the pool is in use
    /// or has no helpers.
    func run(chunks: Int, _ body: (Int) -> Void) -> Bool {
        guard helpers > 0, chunks < 1 << 20, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        return withoutActuallyEscaping(body) { body in
            job = body
            finished.store(0, ordering: .relaxed)
            let next = generation.load(ordering: .relaxed) + 1
            ticket.store(Ticket.make(generation: next, chunks: chunks), ordering: .relaxed)
            generation.store(next, ordering: .sequentiallyConsistent)
            let asleep = sleeping.exchange(0, ordering: .sequentiallyConsistent)
            for helper in 0..<helpers where asleep & (1 << helper) != 0 { wakeUps[helper].signal() }
            work(generation: next)
            while finished.load(ordering: .acquiring) < chunks {}
            job = nil
            return true
        }
    }

    /// Claims and runs chunks of job `generation` until none is left.
    private func work(generation expected: Int) {
        while true {
            var current = ticket.load(ordering: .acquiring)
            var claimed = -1
            while Ticket.generation(current) == expected && Ticket.next(current) < Ticket.chunks(current) {
                let (exchanged, original) = ticket.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                if exchanged { claimed = Ticket.next(current); break }
                current = original
            }
            guard claimed >= 0 else { return }
            job!(claimed)
            finished.add(1, ordering: .releasing)
        }
    }

    private func helperLoop(_ helper: Int) {
        var seen = 0
        while true {
            var spinStart: UInt64 = 0, spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                guard spins & 255 == 0 else { continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if spinStart == 0 { spinStart = now; continue }
                guard now - spinStart > Self.spinNanoseconds else { continue }
                // Sleep until the next job: announce it, then look once more, so a job published in between
                // is not missed (the publisher wakes whoever it finds announced).
                sleeping.bitwiseOr(1 << helper, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) != seen {
                    // Still announced: take it back. Else the publisher took it and signals: consume that.
                    let (before, _) = sleeping.bitwiseAnd(~(1 << helper), ordering: .sequentiallyConsistent)
                    if before & (1 << helper) == 0 { wakeUps[helper].wait() }
                    break
                }
                wakeUps[helper].wait()
                spinStart = 0
            }
            seen = generation.load(ordering: .acquiring)
            work(generation: seen)
        }
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
#endif
