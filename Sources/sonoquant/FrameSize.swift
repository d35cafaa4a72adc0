import ArgumentParser
import Foundation
import QuantEngine

/// A frame size written as WxH, e.g. 192x128 (width first, as in PIL's resize((w, h))).
struct FrameSize: ExpressibleByArgument, CustomStringConvertible {
    var width: Int
    var height: Int

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x")
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 else { return nil }
        width = w
        height = h
    }

    var description: String { "\(width)x\(height)" }
}

extension FrameSize {
    /// Checks the size against the model's architecture before any frame is read: each halves the frame a
    /// fixed number of times (`graph.sizeMultiple`: 32 for the MobileNetV2 U-Net, 16 for unet-baseline).
    func check(for graph: ModelGraph) throws {
        try graph.checkFrameSize(width: width, height: height, subject: "--size \(self)")
    }
}

/// Parses `--threads` text such as 1,2 into positive thread counts.
func parseThreadCounts(_ text: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw ValidationError("--threads must be a comma-separated list of positive counts, got \(text)")
    }
    return values.map { $0! }
}
