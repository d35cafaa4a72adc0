/// An activation of the float engine: `images` images of `height` x `width` x `channels`, channels
/// innermost (NHWC), each image surrounded by a one-pixel zero border.
///
/// Why NHWC: every kernel vectorises over channels (SIMD8<Float> = 8 consecutive channels of one pixel),
/// and a 3x3 convolution's taps for one pixel are then contiguous runs of memory.
/// Why the border: 3x3 convolutions (stride 1 and 2, padding 1) read it as PyTorch's zero padding, so
/// the inner loops have no edge cases. Kernels write only the interior; `zeroBorder()` restores the
/// border when an arena buffer is reused for a value of another shape.
///
/// A `FeatureMap` is a view: it does not own its memory (the arena or a `FeatureMapBuffer` does).
public struct FeatureMap {
    public let pointer: UnsafeMutablePointer<Float>
    public let images: Int
    public let height: Int
    public let width: Int
    public let channels: Int

    public init(pointer: UnsafeMutablePointer<Float>, images: Int, height: Int, width: Int, channels: Int) {
        self.pointer = pointer
        self.images = images
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// Floats needed to hold a map of this shape, border included.
    public static func storageCount(images: Int, height: Int, width: Int, channels: Int) -> Int {
        images * (height + 2) * (width + 2) * channels
    }

    public var paddedWidth: Int { width + 2 }
    public var paddedHeight: Int { height + 2 }
    /// Floats from one pixel row to the next.
    public var rowStride: Int { paddedWidth * channels }
    /// Floats from one image to the next.
    public var imageStride: Int { paddedHeight * rowStride }
    public var storageCount: Int { images * imageStride }

    /// Offset of channel 0 of interior pixel (y, x) of image n; y and x may be -1 or height/width (the border).
    @inline(__always)
    public func offset(_ n: Int, _ y: Int, _ x: Int) -> Int {
        n * imageStride + (y + 1) * rowStride + (x + 1) * channels
    }

    public subscript(n: Int, y: Int, x: Int, c: Int) -> Float {
        get { pointer[offset(n, y, x) + c] }
        nonmutating set { pointer[offset(n, y, x) + c] = newValue }
    }

    /// Sets the one-pixel border of every image to zero.
    public func zeroBorder() {
        for n in 0..<images {
            let image = pointer + n * imageStride
            image.update(repeating: 0, count: rowStride)                                  // top row
            (image + (height + 1) * rowStride).update(repeating: 0, count: rowStride)    // bottom row
            for y in 1...height {
                (image + y * rowStride).update(repeating: 0, count: channels)              // left pixel
                (image + y * rowStride + (width + 1) * channels).update(repeating: 0, count: channels) // right pixel
            }
        }
    }

    /// The map as an NCHW tensor (border dropped).
    public func tensor() -> Tensor {
        var data = [Float](repeating: 0, count: images * channels * height * width)
        for n in 0..<images {
            for y in 0..<height {
                for x in 0..<width {
                    let source = pointer + offset(n, y, x)
                    for c in 0..<channels { data[((n * channels + c) * height + y) * width + x] = source[c] }
                }
            }
        }
        return Tensor(shape: [images, channels, height, width], data: data)
    }

    /// Copies an NCHW tensor of this map's shape into the interior; the border is left as it is.
    public func load(_ tensor: Tensor) {
        precondition(tensor.shape == [images, channels, height, width], "FeatureMap.load: shape \(tensor.shape) is not [\(images), \(channels), \(height), \(width)]")
        tensor.data.withUnsafeBufferPointer { data in
            for n in 0..<images {
                for c in 0..<channels {
                    for y in 0..<height {
                        let row = pointer + offset(n, y, 0) + c
                        let source = data.baseAddress! + ((n * channels + c) * height + y) * width
                        for x in 0..<width { row[x * channels] = source[x] }
                    }
                }
            }
        }
    }
}

/// A feature map that owns its (zeroed) memory; for tests and one-off use. The engine uses an arena.
public final class FeatureMapBuffer {
    public let map: FeatureMap

    public init(images: Int, height: Int, width: Int, channels: Int) {
        let count = FeatureMap.storageCount(images: images, height: height, width: width, channels: channels)
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        map = FeatureMap(pointer: pointer, images: images, height: height, width: width, channels: channels)
    }

    /// A map holding an NCHW tensor.
    public convenience init(_ tensor: Tensor) {
        precondition(tensor.shape.count == 4, "FeatureMapBuffer: expected an NCHW tensor, got shape \(tensor.shape)")
        self.init(images: tensor.shape[0], height: tensor.shape[2], width: tensor.shape[3], channels: tensor.shape[1])
        map.load(tensor)
    }

    deinit { map.pointer.deallocate() }
}
