/// The model as data: a list of operations over numbered values, shared by the float engine, the int8
/// engine, the calibrator (which observes every value) and the trainer (which walks it backwards).
/// Parameter names are segmentation_models_pytorch's state-dict names, so checkpoints move to and from PyTorch.
import Dispatch

/// Which fine-tuning group a parameter belongs to (the paper's E, D0..D4, H).
public enum ParameterGroup: Hashable, CustomStringConvertible, Comparable, Sendable {
    case encoder
    case decoderBlock(Int)
    case head

    public var description: String {
        switch self {
        case .encoder: return "E"
        case .decoderBlock(let i): return "D\(i)"
        case .head: return "H"
        }
    }

    /// Parses "E", "D0".."D4", "H".
    public init?(_ text: String) {
        switch text.uppercased() {
        case "E": self = .encoder
        case "H": self = .head
        case let t where t.hasPrefix("D") && t.count == 2:
            guard let i = Int(t.dropFirst()), (0...4).contains(i) else { return nil }
            self = .decoderBlock(i)
        default: return nil
        }
    }

    private var order: Int {
        switch self {
        case .encoder: return 0
        case .decoderBlock(let i): return 1 + i
        case .head: return 10
        }
    }
    public static func < (a: ParameterGroup, b: ParameterGroup) -> Bool { a.order < b.order }
}

public enum Activation: String, Equatable, Sendable {
    case none, relu, relu6
}

/// A convolution, optionally followed by BatchNorm, then an activation.
public struct ConvSpec: Equatable, Sendable {
    public enum Kind: String, Equatable, Sendable {
        /// Dense convolution over all input channels.
        case standard
        /// One 3x3 filter per channel (MobileNetV2's depthwise conv, groups == channels).
        case depthwise
        /// PyTorch's ConvTranspose2d with kernel == stride (the baseline U-Net's 2x2 stride-2 upsampling):
        /// every input pixel writes its own kernel x kernel output patch, no overlap, no padding.
        case transposed
    }
    /// Name prefix of the conv weight, e.g. "encoder.features.2.conv.0.0" (weight is `<prefix>.weight`).
    public let weightPrefix: String
    /// Name prefix of the BatchNorm that follows, e.g. "encoder.features.2.conv.0.1"; nil if none.
    public let batchNormPrefix: String?
    /// Whether the conv has its own bias (only the segmentation head does).
    public let hasBias: Bool
    public let kind: Kind
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    public let activation: Activation
    public let group: ParameterGroup

    public init(weightPrefix: String, batchNormPrefix: String?, hasBias: Bool, kind: Kind, kernel: Int, stride: Int,
                inChannels: Int, outChannels: Int, activation: Activation, group: ParameterGroup) {
        self.weightPrefix = weightPrefix
        self.batchNormPrefix = batchNormPrefix
        self.hasBias = hasBias
        self.kind = kind
        self.kernel = kernel
        self.stride = stride
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.activation = activation
        self.group = group
    }

    /// Padding on every side: 1 for 3x3, 0 for 1x1 (PyTorch's `padding=kernel//2`); 0 for transposed.
    public var padding: Int { kind == .transposed ? 0 : kernel / 2 }

    public var weightName: String { weightPrefix + ".weight" }
    public var biasName: String { weightPrefix + ".bias" }

    /// Every checkpoint tensor of this conv: weight, bias if any, the BatchNorm's four.
    public var tensorNames: [String] {
        [weightName] + (hasBias ? [biasName] : [])
            + (batchNormPrefix.map { bn in ["weight", "bias", "running_mean", "running_var"].map { "\(bn).\($0)" } } ?? [])
    }

    /// PyTorch weight shape: [out, in/groups, k, k]; ConvTranspose2d stores [in, out, k, k].
    public var weightShape: [Int] {
        switch kind {
        case .standard: return [outChannels, inChannels, kernel, kernel]
        case .depthwise: return [outChannels, 1, kernel, kernel]
        case .transposed: return [inChannels, outChannels, kernel, kernel]
        }
    }

    public var weightCount: Int { weightShape.reduce(1, *) }

    /// Indices into the weight (layout `weightShape`) of output channel o's weights: one contiguous run for
    /// a conv ([out][...]); k x k runs, one per input channel, for a transposed conv ([in][out][k][k]).
    public func weightIndices(ofOutput o: Int) -> [Int] {
        let perOutput = weightCount / outChannels
        switch kind {
        case .standard, .depthwise:
            return Array((o * perOutput)..<((o + 1) * perOutput))
        case .transposed:
            let k2 = kernel * kernel
            var indices: [Int] = []
            for c in 0..<inChannels {
                let start: Int = (c * outChannels + o) * k2
                indices += start..<(start + k2)
            }
            return indices
        }
    }

    /// Trainable parameters: conv weight, conv bias, BatchNorm gamma and beta (running stats excluded).
    public var parameterCount: Int {
        weightCount + (hasBias ? outChannels : 0) + (batchNormPrefix != nil ? 2 * outChannels : 0)
    }

    /// Output spatial size for an input of size `n` (PyTorch: floor((n + 2p - k) / s) + 1; transposed with
    /// kernel == stride: n * s).
    public func outputSize(_ n: Int) -> Int {
        kind == .transposed ? n * stride : (n + 2 * padding - kernel) / stride + 1
    }
}

/// One step of the graph. Values are numbered; value 0 is the network input.
public enum GraphOp: Equatable, Sendable {
    case conv(ConvSpec, input: Int, output: Int)
    /// Residual add: output = a + b.
    case add(Int, Int, output: Int)
    /// Nearest-neighbour 2x upsample.
    case upsample2x(Int, output: Int)
    /// Channel concatenation [first, second] in that order.
    case concat(Int, Int, output: Int)
    /// 2x2 max-pool, stride 2 (PyTorch `MaxPool2d(2)`; odd trailing rows/columns are dropped).
    case maxPool2x2(Int, output: Int)

    public var output: Int {
        switch self {
        case .conv(_, _, let o), .add(_, _, let o), .upsample2x(_, let o), .concat(_, _, let o), .maxPool2x2(_, let o): return o
        }
    }

    public var inputs: [Int] {
        switch self {
        case .conv(_, let i, _): return [i]
        case .add(let a, let b, _): return [a, b]
        case .upsample2x(let i, _): return [i]
        case .concat(let a, let b, _): return [a, b]
        case .maxPool2x2(let i, _): return [i]
        }
    }
}

/// Shape of a value relative to the input: channels and the downsampling factor of its spatial size.
public struct ValueInfo: Equatable, Sendable {
    public let channels: Int
    /// The value is (H / downsample) x (W / downsample) for an input of H x W.
    public let downsample: Int

    public init(channels: Int, downsample: Int) {
        self.channels = channels
        self.downsample = downsample
    }
}

/// The networks this build runs; the raw value is what model files store in `sonoquant.architecture`.
public enum Architecture: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    /// segmentation_models_pytorch's U-Net on a MobileNetV2 encoder: every strategy of the paper.
    case mobileNetV2UNet = "unet-mobilenet_v2"
    /// The paper's plain U-Net, trained from scratch.
    case unetBaseline = "unet-baseline"

    public var description: String { rawValue }

    public func graph(inputChannels: Int = 3) -> ModelGraph {
        switch self {
        case .mobileNetV2UNet: return .mobileNetV2UNet(inputChannels: inputChannels)
        case .unetBaseline: return .unetBaseline(inputChannels: inputChannels)
        }
    }
}

public struct ModelGraph: Equatable, Sendable {
    public let architecture: Architecture
    public let inputChannels: Int
    public private(set) var ops: [GraphOp] = []
    public private(set) var values: [ValueInfo]
    /// The network output (logits).
    public private(set) var output: Int = 0
    /// Input sides must be multiples of this (32 for five stride-2 stages).
    public let sizeMultiple: Int

    init(architecture: Architecture, inputChannels: Int, sizeMultiple: Int) {
        self.architecture = architecture
        self.inputChannels = inputChannels
        self.sizeMultiple = sizeMultiple
        self.values = [ValueInfo(channels: inputChannels, downsample: 1)]
    }

    /// For each value, the index of the last op that reads it (-1: never read; `Int.max` for the output, which
    /// is never freed): when its memory may be reused. The engines' arena plans and the trainer's eval
    /// forward free values by it.
    public var lastUse: [Int] {
        var lastUse = [Int](repeating: -1, count: values.count)
        for (index, op) in ops.enumerated() { for v in op.inputs { lastUse[v] = index } }
        lastUse[output] = Int.max
        return lastUse
    }

    /// The memory plan of one forward pass (`ArenaPlan`) with `storage(v)` units for value v, each range
    /// starting at a multiple of `alignment` units.
    public func arenaPlan(storage: (Int) -> Int, alignment: Int) -> ArenaPlan {
        ArenaPlan(graph: self, storage: storage, alignment: alignment)
    }

    /// Throws unless a width x height frame suits this network: both sides positive multiples of
    /// `sizeMultiple`, because the network halves the frame log2(sizeMultiple) times and its decoder
    /// doubles it back. `subject` says where the size came from (`--size 200x128`, `input`, a file).
    ///
    /// Also refuses a size whose activations could not fit this machine's memory, before anything is
    /// allocated (an absurd `--size` used to abort in the allocator): `images` frames with every graph value
    /// alive at once in float32 (more than the engines keep; the trainer keeps about that per image, twice
    /// with the gradients, so it passes 2 x batch) must take at most half of the physical memory.
    public func checkFrameSize(width: Int, height: Int, subject: String, images: Int = 1) throws {
        let m = sizeMultiple
        guard width > 0, height > 0, width % m == 0, height % m == 0 else {
            throw SonoQuantError(subject, "size \(width)x\(height) (WxH): width and height must be positive multiples of \(m) "
                                 + "for \(architecture) (it halves the frame \(m.trailingZeroBitCount) times)", kind: .badInputSize)
        }
        let (need, limit) = (activationBytes(width: width, height: height, images: images), physicalMemoryBytes / 2)
        guard need <= limit else {
            let gb = { (bytes: Double) in String(format: "%.1f GB", bytes / 1e9) }
            throw SonoQuantError(subject, "size \(width)x\(height) needs about \(gb(need)) of activations\(images > 1 ? " (\(images) frames)" : ""), "
                                 + "more than half of this machine's \(gb(Double(physicalMemoryBytes))) memory", kind: .badInputSize)
        }
    }

    /// Bytes of every graph value of `images` frames of this size in float32, all alive at once (an upper
    /// bound: the engines reuse buffers). As a Double, so an absurd size cannot overflow.
    public func activationBytes(width: Int, height: Int, images: Int = 1) -> Double {
        values.reduce(0.0) { sum, v in
            sum + 4 * Double(v.channels) * Double(width / v.downsample) * Double(height / v.downsample)
        } * Double(images)
    }

    /// A human-readable name for op `index` on a width x height frame, as the engines' `profile` prints
    /// it, e.g. `decoder.blocks.0.conv1.0 conv3x3/1 1376->256 out 12x8x256`. `convKind` overrides the
    /// conv's kind word where an engine runs it another way (the float engine's "winograd").
    public func describeOp(_ index: Int, width: Int, height: Int, convKind: String? = nil) -> String {
        let op = ops[index]
        let info = values[op.output]
        let size = "\(width / info.downsample)x\(height / info.downsample)x\(info.channels)"
        switch op {
        case .conv(let spec, _, _):
            let kind = convKind ?? (spec.kind == .depthwise ? "dw" : spec.kind == .transposed ? "convT" : "conv")
            return "\(spec.weightPrefix) \(kind)\(spec.kernel)x\(spec.kernel)/\(spec.stride) \(spec.inChannels)->\(spec.outChannels) out \(size)"
        case .add: return "add out \(size)"
        case .upsample2x: return "upsample2x out \(size)"
        case .concat: return "concat out \(size)"
        case .maxPool2x2: return "maxpool2x2 out \(size)"
        }
    }

    public var convs: [ConvSpec] {
        ops.compactMap { if case .conv(let spec, _, _) = $0 { return spec } else { return nil } }
    }

    @discardableResult
    mutating func conv(_ spec: ConvSpec, _ input: Int) -> Int {
        precondition(values[input].channels == spec.inChannels, "\(spec.weightPrefix): input has \(values[input].channels) channels, spec says \(spec.inChannels)")
        let downsample = spec.kind == .transposed ? values[input].downsample / spec.stride : values[input].downsample * spec.stride
        values.append(ValueInfo(channels: spec.outChannels, downsample: downsample))
        ops.append(.conv(spec, input: input, output: values.count - 1))
        return values.count - 1
    }

    mutating func add(_ a: Int, _ b: Int) -> Int {
        precondition(values[a] == values[b])
        values.append(values[a])
        ops.append(.add(a, b, output: values.count - 1))
        return values.count - 1
    }

    mutating func upsample2x(_ a: Int) -> Int {
        values.append(ValueInfo(channels: values[a].channels, downsample: values[a].downsample / 2))
        ops.append(.upsample2x(a, output: values.count - 1))
        return values.count - 1
    }

    mutating func maxPool2x2(_ a: Int) -> Int {
        values.append(ValueInfo(channels: values[a].channels, downsample: values[a].downsample * 2))
        ops.append(.maxPool2x2(a, output: values.count - 1))
        return values.count - 1
    }

    mutating func concat(_ a: Int, _ b: Int) -> Int {
        precondition(values[a].downsample == values[b].downsample)
        values.append(ValueInfo(channels: values[a].channels + values[b].channels, downsample: values[a].downsample))
        ops.append(.concat(a, b, output: values.count - 1))
        return values.count - 1
    }

    /// Every learnable tensor and BatchNorm buffer the checkpoint must hold, with its PyTorch shape.
    /// (`num_batches_tracked` is accepted when present and never required.)
    public var expectedTensorShapes: [(name: String, shape: [Int])] {
        var result: [(String, [Int])] = []
        for spec in convs {
            var weightShape = spec.weightShape
            // The first conv of a 1-channel graph still stores PyTorch's 3-channel (RGB) weight.
            if spec.kind == .standard && spec.inChannels == inputChannels && spec.weightPrefix == firstConvPrefix {
                weightShape[1] = 3
            }
            result.append((spec.weightName, weightShape))
            if spec.hasBias { result.append((spec.biasName, [spec.outChannels])) }
            if let bn = spec.batchNormPrefix {
                for suffix in ["weight", "bias", "running_mean", "running_var"] {
                    result.append(("\(bn).\(suffix)", [spec.outChannels]))
                }
            }
        }
        return result
    }

    /// The first convolution, which sees the image. A gray (1-channel) graph sums its RGB weights.
    public var firstConvPrefix: String { convs.first?.weightPrefix ?? "" }

    /// Trainable parameter count of the given groups.
    public func parameterCount(groups: Set<ParameterGroup>) -> Int {
        convs.filter { groups.contains($0.group) }.reduce(0) { $0 + $1.parameterCount }
    }

    public var totalParameterCount: Int { convs.reduce(0) { $0 + $1.parameterCount } }
}

extension ModelGraph {
    /// `smp.Unet("mobilenet_v2", classes=1, activation=None)` as segmentation_models_pytorch 0.6 builds it.
    ///
    /// - Parameter inputChannels: 3 for the PyTorch RGB convention; 1 for a gray frame (the first conv's
    ///   weights are summed over RGB at load time, which is exact because gray = R = G = B).
    public static func mobileNetV2UNet(inputChannels: Int = 3) -> ModelGraph {
        var g = ModelGraph(architecture: .mobileNetV2UNet, inputChannels: inputChannels, sizeMultiple: 32)
        func conv(_ weight: String, _ bn: String?, _ kind: ConvSpec.Kind, k: Int, s: Int, _ cin: Int, _ cout: Int,
                  _ act: Activation, _ group: ParameterGroup, bias: Bool = false) -> ConvSpec {
            ConvSpec(weightPrefix: weight, batchNormPrefix: bn, hasBias: bias, kind: kind, kernel: k, stride: s,
                     inChannels: cin, outChannels: cout, activation: act, group: group)
        }
        let e = "encoder.features"
        // features.0: conv 3x3 stride 2, 3 -> 32, BN, ReLU6.
        var x = g.conv(conv("\(e).0.0", "\(e).0.1", .standard, k: 3, s: 2, inputChannels, 32, .relu6, .encoder), 0)
        // features.1: inverted residual with expansion 1 (no expand conv): depthwise, then project to 16.
        x = g.conv(conv("\(e).1.conv.0.0", "\(e).1.conv.0.1", .depthwise, k: 3, s: 1, 32, 32, .relu6, .encoder), x)
        x = g.conv(conv("\(e).1.conv.1", "\(e).1.conv.2", .standard, k: 1, s: 1, 32, 16, .none, .encoder), x)
        var skips: [Int] = [x]  // 16 ch, 1/2
        // torchvision's inverted residual settings (t, c, n, s) after the first block.
        let settings: [(t: Int, c: Int, n: Int, s: Int)] = [(6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var index = 2
        var channels = 16
        for setting in settings {
            for repeatIndex in 0..<setting.n {
                let stride = repeatIndex == 0 ? setting.s : 1
                let hidden = channels * setting.t
                let p = "\(e).\(index).conv"
                let blockInput = x
                var y = g.conv(conv("\(p).0.0", "\(p).0.1", .standard, k: 1, s: 1, channels, hidden, .relu6, .encoder), x)
                y = g.conv(conv("\(p).1.0", "\(p).1.1", .depthwise, k: 3, s: stride, hidden, hidden, .relu6, .encoder), y)
                y = g.conv(conv("\(p).2", "\(p).3", .standard, k: 1, s: 1, hidden, setting.c, .none, .encoder), y)
                x = (stride == 1 && channels == setting.c) ? g.add(blockInput, y) : y
                channels = setting.c
                // Skip features: outputs of features[:4] (24 ch), [:7] (32 ch), [:14] (96 ch).
                if index == 3 || index == 6 || index == 13 { skips.append(x) }
                index += 1
            }
        }
        // features.18: conv 1x1 320 -> 1280, BN, ReLU6.
        x = g.conv(conv("\(e).18.0", "\(e).18.1", .standard, k: 1, s: 1, 320, 1280, .relu6, .encoder), x)

        // Decoder: skips used deepest first (96, 32, 24, 16), the last block has none.
        let decoderChannels = [256, 128, 64, 32, 16]
        var previous = 1280
        for block in 0..<5 {
            var y = g.upsample2x(x)
            var inChannels = previous
            if block < 4 {
                let skip = skips[3 - block]
                y = g.concat(y, skip)
                inChannels += g.values[skip].channels
            }
            let d = "decoder.blocks.\(block)"
            y = g.conv(conv("\(d).conv1.0", "\(d).conv1.1", .standard, k: 3, s: 1, inChannels, decoderChannels[block], .relu, .decoderBlock(block)), y)
            y = g.conv(conv("\(d).conv2.0", "\(d).conv2.1", .standard, k: 3, s: 1, decoderChannels[block], decoderChannels[block], .relu, .decoderBlock(block)), y)
            x = y
            previous = decoderChannels[block]
        }
        g.output = g.conv(conv("segmentation_head.0", nil, .standard, k: 3, s: 1, 16, 1, .none, .head, bias: true), x)
        return g
    }
}

extension ModelGraph {
    /// Architecture names this build knows, as stored in `sonoquant.architecture` metadata.
    public static let architectureNames = Architecture.allCases.map(\.rawValue)

    /// The architecture of a checkpoint: its `sonoquant.architecture` metadata, else recognised by a tensor
    /// name only that architecture has (a state dict saved by PyTorch carries no metadata).
    public static func architecture(of file: SafeTensorsFile) -> Architecture? {
        if let recorded = file.modelMetadata.architecture { return recorded }
        if file.entries["encoder.features.0.0.weight"] != nil || file.entries["features.0.0.weight"] != nil { return .mobileNetV2UNet }
        if file.entries["enc.0.0.weight"] != nil { return .unetBaseline }
        return nil
    }

    /// The paper's baseline (its Table 2, row 1): a plain U-Net trained from scratch, 31,037,633 parameters.
    ///
    /// As a PyTorch module tree (scripts/peers/unet_baseline.py), which gives the checkpoint names:
    ///
    ///     DoubleConv(cin, cout) = Sequential(Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU,
    ///                                        Conv2d(cout, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU)
    ///     enc   = ModuleList(DoubleConv(3, 64), DoubleConv(64, 128), DoubleConv(128, 256), DoubleConv(256, 512))
    ///             (each followed by MaxPool2d(2))
    ///     bott  = DoubleConv(512, 1024)
    ///     dec.i = Up(c) for c = 512, 256, 128, 64 (dec.0 is the deepest):
    ///             up = ConvTranspose2d(2c, c, 2, stride=2) (with bias), then cat([skip, up]), conv = DoubleConv(2c, c)
    ///     final = Conv2d(64, 1, 1) (with bias)
    ///
    /// Names: `enc.N.0.weight` (conv), `enc.N.1.*` (BatchNorm), `enc.N.3.weight`, `enc.N.4.*`; `bott.{0,1,3,4}.*`;
    /// `dec.i.up.{weight,bias}`, `dec.i.conv.{0,1,3,4}.*`; `final.{weight,bias}`.
    /// Groups (for `--trainable`): enc and bott are E, dec.i is Di, final is H.
    public static func unetBaseline(inputChannels: Int = 3) -> ModelGraph {
        var g = ModelGraph(architecture: .unetBaseline, inputChannels: inputChannels, sizeMultiple: 16)
        func doubleConv(_ prefix: String, _ cin: Int, _ cout: Int, _ group: ParameterGroup, _ input: Int) -> Int {
            let first = g.conv(ConvSpec(weightPrefix: "\(prefix).0", batchNormPrefix: "\(prefix).1", hasBias: false, kind: .standard,
                                        kernel: 3, stride: 1, inChannels: cin, outChannels: cout, activation: .relu, group: group), input)
            return g.conv(ConvSpec(weightPrefix: "\(prefix).3", batchNormPrefix: "\(prefix).4", hasBias: false, kind: .standard,
                                   kernel: 3, stride: 1, inChannels: cout, outChannels: cout, activation: .relu, group: group), first)
        }
        let features = [64, 128, 256, 512]
        var skips: [Int] = []
        var x = 0
        var channels = inputChannels
        for (level, c) in features.enumerated() {
            x = doubleConv("enc.\(level)", channels, c, .encoder, x)
            skips.append(x)
            x = g.maxPool2x2(x)
            channels = c
        }
        x = doubleConv("bott", 512, 1024, .encoder, x)
        for (block, c) in features.reversed().enumerated() {
            let up = g.conv(ConvSpec(weightPrefix: "dec.\(block).up", batchNormPrefix: nil, hasBias: true, kind: .transposed,
                                     kernel: 2, stride: 2, inChannels: 2 * c, outChannels: c, activation: .none, group: .decoderBlock(block)), x)
            let joined = g.concat(skips[3 - block], up)
            x = doubleConv("dec.\(block).conv", 2 * c, c, .decoderBlock(block), joined)
        }
        g.output = g.conv(ConvSpec(weightPrefix: "final", batchNormPrefix: nil, hasBias: true, kind: .standard, kernel: 1, stride: 1,
                                   inChannels: 64, outChannels: 1, activation: .none, group: .head), x)
        return g
    }
}

/// The machine's physical memory in bytes.
public var physicalMemoryBytes: Double {
    Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif


/// Times each op of `graph` for a frame of this size: the fastest of `repeats` calls of `runOp(index)`, in
/// milliseconds (the fastest, as the least disturbed by other processes). The float and int8 engines' `profile`
/// (`sonoquant latency --profile`) call it with their planned arena; `convKind(index)` names a kernel choice.
func timeEachOp(of graph: ModelGraph, width: Int, height: Int, repeats: Int, convKind: (Int) -> String? = { _ in nil },
                runOp: (Int) -> Void) -> [(op: String, milliseconds: Double)] {
    graph.ops.indices.map { index in
        var fastest = Double.infinity
        for _ in 0..<max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            runOp(index)
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return (graph.describeOp(index, width: width, height: height, convKind: convKind(index)), fastest)
    }
}

/// Where each graph value lives during one forward pass: the float and int8 engines' one memory plan. Each
/// engine sizes the values in its own storage units (padded float maps, int8 bytes) and allocates one arena
/// of `size` units.
///
/// Ops run in graph order. Before op i runs, its output gets the lowest range of the arena that holds it
/// between the ranges of live values (first fit); after it runs, every input whose last reader it was
/// (`lastUse`) frees its range. An output is placed before its inputs are freed, so an op never writes over
/// what it reads.
public struct ArenaPlan: Equatable, Sendable {
    /// The start of each graph value's range.
    public let offsets: [Int]
    /// The arena's size: the end of the highest range.
    public let size: Int
    /// Per value: whether another value's range overlaps its own (at another time). Only then can the part
    /// of its range an op does not write (a padded map's border) hold another value's data when it runs.
    public let sharesMemory: [Bool]

    /// `storage(v)`: the units value v takes, rounded up to a multiple of `alignment` so every range starts aligned.
    init(graph: ModelGraph, storage: (Int) -> Int, alignment: Int) {
        let sizes = graph.values.indices.map { (storage($0) + alignment - 1) / alignment * alignment }
        let lastUse = graph.lastUse
        var offsets = [Int](repeating: 0, count: sizes.count)
        var live: [(value: Int, range: Range<Int>)] = []
        var size = 0
        func place(_ v: Int) {
            var start = 0
            for item in live.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
                if item.range.lowerBound - start >= sizes[v] { break }
                start = max(start, item.range.upperBound)
            }
            offsets[v] = start
            live.append((v, start..<(start + sizes[v])))
            size = max(size, start + sizes[v])
        }
        place(0)
        for (index, op) in graph.ops.enumerated() {
            place(op.output)
            live.removeAll { lastUse[$0.value] == index }
        }
        let ranges = sizes.indices.map { offsets[$0]..<(offsets[$0] + sizes[$0]) }
        self.offsets = offsets
        self.size = size
        sharesMemory = ranges.indices.map { v in ranges.indices.contains { $0 != v && ranges[$0].overlaps(ranges[v]) } }
    }
}
