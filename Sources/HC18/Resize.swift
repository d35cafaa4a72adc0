// Resizing frames and masks to the network's WxH ("squashing": no aspect-ratio preservation).
//
// Convention: exactly PIL's `Image.resize((w, h), Image.BILINEAR)` on an 8-bit gray image, which is
// what the PyTorch reference and the fixtures used:
// - separable: a horizontal pass into an 8-bit intermediate, then a vertical pass;
// - output pixel i samples the input around centre (i + 0.5) * scale (pixel centres aligned,
//   scale = inSize / outSize), with the triangle filter 1 - |d|;
// - antialiased when shrinking: the filter's support (1 input pixel) widens to `scale` input pixels
//   and its argument is divided by `scale`, so every input pixel contributes (like area averaging);
//   when enlarging the support stays 1 (plain bilinear interpolation);
// - weights are normalised to sum 1 over the taps inside the image (the border is not padded),
//   then turned into fixed point with 22 fractional bits, accumulated from 0.5 (round half up) and
//   clamped to 0...255 — PIL's 8-bit arithmetic, so the result matches PIL bit for bit.
import ImageCodecs

/// PIL's fixed-point precision for 8-bit resampling: 32 - 8 - 2 bits.
private let precisionBits = 22

/// The taps of one resampling pass: for output index i, input indices start[i] ..< start[i] + count[i]
/// with fixed-point weights[i * taps + k].
struct ResampleTaps {
    var start: [Int]
    var count: [Int]
    var taps: Int
    var weights: [Int32]

    init(inSize: Int, outSize: Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale  // the triangle filter's support is 1
        taps = Int(support.rounded(.up)) * 2 + 1
        start = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        weights = [Int32](repeating: 0, count: outSize * taps)
        var real = [Double](repeating: 0, count: taps)
        for i in 0..<outSize {
            let centre = (Double(i) + 0.5) * scale
            // PIL rounds the window ends with (int)(x + 0.5), truncation toward zero.
            let first = max(0, Int(centre - support + 0.5))
            let end = min(inSize, Int(centre + support + 0.5))
            var total = 0.0
            for k in 0..<(end - first) {
                let distance = (Double(k + first) - centre + 0.5) / filterScale
                real[k] = max(0, 1 - abs(distance))
                total += real[k]
            }
            for k in 0..<(end - first) {
                let w = total != 0 ? real[k] / total : real[k]
                let fixed = w * Double(1 << precisionBits)
                weights[i * taps + k] = Int32(w < 0 ? fixed - 0.5 : fixed + 0.5)
            }
            start[i] = first
            count[i] = end - first
        }
    }
}

@inline(__always)
private func clampToByte(_ accumulator: Int32) -> UInt8 {
    if accumulator <= 0 { return 0 }
    if accumulator >= Int32(256) << Int32(precisionBits) { return 255 }
    return UInt8(accumulator >> Int32(precisionBits))
}

/// Resizes an 8-bit gray image to width x height like PIL's `resize((width, height), BILINEAR)`.
public func resizeBilinear(_ image: GrayImage, width: Int, height: Int) -> GrayImage {
    precondition(width > 0 && height > 0 && image.width > 0 && image.height > 0, "resizeBilinear: empty size")
    let horizontal = ResampleTaps(inSize: image.width, outSize: width)
    let vertical = ResampleTaps(inSize: image.height, outSize: height)
    let half = Int32(1) << Int32(precisionBits - 1)

    // Horizontal pass: image.height rows of `width` pixels, rounded to 8 bits as PIL does.
    let rows = [UInt8](unsafeUninitializedCapacity: width * image.height) { rows, initialized in
        image.pixels.withUnsafeBufferPointer { source in
        horizontal.start.withUnsafeBufferPointer { starts in
        horizontal.count.withUnsafeBufferPointer { counts in
        horizontal.weights.withUnsafeBufferPointer { weights in
            for y in 0..<image.height {
                let (row, target) = (source.baseAddress! + y * image.width, rows.baseAddress! + y * width)
                for x in 0..<width {
                    let (input, tapWeights) = (row + starts[x], weights.baseAddress! + x * horizontal.taps)
                    var sum = half
                    for k in 0..<counts[x] { sum &+= Int32(input[k]) &* tapWeights[k] }
                    target[x] = clampToByte(sum)
                }
            }
        }}}}
        initialized = width * image.height
    }
    // Vertical pass, a whole output row at a time: each tap's input row is added to the row's sums (integer
    // sums, so the order of the adds does not change them).
    var sums = [Int32](repeating: 0, count: width)
    let out = [UInt8](unsafeUninitializedCapacity: width * height) { out, initialized in
        rows.withUnsafeBufferPointer { source in
        sums.withUnsafeMutableBufferPointer { sums in
        vertical.start.withUnsafeBufferPointer { starts in
        vertical.count.withUnsafeBufferPointer { counts in
        vertical.weights.withUnsafeBufferPointer { weights in
            for y in 0..<height {
                for x in 0..<width { sums[x] = half }
                for k in 0..<counts[y] {
                    let (row, weight) = (source.baseAddress! + (starts[y] + k) * width, weights[y * vertical.taps + k])
                    for x in 0..<width { sums[x] &+= Int32(row[x]) &* weight }
                }
                let target = out.baseAddress! + y * width
                for x in 0..<width { target[x] = clampToByte(sums[x]) }
            }
        }}}}}
        initialized = width * height
    }
    return GrayImage(width: width, height: height, pixels: out)
}

/// Resizes a 0/1 mask to width x height: the mask as 0/255 through `resizeBilinear`, then a pixel is
/// foreground when the resized value is >= 128 (coverage >= one half).
public func resizeMask(_ mask: [UInt8], width originalWidth: Int, height originalHeight: Int,
                       toWidth width: Int, toHeight height: Int) -> [UInt8] {
    let scaled = GrayImage(width: originalWidth, height: originalHeight, pixels: mask.map { $0 != 0 ? 255 : 0 })
    return resizeBilinear(scaled, width: width, height: height).pixels.map { $0 >= 128 ? 1 : 0 }
}
