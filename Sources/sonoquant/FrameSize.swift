import ArgumentParser

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
