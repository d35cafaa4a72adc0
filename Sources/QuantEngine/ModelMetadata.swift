import Foundation

// Every `sonoquant.*` entry SonoQuant writes into (or reads from) a safetensors header is one typed field of
// `ModelMetadata`: a reader of any model or run file finds here what each entry means and which files carry
// it, and a value that does not parse is refused when the file is opened, naming the file and the entry.
// The safetensors `__metadata__` is a JSON object of strings, so the type is Codable onto exactly that
// object: every field is written as a string under its `sonoquant.*` key.

/// The `sonoquant.*` metadata of a model, checkpoint, resume or logits file, typed.
public struct ModelMetadata: Codable, Equatable, Sendable {
    /// What a file is; absent in a PyTorch state dict.
    public enum Format: String, Codable, Sendable, CaseIterable {
        /// train's model.safetensors and epoch files.
        case floatCheckpoint = "float-checkpoint"
        /// calibrate's output.
        case int8Model = "int8-model"
        /// train's resume.safetensors.
        case trainResume = "train-resume"
    }

    /// The prefix of every key.
    public static let prefix = "sonoquant."

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case format = "sonoquant.format"
        case architecture = "sonoquant.architecture"
        case size = "sonoquant.size"
        case hcScale = "sonoquant.hc_scale"
        case hcScaleFit = "sonoquant.hc_scale_fit"
        case strategy = "sonoquant.strategy"
        case trainable = "sonoquant.trainable"
        case epoch = "sonoquant.epoch"
        case run = "sonoquant.run"
        case epochsDone = "sonoquant.epochs_done"
        case adamStep = "sonoquant.adam_step"
        case metrics = "sonoquant.metrics"
        case formatVersion = "sonoquant.format_version"
        case inputChannels = "sonoquant.input_channels"
        case activations = "sonoquant.activations"
        case weights = "sonoquant.weights"
        case requantization = "sonoquant.requantization"
        case sourceCheckpoint = "sonoquant.source_checkpoint"
        case calibration = "sonoquant.calibration"
        case observer = "sonoquant.observer"
        case percentile = "sonoquant.percentile"
        case input = "sonoquant.input"
        case preprocessing = "sonoquant.preprocessing"
        case model = "sonoquant.model"
        case precision = "sonoquant.precision"
    }

    // MARK: Every file the tools write

    public var format: Format?
    /// The network (a PyTorch file is recognised by its tensor names instead: `ModelGraph.architecture(of:)`).
    public var architecture: Architecture?
    /// The input size the model was trained or calibrated at.
    public var size: InputSize?

    // MARK: Float checkpoints and int8 models

    /// A factor for the head circumference in mm, fitted on the training split by `sonoquant hc-scale` (the
    /// median of reference / measured HC over its frames): corrects a model that measures heads consistently
    /// large or small. Absent = 1; calibrate carries it into the int8 model. A value outside `hcScaleRange`
    /// (a 25% error in every measurement) is refused as corrupt: a fit never gives it.
    public var hcScale: Double?
    /// JSON: how the scale was fitted (frames, split, statistic).
    public var hcScaleFit: String?
    /// The fine-tuning preset ("D-all"), or "unknown".
    public var strategy: String?
    /// The trainable parameter groups ("D0,D1,D2,D3,D4,H").
    public var trainable: String?
    /// The epoch (1-based) a checkpoint was saved after.
    public var epoch: Int?

    // MARK: Resume files (train --resume)

    /// The run's identity (strategy, size, batch, lr, seed, data...): a resume with other settings is refused.
    public var run: String?
    /// Epochs finished and recorded in the file.
    public var epochsDone: Int?
    /// Adam's step count.
    public var adamStep: Int?
    /// metrics.csv rows of the finished epochs.
    public var metrics: String?

    // MARK: int8 models (calibrate)

    /// The int8 model format version (the loader accepts `Int8Model.formatVersion`).
    public var formatVersion: String?
    /// 1: int8 models take the gray frame.
    public var inputChannels: Int?
    /// JSON: every activation's scale and zero point by graph value (must match the tensors).
    public var activations: String?
    /// Prose: how the weights are quantized.
    public var weights: String?
    /// Prose: how the requantization works.
    public var requantization: String?
    /// The checkpoint it was calibrated from.
    public var sourceCheckpoint: String?
    /// JSON (`CalibrationRecord`): calibration frames, split, selection, histogram bins.
    public var calibration: String?
    /// The activation-range observer (`Observer`'s raw value).
    public var observer: String?
    /// The percentile of the percentile observer.
    public var percentile: Double?
    /// JSON: the input the int8 model takes (size, channels, dtype, layout, scale).
    public var input: String?
    /// Prose: how a frame becomes that input.
    public var preprocessing: String?

    // MARK: forward's logits files

    /// The model file that produced the logits.
    public var model: String?
    public var precision: Precision?

    public init() {}

    /// The HC factors a file may record.
    public static let hcScaleRange: ClosedRange<Double> = 0.8...1.25

    /// `hcScale` as it is stored: six decimals, so that a factor read back and written again is the same text.
    public static func storedHCScale(_ scale: Double) -> String { String(format: "%.6f", scale) }

    // MARK: Codable: every field a string

    /// A value that does not parse as its field's type; `init(entries:source:)` adds the file's name.
    struct ValueError: Error {
        let problem: String
        let kind: SonoQuantError.Kind
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func parsed<T>(_ key: CodingKeys, expected: String, kind: SonoQuantError.Kind = .corruptModel,
                       _ parse: (String) -> T?) throws -> T? {
            guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
            guard let value = parse(text) else { throw ValueError(problem: "\(key.rawValue) is \"\(text)\": \(expected)", kind: kind) }
            return value
        }
        func text(_ key: CodingKeys) throws -> String? { try c.decodeIfPresent(String.self, forKey: key) }
        func count(_ key: CodingKeys) throws -> Int? { try parsed(key, expected: "expected a count") { Int($0).flatMap { $0 >= 0 ? $0 : nil } } }

        format = try parsed(.format, expected: "not a float checkpoint, int8 model or resume file (\(Format.allCases.map(\.rawValue).joined(separator: ", ")))", kind: .notAModel, Format.init(rawValue:))
        architecture = try parsed(.architecture, expected: "unknown architecture (this build knows \(ModelGraph.architectureNames.joined(separator: ", ")))",
                                  kind: .unsupportedArchitecture, Architecture.init(rawValue:))
        size = try parsed(.size, expected: "expected WxH such as 192x128", InputSize.init)
        hcScale = try parsed(.hcScale, expected: "expected a factor in [\(Self.hcScaleRange.lowerBound), \(Self.hcScaleRange.upperBound)]") {
            Double($0).flatMap { Self.hcScaleRange.contains($0) ? $0 : nil }
        }
        hcScaleFit = try text(.hcScaleFit)
        strategy = try text(.strategy)
        trainable = try text(.trainable)
        epoch = try count(.epoch)
        run = try text(.run)
        epochsDone = try count(.epochsDone)
        adamStep = try count(.adamStep)
        metrics = try text(.metrics)
        formatVersion = try text(.formatVersion)
        inputChannels = try count(.inputChannels)
        activations = try text(.activations)
        weights = try text(.weights)
        requantization = try text(.requantization)
        sourceCheckpoint = try text(.sourceCheckpoint)
        calibration = try text(.calibration)
        observer = try text(.observer)
        percentile = try parsed(.percentile, expected: "expected a percentile in (0, 100]") { Double($0).flatMap { $0 > 0 && $0 <= 100 ? $0 : nil } }
        input = try text(.input)
        preprocessing = try text(.preprocessing)
        model = try text(.model)
        precision = try parsed(.precision, expected: "expected float32 or int8", Precision.init(rawValue:))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(format?.rawValue, forKey: .format)
        try c.encodeIfPresent(architecture?.rawValue, forKey: .architecture)
        try c.encodeIfPresent(size?.description, forKey: .size)
        try c.encodeIfPresent(hcScale.map(Self.storedHCScale), forKey: .hcScale)
        try c.encodeIfPresent(hcScaleFit, forKey: .hcScaleFit)
        try c.encodeIfPresent(strategy, forKey: .strategy)
        try c.encodeIfPresent(trainable, forKey: .trainable)
        try c.encodeIfPresent(epoch.map(String.init), forKey: .epoch)
        try c.encodeIfPresent(run, forKey: .run)
        try c.encodeIfPresent(epochsDone.map(String.init), forKey: .epochsDone)
        try c.encodeIfPresent(adamStep.map(String.init), forKey: .adamStep)
        try c.encodeIfPresent(metrics, forKey: .metrics)
        try c.encodeIfPresent(formatVersion, forKey: .formatVersion)
        try c.encodeIfPresent(inputChannels.map(String.init), forKey: .inputChannels)
        try c.encodeIfPresent(activations, forKey: .activations)
        try c.encodeIfPresent(weights, forKey: .weights)
        try c.encodeIfPresent(requantization, forKey: .requantization)
        try c.encodeIfPresent(sourceCheckpoint, forKey: .sourceCheckpoint)
        try c.encodeIfPresent(calibration, forKey: .calibration)
        try c.encodeIfPresent(observer, forKey: .observer)
        try c.encodeIfPresent(percentile.map { String($0) }, forKey: .percentile)
        try c.encodeIfPresent(input, forKey: .input)
        try c.encodeIfPresent(preprocessing, forKey: .preprocessing)
        try c.encodeIfPresent(model, forKey: .model)
        try c.encodeIfPresent(precision?.rawValue, forKey: .precision)
    }

    // MARK: The header's string map

    /// Decodes the `sonoquant.*` entries of a header's metadata; other entries (a PyTorch export's, or keys
    /// of a later version) are ignored. A value that does not parse is an error naming `source` and the entry.
    public init(entries: [String: String], source: String) throws {
        do {
            let data = try JSONSerialization.data(withJSONObject: entries.filter { $0.key.hasPrefix(Self.prefix) })
            self = try JSONDecoder().decode(Self.self, from: data)
        } catch let error as ValueError {
            throw SonoQuantError(source, error.problem, kind: error.kind)
        }
    }

    /// The entries to write into a header's metadata.
    public var entries: [String: String] {
        // Encoding strings into a JSON object cannot fail.
        let data = try! JSONEncoder().encode(self)
        return try! JSONSerialization.jsonObject(with: data) as! [String: String]
    }

    /// Checks what the writer could get wrong before a file is written (the loader checks the same when it
    /// decodes): the HC factor's range. `subject` is the file about to be written.
    public func checkWritable(subject: String) throws {
        if let hcScale, !Self.hcScaleRange.contains(hcScale) {
            throw SonoQuantError(subject, "\(CodingKeys.hcScale.rawValue) would be \(hcScale): expected a factor in [\(Self.hcScaleRange.lowerBound), \(Self.hcScaleRange.upperBound)]", kind: .corruptModel)
        }
    }
}
