// Head circumference from a segmentation mask or from an annotation outline.
//
// From a mask predicted at the network's WxH:
// 1. keep the largest 8-connected foreground region (stray blobs do not disturb the fit);
// 2. take its boundary as the midpoints of the pixel edges between a region pixel and a 4-neighbour
//    background pixel — the sub-pixel edge, not the centres of the outermost region pixels, which lie
//    half a (low-resolution) pixel inside and would bias HC low by about pi * (W'/W) pixels.
//    Edges on the image border are skipped: there the head continues outside the frame;
// 3. map those points to the original frame. Pixel centres are aligned: the centre of pixel i at
//    size n sits at continuous coordinate i + 0.5, and the resize squashes [0, n) onto [0, N), so
//    index x at WxH maps to (x + 0.5) * originalWidth / width - 0.5 (likewise for y);
// 4. fit an ellipse there (least squares, Fitzgibbon / Halir-Flusser) and take its circumference
//    (Ramanujan's second approximation) times the pixel size.
// From an annotation outline (a thin ellipse drawn on the original frame): fit the ellipse to the
// centres of the outline pixels directly.
import Foundation
import ImageCodecs

/// The ellipse measured on one frame, in the original frame's pixel coordinates.
public struct HCMeasurement: Equatable, Codable, Sendable {
    /// Head circumference in mm.
    public var hcMM: Double
    /// The fitted ellipse (pixel coordinates of the original frame; pixel centres at integers).
    public var ellipse: Ellipse
    /// Circumference in original-frame pixels.
    public var circumferencePixels: Double
    /// Pixels of the largest region (at the mask's resolution); 0 for an outline measurement.
    public var regionPixels: Int
    /// How many boundary points the ellipse was fitted to.
    public var boundaryPoints: Int
    /// How far the boundary is from an ellipse: the mean of |r - 1| over the boundary points, r being a
    /// point's radius in the ellipse's own normalised coordinates (r = 1 on the ellipse), so about the mean
    /// distance to the ellipse as a fraction of its radius. A head is an ellipse to about 1%; a boundary
    /// that is not (a cut-off, merged or ragged region) gives an ellipse that does not measure it.
    public var fitResidual: Double
    /// The largest region's share of all predicted head pixels (1 for an outline measurement): a low
    /// share means other head-like regions were dropped, one of which may have been the head.
    public var regionFraction: Double

    /// When a sonographer should check the frame (`reviewReasons` is not empty).
    public var needsReview: Bool { !reviewReasons.isEmpty }

    /// Why the measurement is doubtful, one phrase per reason; empty when it is not. The limits were set
    /// before looking at any test result (docs/DATA.md, "Frames to check", measures what they catch).
    public var reviewReasons: [String] {
        var reasons: [String] = []
        if fitResidual > HCMeasurement.fitResidualLimit {
            reasons.append(String(format: "boundary %.1f%% off an ellipse (limit %.0f%%)", 100 * fitResidual, 100 * HCMeasurement.fitResidualLimit))
        }
        if regionFraction < HCMeasurement.regionFractionLimit {
            reasons.append(String(format: "largest region only %.0f%% of the predicted head pixels (limit %.0f%%)",
                                  100 * regionFraction, 100 * HCMeasurement.regionFractionLimit))
        }
        return reasons
    }

    public static let fitResidualLimit = 0.02
    public static let regionFractionLimit = 0.9
}

/// Mean |r - 1| of `points` in the normalised coordinates of `ellipse` (see `HCMeasurement.fitResidual`).
public func ellipseFitResidual(_ points: [(x: Double, y: Double)], _ ellipse: Ellipse) -> Double {
    guard !points.isEmpty, ellipse.semiMajor > 0, ellipse.semiMinor > 0 else { return .infinity }
    let (c, s) = (cos(ellipse.angle), sin(ellipse.angle))
    var total = 0.0
    for p in points {
        let dx = p.x - ellipse.centerX, dy = p.y - ellipse.centerY
        let u = (c * dx + s * dy) / ellipse.semiMajor, v = (-s * dx + c * dy) / ellipse.semiMinor
        total += abs((u * u + v * v).squareRoot() - 1)
    }
    return total / Double(points.count)
}

/// The largest 8-connected region of `mask` (nonzero = foreground) as a 0/1 mask, and its size.
/// Ties go to the region found first in row-major order.
public func largestRegion(mask: [UInt8], width: Int, height: Int) -> (mask: [UInt8], pixels: Int) {
    precondition(mask.count == width * height, "largestRegion: mask size \(mask.count) is not \(width)x\(height)")
    var label = [Int32](repeating: 0, count: mask.count)
    var bestLabel: Int32 = 0, bestSize = 0, nextLabel: Int32 = 0
    var stack: [Int] = []
    for seed in 0..<mask.count where mask[seed] != 0 && label[seed] == 0 {
        nextLabel += 1
        label[seed] = nextLabel
        stack.append(seed)
        var size = 0
        while let i = stack.popLast() {
            size += 1
            let x = i % width, y = i / width
            for ny in max(0, y - 1)...min(height - 1, y + 1) {
                for nx in max(0, x - 1)...min(width - 1, x + 1) {
                    let j = ny * width + nx
                    if mask[j] != 0 && label[j] == 0 {
                        label[j] = nextLabel
                        stack.append(j)
                    }
                }
            }
        }
        if size > bestSize { bestSize = size; bestLabel = nextLabel }
    }
    return (label.map { $0 == bestLabel && bestLabel != 0 ? 1 : 0 }, bestSize)
}

/// Midpoints of the edges between region pixels and background pixels (4-neighbours inside the
/// image), in pixel-index coordinates of the mask.
public func boundaryEdgePoints(region: [UInt8], width: Int, height: Int) -> [(x: Double, y: Double)] {
    var points: [(x: Double, y: Double)] = []
    for y in 0..<height {
        for x in 0..<width where region[y * width + x] != 0 {
            let i = y * width + x
            if x > 0 && region[i - 1] == 0 { points.append((Double(x) - 0.5, Double(y))) }
            if x < width - 1 && region[i + 1] == 0 { points.append((Double(x) + 0.5, Double(y))) }
            if y > 0 && region[i - width] == 0 { points.append((Double(x), Double(y) - 0.5)) }
            if y < height - 1 && region[i + width] == 0 { points.append((Double(x), Double(y) + 0.5)) }
        }
    }
    return points
}

/// HC of the largest region of a 0/1 (nonzero = head) mask at width x height, measured in the
/// original frame. nil when there is no region or its boundary does not determine an ellipse.
public func measureHC(mask: [UInt8], width: Int, height: Int,
                      originalWidth: Int, originalHeight: Int, pixelSizeMM: Double) -> HCMeasurement? {
    let (region, pixels) = largestRegion(mask: mask, width: width, height: height)
    guard pixels > 0 else { return nil }
    let foreground = mask.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
    let scaleX = Double(originalWidth) / Double(width), scaleY = Double(originalHeight) / Double(height)
    let points = boundaryEdgePoints(region: region, width: width, height: height).map {
        (x: ($0.x + 0.5) * scaleX - 0.5, y: ($0.y + 0.5) * scaleY - 0.5)
    }
    guard let ellipse = fitEllipse(points) else { return nil }
    let perimeter = ellipse.circumference
    return HCMeasurement(hcMM: perimeter * pixelSizeMM, ellipse: ellipse, circumferencePixels: perimeter,
                         regionPixels: pixels, boundaryPoints: points.count, fitResidual: ellipseFitResidual(points, ellipse),
                         regionFraction: Double(pixels) / Double(foreground))
}

/// As above for a float mask: a pixel is head when its value is >= 0.5.
public func measureHC(mask: [Float], width: Int, height: Int,
                      originalWidth: Int, originalHeight: Int, pixelSizeMM: Double) -> HCMeasurement? {
    let binary: [UInt8] = mask.map { $0 >= 0.5 ? 1 : 0 }
    return measureHC(mask: binary, width: width, height: height,
              originalWidth: originalWidth, originalHeight: originalHeight, pixelSizeMM: pixelSizeMM)
}

/// The centres of an outline's pixels (value >= 128).
public func outlinePoints(_ outline: GrayImage) -> [(x: Double, y: Double)] {
    var points: [(x: Double, y: Double)] = []
    outline.pixels.withUnsafeBufferPointer { pixels in
        for y in 0..<outline.height {
            let row = pixels.baseAddress! + y * outline.width
            for x in 0..<outline.width where row[x] >= 128 { points.append((Double(x), Double(y))) }
        }
    }
    return points
}

/// HC of an annotation outline: the ellipse fitted to its pixel centres, times the pixel size.
public func measureOutlineHC(outline: GrayImage, pixelSizeMM: Double) -> HCMeasurement? {
    let points = outlinePoints(outline)
    guard let ellipse = fitEllipse(points) else { return nil }
    let perimeter = ellipse.circumference
    return HCMeasurement(hcMM: perimeter * pixelSizeMM, ellipse: ellipse, circumferencePixels: perimeter,
                         regionPixels: 0, boundaryPoints: points.count, fitResidual: ellipseFitResidual(points, ellipse),
                         regionFraction: 1)
}
