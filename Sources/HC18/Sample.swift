// A frame prepared for the network: gray in [0, 1] and the filled head mask, both squashed to WxH.
import ImageCodecs
import QuantEngine

public struct PreparedSample: Sendable {
    /// height * width gray values in [0, 1] (byte / 255 after the PIL-style bilinear resize).
    public var image: [Float]
    /// height * width values, 1 = head, 0 = background (see `resizeMask`).
    public var mask: [Float]
    public var width: Int
    public var height: Int
    public var originalWidth: Int
    public var originalHeight: Int
    public var sample: HC18Sample
}

/// Reads a frame and its annotation, fills the outline into a head mask at the original size, and
/// squashes both to width x height. Errors name the file that is wrong.
public func loadSample(_ s: HC18Sample, width: Int, height: Int) throws -> PreparedSample {
    guard width > 0, height > 0 else { throw SonoQuantError(s.name, "cannot squash a frame to \(width)x\(height)", kind: .badInputSize) }
    let frame = try readGrayImage(path: s.imagePath)
    let outline = try readGrayImage(path: s.annotationPath)
    guard outline.width == frame.width, outline.height == frame.height else {
        throw SonoQuantError(s.annotationPath, "annotation is \(outline.width)x\(outline.height) but its frame \(s.imagePath) is \(frame.width)x\(frame.height)", kind: .badData)
    }
    guard let mask = filledMask(outline: outline) else {
        throw SonoQuantError(s.annotationPath, "annotation does not contain an ellipse outline (fewer than 6 bright pixels or a degenerate shape)", kind: .badData)
    }
    let image = resizeBilinear(frame, width: width, height: height).pixels.map { Float($0) / 255 }
    let smallMask = resizeMask(mask, width: frame.width, height: frame.height, toWidth: width, toHeight: height)
    return PreparedSample(image: image, mask: smallMask.map { Float($0) }, width: width, height: height,
                          originalWidth: frame.width, originalHeight: frame.height, sample: s)
}
