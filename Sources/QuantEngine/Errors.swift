/// One error type for the whole package: every failure names the file (or object) it concerns and what is
/// wrong, so the command-line tool can print it as one line and exit non-zero, and says which kind of
/// failure it is, so an app can act on it (ask for another file, show "not a SonoQuant model", ...).
public struct SonoQuantError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, in categories an app can switch on.
    public enum Kind: String, Equatable, Sendable, CaseIterable {
        /// The file or directory does not exist.
        case fileNotFound
        /// It exists but cannot be read (permissions, I/O error, a directory where a file belongs).
        case unreadable
        /// Not a model file at all (not safetensors), or a file of another kind (an int8 model where a
        /// float checkpoint belongs, an encoder-only or training-state file, another format version).
        case notAModel
        /// A model file whose contents are damaged, tampered or inconsistent: truncated data, bad offsets,
        /// wrong dtypes or shapes, missing tensors, NaN/Inf weights, scales the engine cannot use.
        case corruptModel
        /// A model of an architecture this build does not run.
        case unsupportedArchitecture
        /// A network input size the architecture or the machine's memory cannot take, none given for a
        /// file that records none, or another size than an int8 model was calibrated at.
        case badInputSize
        /// A frame that is not a decodable PNG or JPEG (empty, corrupt, truncated, over the size limits).
        case badImage
        /// An input tensor or frame buffer of the wrong shape, an empty batch, or non-finite values.
        case badInput
        /// A data-set, split or pixel-size file with malformed, duplicate or missing entries.
        case badData
        /// An output that cannot be written, or a directory another run is writing.
        case cannotWrite
        /// Anything else (training, benchmarking and command-line checks).
        case other
    }

    /// The file, tensor or argument the problem is about.
    public let subject: String
    /// What is wrong, in words a user can act on.
    public let problem: String
    public let kind: Kind

    public init(_ subject: String, _ problem: String, kind: Kind = .other) {
        self.subject = subject
        self.problem = problem
        self.kind = kind
    }

    public var description: String { "\(subject): \(problem)" }
}
