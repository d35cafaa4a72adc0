import ArgumentParser
import Foundation

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

/// Parses `--size` text such as 192x128 into (width, height), with a message that teaches the format.
func parseFrameSize(_ text: String) throws -> (width: Int, height: Int) {
    guard let size = FrameSize(argument: text) else {
        throw ValidationError("--size must look like 192x128 (width x height), got \(text)")
    }
    return (size.width, size.height)
}

/// Parses `--threads` text such as 1,2 into positive thread counts.
func parseThreadCounts(_ text: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw ValidationError("--threads must be a comma-separated list of positive counts, got \(text)")
    }
    return values.map { $0! }
}
