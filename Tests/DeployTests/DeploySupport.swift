import Foundation
import QuantEngine
import XCTest

/// Paths of the repository's fixtures (found from this file, so tests run from anywhere).
enum DeployFixtures {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
            url.deleteLastPathComponent()
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    static func path(_ relative: String) -> String { packageRoot + "/fixtures/" + relative }

    static let frames = path("hc18/training_set")
    static let pixelCSV = path("hc18/training_set/training_set_pixel_size_and_HC.csv")

    /// The trained D-all float model (PyTorch reference weights), loaded once.
    static let dAll: SegmentationModel = {
        try! loadSegmentationModel(path: path("pytorch_D-all_192x128.safetensors"))
    }()
}

/// A fresh temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase, _ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "sonoquant-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// A model that needs no weights: predicts head inside a fixed ellipse (in network pixels), or nowhere.
final class StubModel: SegmentationModel {
    let precision = "stub"
    let graph = ModelGraph.mobileNetV2UNet(inputChannels: 1)
    /// (centre x, centre y, semi-axis x, semi-axis y) as fractions of the network size; nil = no head.
    let head: (Double, Double, Double, Double)?

    init(head: (Double, Double, Double, Double)?) { self.head = head }

    func logits(for input: Tensor, threads: Int) throws -> Tensor {
        let (h, w) = (input.shape[2], input.shape[3])
        var out = [Float](repeating: -5, count: h * w)
        if let (cx, cy, ax, ay) = head {
            for y in 0..<h {
                for x in 0..<w {
                    let u = (Double(x) + 0.5 - cx * Double(w)) / (ax * Double(w))
                    let v = (Double(y) + 0.5 - cy * Double(h)) / (ay * Double(h))
                    if u * u + v * v < 1 { out[y * w + x] = 5 }
                }
            }
        }
        return Tensor(shape: [1, 1, h, w], data: out)
    }
}

func assertSonoQuantError<T>(_ expression: @autoclosure () throws -> T, subject: String? = nil, contains words: String,
                             file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let error = error as? SonoQuantError else { return XCTFail("not a SonoQuantError: \(error)", file: file, line: line) }
        if let subject { XCTAssertEqual(error.subject, subject, file: file, line: line) }
        XCTAssertTrue(error.problem.lowercased().contains(words.lowercased()), "\"\(error.problem)\" lacks \"\(words)\"", file: file, line: line)
    }
}
