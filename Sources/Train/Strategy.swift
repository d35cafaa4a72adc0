import QuantEngine

/// A fine-tuning strategy: which architecture, which parameter groups train, whether the encoder starts
/// random, and whether frozen BatchNorm layers keep their statistics frozen (eval mode) during training.
public struct Strategy: Equatable, Sendable {
    public let name: String
    /// Every paper strategy but the plain U-Net trained from scratch (`unetBaseline`) runs the MobileNetV2 U-Net.
    public let architecture: Architecture
    public let trainable: Set<ParameterGroup>
    /// The paper's MobileNet_v2* rows: the encoder starts from random weights instead of ImageNet.
    public let randomEncoder: Bool
    /// Frozen groups' BatchNorm in eval mode (statistics frozen too). Default false, as in the paper's code.
    public let freezeFrozenBatchNormStatistics: Bool

    public init(name: String, trainable: Set<ParameterGroup>, randomEncoder: Bool = false, freezeFrozenBatchNormStatistics: Bool = false,
                architecture: Architecture = .mobileNetV2UNet) {
        self.name = name
        self.architecture = architecture
        self.trainable = trainable
        self.randomEncoder = randomEncoder
        self.freezeFrozenBatchNormStatistics = freezeFrozenBatchNormStatistics
    }

    static let decoder: Set<ParameterGroup> = [.decoderBlock(0), .decoderBlock(1), .decoderBlock(2), .decoderBlock(3), .decoderBlock(4)]
    static let everything: Set<ParameterGroup> = decoder.union([.encoder, .head])

    /// The paper's presets (and the frozen-statistics variant). Partial decoder presets keep the head frozen,
    /// as the paper's parameter counts imply.
    public static let presets: [Strategy] = [
        Strategy(name: "full-ft", trainable: everything),
        Strategy(name: "D-all", trainable: decoder.union([.head])),
        Strategy(name: "D-all-frozenbn", trainable: decoder.union([.head]), freezeFrozenBatchNormStatistics: true),
        Strategy(name: "E", trainable: [.encoder]),
        Strategy(name: "D0", trainable: [.decoderBlock(0)]),
        Strategy(name: "D01", trainable: [.decoderBlock(0), .decoderBlock(1)]),
        Strategy(name: "D012", trainable: [.decoderBlock(0), .decoderBlock(1), .decoderBlock(2)]),
        Strategy(name: "D234", trainable: [.decoderBlock(2), .decoderBlock(3), .decoderBlock(4)]),
        Strategy(name: "D4", trainable: [.decoderBlock(4)]),
        Strategy(name: "D4+H", trainable: [.decoderBlock(4), .head]),
        Strategy(name: "full-scratch", trainable: everything, randomEncoder: true),
        Strategy(name: "rand-frozen-E", trainable: decoder.union([.head]), randomEncoder: true),
        Strategy(name: "rand-frozen-D", trainable: [.encoder], randomEncoder: true),
        // The paper's row 1: every parameter random (PyTorch's default init) and trained. Its decoder has
        // four blocks, D0..D3.
        Strategy(name: "unet-baseline", trainable: [.encoder, .decoderBlock(0), .decoderBlock(1), .decoderBlock(2), .decoderBlock(3), .head],
                 randomEncoder: true, architecture: .unetBaseline),
    ]

    /// The graph this strategy trains (3-channel input, as PyTorch).
    public var graph: ModelGraph { architecture.graph(inputChannels: 3) }

    public static var presetNames: [String] { presets.map(\.name) }

    /// A preset by name (case-insensitive).
    public static func preset(_ name: String) throws -> Strategy {
        guard let s = presets.first(where: { $0.name.lowercased() == name.lowercased() }) else {
            throw SonoQuantError("--strategy \(name)", "unknown strategy; presets: \(presetNames.joined(separator: ", "))")
        }
        return s
    }

    /// Any set of groups, e.g. "E,D3,H" (E = encoder, D0..D4 = decoder blocks, H = head; ranges like D0-D4 allowed).
    public static func groups(_ list: String) throws -> Set<ParameterGroup> {
        var result: Set<ParameterGroup> = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let bounds = item.split(separator: "-").map(String.init)
            if bounds.count == 2, case .decoderBlock(let a)? = ParameterGroup(bounds[0]), case .decoderBlock(let b)? = ParameterGroup(bounds[1]), a <= b {
                for i in a...b { result.insert(.decoderBlock(i)) }
            } else if let group = ParameterGroup(item) {
                result.insert(group)
            } else {
                throw SonoQuantError("--trainable \(list)", "'\(item)' is not a group: use E, D0..D4, H (or a range like D0-D4)")
            }
        }
        if result.isEmpty { throw SonoQuantError("--trainable \(list)", "no group given") }
        return result
    }

    /// "E,D0,D1,H" for a set of groups, in model order.
    public static func describe(_ groups: Set<ParameterGroup>) -> String {
        groups.sorted().map(\.description).joined(separator: ",")
    }
}

#if canImport(Foundation)
import Foundation
#endif
