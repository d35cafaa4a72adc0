import FloatMicrokernels

/// The graph's data-movement operations on NHWC feature maps: residual add, nearest 2x upsample and
/// channel concatenation. Each works on whole pixel rows (contiguous runs of width x channels floats),
/// so vectorisation is a matter of the compiler's loop vectoriser; the references index pixel by pixel.

/// output = a + b (MobileNetV2's residual connection).
public func addMaps(_ a: FeatureMap, _ b: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(a.images == b.images && a.height == b.height && a.width == b.width && a.channels == b.channels
                 && output.images == a.images && output.height == a.height && output.width == a.width && output.channels == a.channels,
                 "addMaps: shapes differ")
    let rowLength = a.width * a.channels
    parallelChunks(a.images * a.height, threads: threads) { rows in
        for row in rows {
            let n = row / a.height, y = row % a.height
            let x = UnsafePointer(a.pointer + a.offset(n, y, 0)), z = UnsafePointer(b.pointer + b.offset(n, y, 0))
            let out = output.pointer + output.offset(n, y, 0)
            var i = 0
            while i + 8 <= rowLength {
                storeVector(loadVector(x + i) + loadVector(z + i), out + i)
                i += 8
            }
            while i < rowLength { out[i] = x[i] + z[i]; i += 1 }
        }
    }
}

public func addMapsReference(_ a: FeatureMap, _ b: FeatureMap, output: FeatureMap) {
    for n in 0..<a.images { for y in 0..<a.height { for x in 0..<a.width { for c in 0..<a.channels {
        output[n, y, x, c] = a[n, y, x, c] + b[n, y, x, c]
    } } } }
}

/// Nearest-neighbour 2x upsample: output pixel (y, x) = input pixel (y / 2, x / 2).
public func upsample2x(_ input: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(output.height == 2 * input.height && output.width == 2 * input.width && output.channels == input.channels
                 && output.images == input.images, "upsample2x: output is not twice the input")
    let channels = input.channels
    parallelChunks(output.images * output.height, threads: threads) { rows in
        for row in rows {
            let n = row / output.height, y = row % output.height
            let source = UnsafePointer(input.pointer + input.offset(n, y / 2, 0))
            let out = output.pointer + output.offset(n, y, 0)
            for x in 0..<input.width {
                let pixel = source + x * channels
                (out + 2 * x * channels).update(from: pixel, count: channels)
                (out + (2 * x + 1) * channels).update(from: pixel, count: channels)
            }
        }
    }
}

public func upsample2xReference(_ input: FeatureMap, output: FeatureMap) {
    for n in 0..<output.images { for y in 0..<output.height { for x in 0..<output.width { for c in 0..<output.channels {
        output[n, y, x, c] = input[n, y / 2, x / 2, c]
    } } } }
}

/// Channel concatenation: output channels are [first's channels, second's channels], as torch.cat(dim=1).
public func concatChannels(_ first: FeatureMap, _ second: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(first.height == second.height && first.width == second.width && first.images == second.images
                 && output.height == first.height && output.width == first.width && output.images == first.images
                 && output.channels == first.channels + second.channels, "concatChannels: shapes do not fit")
    parallelChunks(output.images * output.height, threads: threads) { rows in
        for row in rows {
            let n = row / output.height, y = row % output.height
            let a = UnsafePointer(first.pointer + first.offset(n, y, 0))
            let b = UnsafePointer(second.pointer + second.offset(n, y, 0))
            let out = output.pointer + output.offset(n, y, 0)
            for x in 0..<output.width {
                (out + x * output.channels).update(from: a + x * first.channels, count: first.channels)
                (out + x * output.channels + first.channels).update(from: b + x * second.channels, count: second.channels)
            }
        }
    }
}

public func concatChannelsReference(_ first: FeatureMap, _ second: FeatureMap, output: FeatureMap) {
    for n in 0..<output.images { for y in 0..<output.height { for x in 0..<output.width {
        for c in 0..<first.channels { output[n, y, x, c] = first[n, y, x, c] }
        for c in 0..<second.channels { output[n, y, x, first.channels + c] = second[n, y, x, c] }
    } } }
}
