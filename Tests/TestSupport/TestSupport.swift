// What every test target shares: where the fixtures are, temporary directories, error assertions and
// deterministic test data. One copy, used by all test targets (a library target under Tests/).
import Foundation
import HC18
import QuantEngine
import XCTest

/// Paths of the repository's fixtures and of ../shared, found from this file, so tests run from anywhere.
public enum Fixtures {
    /// The package root (the directory holding Package.swift).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
            url.deleteLastPathComponent()
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// A file under fixtures/ (bundled in the repository, always present).
    public static func path(_ relative: String) -> String { packageRoot + "/fixtures/" + relative }

    /// The bundled HC18 subset: 32 frames, their outlines and the pixel-size CSV.
    public static let hc18Frames = path("hc18/training_set")
    /// The bundled split of `hc18Frames`: 24 train, 8 test.
    public static let hc18Split = path("hc18/split.csv")

    /// ../shared beside the repository (the full data set and PyTorch references); it may be absent.
    public static let sharedDirectory = (packageRoot as NSString).deletingLastPathComponent + "/shared"

    /// A file in ../shared, or an XCTSkip saying what is missing.
    public static func shared(_ relative: String) throws -> String {
        let path = sharedDirectory + "/" + relative
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("../shared/\(relative) is absent (the shared data directory is not next to the package); skipping")
        }
        return path
    }
}

/// A fresh temporary directory, removed when the test ends.
public func temporaryDirectory(_ test: XCTestCase, _ label: String = "test") throws -> String {
    let path = NSTemporaryDirectory() + "sonoquant-\(label)-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Asserts that `expression` throws a `SonoQuantError` whose problem mentions `words` (and whose subject is
/// `subject`, when given): the user-facing error must name the file and say what is wrong.
public func assertSonoQuantError<T>(_ expression: @autoclosure () throws -> T, subject: String? = nil, contains words: String,
                                    kind: SonoQuantError.Kind? = nil, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let error = error as? SonoQuantError else { return XCTFail("not a SonoQuantError: \(error)", file: file, line: line) }
        if let subject { XCTAssertEqual(error.subject, subject, file: file, line: line) }
        if let kind { XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line) }
        XCTAssertTrue(error.problem.lowercased().contains(words.lowercased()), "\"\(error.problem)\" lacks \"\(words)\"", file: file, line: line)
    }
}

/// ||a - b|| / ||b||, in double precision.
public func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var difference = 0.0, reference = 0.0
    for i in 0..<a.count {
        difference += Double(a[i] - b[i]) * Double(a[i] - b[i])
        reference += Double(b[i]) * Double(b[i])
    }
    return (difference / max(reference, 1e-30)).squareRoot()
}

/// Deterministic pseudo-random test data: the project's one generator (HC18's SplitMix64), with the draws
/// the kernel tests use.
public typealias TestRandom = SplitMix64

extension SplitMix64 {
    /// Uniform in [-1, 1).
    public mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    public mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in float() } }
}
