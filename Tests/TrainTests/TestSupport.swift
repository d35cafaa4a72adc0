import Foundation
import QuantEngine
import XCTest

/// The package root, found from this file's path (Tests/TrainTests/TestSupport.swift).
func packageRoot(_ file: String = #filePath) -> String {
    URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

func fixturePath(_ name: String) -> String { packageRoot() + "/fixtures/" + name }

/// ../shared beside the repository, or skip the test saying why.
func sharedPath(_ relative: String) throws -> String {
    let path = packageRoot() + "/../shared/" + relative
    guard FileManager.default.fileExists(atPath: path) else {
        throw XCTSkip("../shared/\(relative) not present: this check runs only where ../shared exists")
    }
    return path
}

/// ||a - b|| / ||b||.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var difference = 0.0, reference = 0.0
    for i in 0..<a.count {
        difference += Double(a[i] - b[i]) * Double(a[i] - b[i])
        reference += Double(b[i]) * Double(b[i])
    }
    return (difference / max(reference, 1e-30)).squareRoot()
}
