import Foundation
import XCTest
import QuantEngine

/// Paths of the repository's fixtures and of ../shared (found from this file, so tests run from anywhere).
enum Fixtures {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
            url.deleteLastPathComponent()
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    static func path(_ relative: String) -> String { packageRoot + "/fixtures/" + relative }

    /// A file in ../shared, or an XCTSkip saying what is missing.
    static func shared(_ relative: String) throws -> String {
        let path = packageRoot + "/../shared/" + relative
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("../shared/\(relative) is absent (the shared data directory is not next to the package); skipping")
        }
        return path
    }

    /// The trained D-all model, loaded once for all tests.
    static let dAllModel: FloatUNet = {
        let weights = try! ModelWeights(loading: path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        return FloatUNet(weights: weights)
    }()
}

/// Deterministic pseudo-random numbers for test data (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in float() } }
}
