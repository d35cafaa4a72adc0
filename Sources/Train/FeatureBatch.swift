import QuantEngine

/// A batch of feature maps as the trainer stores them: NHWC, [N][H][W][C], channels innermost — the float
/// engine's layout (without its zero border).
///
/// With channels innermost every layer vectorises over channels: a dense convolution is a GEMM over pixel
/// rows on the engine's tiles with no layout change, a depthwise convolution and BatchNorm apply one
/// vector of per-channel values to each pixel, and per-channel sums (BatchNorm statistics, bias and filter
/// gradients) accumulate a vector per pixel.
public struct FeatureBatch {
    public var channels: Int
    public var batch: Int
    public var height: Int
    public var width: Int
    /// Pixel (n, y, x)'s channels start at ((n * height + y) * width + x) * channels.
    public var data: [Float]

    public init(channels: Int, batch: Int, height: Int, width: Int, data: [Float]) {
        precondition(data.count == channels * batch * height * width, "FeatureBatch: \(data.count) values for \(channels)x\(batch)x\(height)x\(width)")
        self.channels = channels
        self.batch = batch
        self.height = height
        self.width = width
        self.data = data
    }

    public init(zerosChannels channels: Int, batch: Int, height: Int, width: Int) {
        self.init(channels: channels, batch: batch, height: height, width: width,
                  data: [Float](repeating: 0, count: channels * batch * height * width))
    }

    /// A batch whose values `writeAll` sets, every one of them (so no zero fill first).
    init(channels: Int, batch: Int, height: Int, width: Int, writingAll writeAll: (UnsafeMutablePointer<Float>) -> Void) {
        let count = channels * batch * height * width
        let data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            writeAll(buffer.baseAddress!)
            initialized = count
        }
        self.init(channels: channels, batch: batch, height: height, width: width, data: data)
    }

    /// Pixels of one image plane.
    public var plane: Int { height * width }
    /// Pixels of the whole batch: the values each channel has.
    public var pixels: Int { batch * plane }

    /// From a PyTorch-layout tensor [N, C, H, W].
    public init(nchw tensor: Tensor) {
        precondition(tensor.shape.count == 4, "FeatureBatch: expected [N, C, H, W], got \(tensor.shape)")
        let (n, c, h, w) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
        var data = [Float](repeating: 0, count: tensor.count)
        let plane = h * w
        for image in 0..<n {
            for channel in 0..<c {
                let source = (image * c + channel) * plane
                for i in 0..<plane { data[(image * plane + i) * c + channel] = tensor.data[source + i] }
            }
        }
        self.init(channels: c, batch: n, height: h, width: w, data: data)
    }

    /// Back to PyTorch layout [N, C, H, W].
    public func nchw() -> Tensor {
        var out = [Float](repeating: 0, count: data.count)
        for image in 0..<batch {
            for channel in 0..<channels {
                let target = (image * channels + channel) * plane
                for i in 0..<plane { out[target + i] = data[(image * plane + i) * channels + channel] }
            }
        }
        return Tensor(shape: [batch, channels, height, width], data: out)
    }

    /// Adds `other` elementwise (same shape).
    public mutating func add(_ other: FeatureBatch, threads: Int = 1) {
        precondition(data.count == other.data.count)
        data.withUnsafeMutableBufferPointer { a in
            other.data.withUnsafeBufferPointer { b in
                let (ap, bp, count, chunk) = (a.baseAddress!, b.baseAddress!, a.count, 1 << 15)
                parallelChunks((count + chunk - 1) / chunk, threads: threads) { chunks in
                    for i in (chunks.lowerBound * chunk)..<min(count, chunks.upperBound * chunk) { ap[i] += bp[i] }
                }
            }
        }
    }
}
