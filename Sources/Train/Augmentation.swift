import HC18

/// The paper's augmentation, applied with identical geometry to a frame and its mask:
/// rotation by an angle uniform in [-25, +25] degrees about the image centre with a reflected border
/// (reflect-101: mirror without repeating the edge pixel, OpenCV's BORDER_REFLECT_101 / albumentations'
/// default), then a horizontal flip with probability 0.5 and a vertical flip with probability 0.1.
/// The frame is sampled bilinearly; the mask is sampled bilinearly at the same points and thresholded at
/// 0.5, so it stays 0/1 and lies exactly where the frame's content went.
public struct Augmentation: Equatable {
    public static let maximumRotationDegrees: Float = 25
    public static let horizontalFlipProbability: Float = 0.5
    public static let verticalFlipProbability: Float = 0.1

    public var rotationDegrees: Float
    public var flipHorizontally: Bool
    public var flipVertically: Bool

    public init(rotationDegrees: Float, flipHorizontally: Bool, flipVertically: Bool) {
        self.rotationDegrees = rotationDegrees
        self.flipHorizontally = flipHorizontally
        self.flipVertically = flipVertically
    }

    /// Draws one augmentation (always three numbers from `rng`, so the stream stays aligned).
    public static func random(_ rng: inout SplitMix64) -> Augmentation {
        let angle = rng.uniform(-maximumRotationDegrees, maximumRotationDegrees)
        let h = rng.uniform() < horizontalFlipProbability
        let v = rng.uniform() < verticalFlipProbability
        return Augmentation(rotationDegrees: angle, flipHorizontally: h, flipVertically: v)
    }

    /// Index into 0..<n mirrored about the edges without repeating them (-1 -> 1, n -> n - 2).
    @inline(__always)
    static func reflect101(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        let period = 2 * (n - 1)
        var j = abs(i) % period
        if j >= n { j = period - j }
        return j
    }

    /// Applies the augmentation to a width x height frame and mask (row-major, one value per pixel).
    public func apply(image: [Float], mask: [Float], width: Int, height: Int) -> (image: [Float], mask: [Float]) {
        precondition(image.count == width * height && mask.count == width * height, "augment: sizes differ")
        var outImage = [Float](repeating: 0, count: image.count)
        var outMask = [Float](repeating: 0, count: mask.count)
        let radians = Double(rotationDegrees) * Double.pi / 180
        let (c, s) = (Float(cos(radians)), Float(sin(radians)))
        let cx = Float(width - 1) / 2, cy = Float(height - 1) / 2
        image.withUnsafeBufferPointer { image in mask.withUnsafeBufferPointer { mask in
        outImage.withUnsafeMutableBufferPointer { outImage in outMask.withUnsafeMutableBufferPointer { outMask in
            for y in 0..<height {
                for x in 0..<width {
                    // The flips act last, so undo them first; then rotate the output point back into the source.
                    let fx = Float(flipHorizontally ? width - 1 - x : x) - cx
                    let fy = Float(flipVertically ? height - 1 - y : y) - cy
                    let sx = c * fx + s * fy + cx
                    let sy = -s * fx + c * fy + cy
                    let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                    let ax = sx - Float(x0), ay = sy - Float(y0)
                    let xa = Self.reflect101(x0, width), xb = Self.reflect101(x0 + 1, width)
                    let ya = Self.reflect101(y0, height), yb = Self.reflect101(y0 + 1, height)
                    @inline(__always) func sample(_ v: UnsafeBufferPointer<Float>) -> Float {
                        let top = v[ya * width + xa] * (1 - ax) + v[ya * width + xb] * ax
                        let bottom = v[yb * width + xa] * (1 - ax) + v[yb * width + xb] * ax
                        return top * (1 - ay) + bottom * ay
                    }
                    outImage[y * width + x] = sample(image)
                    outMask[y * width + x] = sample(mask) >= 0.5 ? 1 : 0
                }
            }
        } } } }
        return (outImage, outMask)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Foundation
#endif
