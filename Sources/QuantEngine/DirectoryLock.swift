import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An advisory lock on an output directory, so that two runs cannot write into one directory and leave a
/// mix of both (two `train` runs into one `--out` used to both exit 0 with one run's epoch files beside the
/// other's model). `flock` on `DIR/.sonoquant.lock`: the kernel releases it when the process ends, however it
/// ends, so a killed run never leaves the directory locked. The file names its holder for the error message.
public final class DirectoryLock {
    public let directory: String
    private let descriptor: Int32

    /// Takes the lock or throws a one-line error naming the process that holds it.
    public init(directory: String, purpose: String) throws {
        self.directory = directory
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/.sonoquant.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SonoQuantError(directory, "cannot create the lock file \(path) (errno \(errno)): is the directory writable?", kind: .cannotWrite) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw SonoQuantError(directory, "in use by another sonoquant process (\(holder.isEmpty ? "unknown" : holder)); wait for it to finish or choose another --out", kind: .cannotWrite)
        }
        let note = Array("pid \(getpid()): \(purpose)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = note.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = fd
        removeStaleTemporaryFiles()
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// Deletes `.NAME.tmp-PID` files (`writeFileAtomically`'s) left by processes that no longer run, e.g. a
    /// run killed during a checkpoint write (30-50 MB each). Safe under the lock: no other run writes here.
    private func removeStaleTemporaryFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") {
            guard let range = name.range(of: ".tmp-", options: .backwards), let pid = Int32(name[range.upperBound...]),
                  pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }
}
