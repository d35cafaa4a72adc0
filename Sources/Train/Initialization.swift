import HC18
import QuantEngine

/// The trainer's draws on HC18's SplitMix64: all its randomness (initialisation, shuffling, augmentation)
/// comes from it, so a seed fixes a run and the generator state fits in the resume file.
extension SplitMix64 {
    /// Uniform in [0, 1) with 24 random bits (every value exactly representable as Float).
    public mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Standard normal (Box-Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// A generator for one purpose of one epoch, independent of how many numbers earlier epochs drew,
    /// so resuming at an epoch boundary replays exactly the same stream.
    public static func stream(seed: UInt64, epoch: Int, purpose: UInt64) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ (purpose &* 0x9E37_79B9_7F4A_7C15))
        for _ in 0...epoch { _ = mixer.next() }
        return SplitMix64(seed: mixer.next() &+ UInt64(epoch))
    }
}

/// Initial values for parameters that do not come from a checkpoint, as PyTorch builds the model:
/// - decoder convs: segmentation_models_pytorch's `initialize_decoder`: kaiming_uniform_(fan_in, relu),
///   i.e. U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)); BatchNorm gamma 1, beta 0;
/// - head conv: smp's `initialize_head`: xavier_uniform_, U(+-sqrt(6 / (fan_in + fan_out))), bias 0;
/// - a random encoder (full-scratch, rand-*): torchvision MobileNetV2's init: kaiming_normal_(fan_out),
///   N(0, sqrt(2 / fan_out)); BatchNorm gamma 1, beta 0;
/// - BatchNorm running statistics: mean 0, variance 1.
/// fan_in = in/groups * k * k, fan_out = out * k * k (PyTorch's convention, also for depthwise convs).
/// (These are smp's and torchvision's actual initialisers, which the PyTorch reference used; plain
/// nn.Conv2d defaults — kaiming_uniform_(a = sqrt(5)) — would differ.)
public enum Initialization {
    public static func initialTensor(name: String, shape: [Int], rng: inout SplitMix64) -> Tensor {
        let count = shape.reduce(1, *)
        if name.hasSuffix("running_var") { return Tensor(shape: shape, data: [Float](repeating: 1, count: count)) }
        if shape.count == 1 {
            // BatchNorm gamma = 1; BatchNorm beta, conv bias and running mean = 0.
            let isGamma = name.hasSuffix(".weight")
            return Tensor(shape: shape, data: [Float](repeating: isGamma ? 1 : 0, count: count))
        }
        let receptive = shape[2] * shape[3]
        let fanIn = shape[1] * receptive, fanOut = shape[0] * receptive
        var data = [Float](repeating: 0, count: count)
        if name.hasPrefix("encoder.") {
            let std = (2 / Float(fanOut)).squareRoot()
            for i in 0..<count { data[i] = std * rng.normal() }
        } else if name.hasPrefix("segmentation_head.") {
            let bound = (6 / Float(fanIn + fanOut)).squareRoot()
            for i in 0..<count { data[i] = rng.uniform(-bound, bound) }
        } else {
            let bound = (6 / Float(fanIn)).squareRoot()
            for i in 0..<count { data[i] = rng.uniform(-bound, bound) }
        }
        return Tensor(shape: shape, data: data)
    }

    /// A fresh module as plain PyTorch builds it (the baseline U-Net has no custom initialiser): Conv2d and
    /// ConvTranspose2d weights kaiming_uniform_(a = sqrt(5)), i.e. U(+-1/sqrt(fan_in)), and bias
    /// U(+-1/sqrt(fan_in)); BatchNorm gamma 1, beta 0, running mean 0, variance 1. PyTorch takes fan_in from
    /// weight dimension 1 times k*k for both: in*k*k for Conv2d ([out, in, k, k]) but out*k*k for
    /// ConvTranspose2d ([in, out, k, k]). Drawn in graph order: weight, then bias, per conv.
    public static func pytorchDefaultWeights(graph: ModelGraph, rng: inout SplitMix64) -> ModelWeights {
        var tensors: [String: Tensor] = [:]
        for spec in graph.convs {
            let shape = spec.weightShape
            let bound = 1 / Float(shape[1] * shape[2] * shape[3]).squareRoot()
            tensors[spec.weightName] = Tensor(shape: shape, data: (0..<spec.weightCount).map { _ in rng.uniform(-bound, bound) })
            if spec.hasBias {
                tensors[spec.biasName] = Tensor(shape: [spec.outChannels], data: (0..<spec.outChannels).map { _ in rng.uniform(-bound, bound) })
            }
            if let bn = spec.batchNormPrefix {
                let ones = [Float](repeating: 1, count: spec.outChannels), zeros = [Float](repeating: 0, count: spec.outChannels)
                tensors["\(bn).weight"] = Tensor(shape: [spec.outChannels], data: ones)
                tensors["\(bn).bias"] = Tensor(shape: [spec.outChannels], data: zeros)
                tensors["\(bn).running_mean"] = Tensor(shape: [spec.outChannels], data: zeros)
                tensors["\(bn).running_var"] = Tensor(shape: [spec.outChannels], data: ones)
            }
        }
        return ModelWeights(graph: graph, tensors: tensors)
    }

    /// The model a run starts from.
    /// - unet-baseline: `initPath` nil: `pytorchDefaultWeights` (from scratch, as the paper); otherwise a full
    ///   unet-baseline checkpoint to continue from.
    /// - unet-mobilenet_v2, `initPath` nil or `randomEncoder`: every tensor initialised here (the encoder randomly).
    /// - an encoder-only file (torchvision names, e.g. ../shared/weights/mobilenet_v2_imagenet.safetensors):
    ///   encoder from the file, decoder and head initialised here.
    /// - a full checkpoint: everything from the file (fine-tuning continues from it).
    public static func initialWeights(architecture: Architecture = .mobileNetV2UNet, initPath: String?, randomEncoder: Bool,
                                      seed: UInt64) throws -> ModelWeights {
        var rng = SplitMix64.stream(seed: seed, epoch: 0, purpose: 1)
        if architecture == .unetBaseline {
            let graph = ModelGraph.unetBaseline(inputChannels: 3)
            guard let initPath else { return pytorchDefaultWeights(graph: graph, rng: &rng) }
            return try ModelWeights(loading: initPath, graph: graph)
        }
        let graph = ModelGraph.mobileNetV2UNet(inputChannels: 3)
        if randomEncoder || initPath == nil {
            var tensors: [String: Tensor] = [:]
            for (name, shape) in graph.expectedTensorShapes {
                tensors[name] = initialTensor(name: name, shape: shape, rng: &rng)
            }
            return ModelWeights(graph: graph, tensors: tensors)
        }
        return try ModelWeights(loading: initPath!, graph: graph, allowEncoderOnly: true) { name, shape in
            initialTensor(name: name, shape: shape, rng: &rng)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Foundation
#endif
