import Foundation

/// Element types a safetensors file may hold (the subset SonoQuant reads and writes).
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// A read-only safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the raw little-endian data. See https://github.com/huggingface/safetensors.
///
/// Opening validates everything before any tensor is used: header length, JSON, dtype names, shapes,
/// byte ranges (inside the data section, matching dtype x shape, not overlapping). Every error names the file.
public struct SafeTensorsFile: Sendable {
    public struct Entry: Equatable, Sendable {
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range relative to the start of the data section.
        public let range: Range<Int>
    }

    /// Where the bytes came from (a path, or a label for in-memory data); used in error messages.
    public let source: String
    /// The header's `__metadata__` as stored: SonoQuant's entries (read them typed, `modelMetadata`) and any other.
    public let metadata: [String: String]
    /// The `sonoquant.*` entries, typed and checked when the file is opened.
    public let modelMetadata: ModelMetadata
    public let entries: [String: Entry]
    private let bytes: [UInt8]
    private let dataStart: Int

    /// Largest header we accept: real headers are kilobytes; this guards against a hostile length field.
    static let maximumHeaderBytes = 100 << 20

    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SonoQuantError(path, "file not found", kind: .fileNotFound)
        }
        guard !isDirectory.boolValue else { throw SonoQuantError(path, "is a directory, not a model file", kind: .unreadable) }
        try self.init(bytes: try Self.readFile(path), source: path)
    }

    /// The file's bytes, read straight into the array: going through `Data` would hold the file twice
    /// at once (124 MB extra at load for the baseline U-Net's float checkpoint).
    static func readFile(_ path: String) throws -> [UInt8] {
        guard let stream = fopen(path, "rb") else { throw SonoQuantError(path, "cannot read file", kind: .unreadable) }
        defer { fclose(stream) }
        guard fseek(stream, 0, SEEK_END) == 0 else { throw SonoQuantError(path, "cannot read file", kind: .unreadable) }
        let size = ftell(stream)
        guard size >= 0, fseek(stream, 0, SEEK_SET) == 0 else { throw SonoQuantError(path, "cannot read file", kind: .unreadable) }
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = size > 0 ? fread(buffer.baseAddress!, 1, size, stream) : 0
        }
        guard bytes.count == size else { throw SonoQuantError(path, "cannot read file (read \(bytes.count) of \(size) bytes)", kind: .unreadable) }
        return bytes
    }

    public init(bytes: [UInt8], source: String) throws {
        self.source = source
        self.bytes = bytes
        guard bytes.count >= 8 else {
            throw SonoQuantError(source, "not a safetensors file: \(bytes.count) bytes, shorter than the 8-byte header length", kind: .notAModel)
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(Self.maximumHeaderBytes), Int(headerLength) <= bytes.count - 8 else {
            throw SonoQuantError(source, "not a safetensors file or truncated: header length \(headerLength) but file has \(bytes.count) bytes", kind: .notAModel)
        }
        dataStart = 8 + Int(headerLength)
        let headerBytes = Data(bytes[8..<dataStart])
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw SonoQuantError(source, "safetensors header is not valid JSON", kind: .notAModel)
        }
        guard let header = json as? [String: Any] else {
            throw SonoQuantError(source, "safetensors header is not a JSON object", kind: .notAModel)
        }
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        let dataLength = bytes.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let dict = value as? [String: Any] else {
                    throw SonoQuantError(source, "__metadata__ is not an object", kind: .corruptModel)
                }
                for (key, item) in dict {
                    guard let text = item as? String else {
                        throw SonoQuantError(source, "__metadata__[\(key)] is not a string", kind: .corruptModel)
                    }
                    metadata[key] = text
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw SonoQuantError(source, "tensor \(name): header entry is not an object", kind: .corruptModel)
            }
            guard let dtypeName = info["dtype"] as? String, let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw SonoQuantError(source, "tensor \(name): unsupported or missing dtype \(String(describing: info["dtype"]))", kind: .corruptModel)
            }
            guard let shapeValues = info["shape"] as? [Any] else {
                throw SonoQuantError(source, "tensor \(name): missing shape", kind: .corruptModel)
            }
            var shape: [Int] = []
            var elementCount = 1
            for item in shapeValues {
                guard let number = item as? NSNumber, let dim = Int(exactly: number.doubleValue), dim >= 0, dim < (1 << 31) else {
                    throw SonoQuantError(source, "tensor \(name): shape \(shapeValues) has a bad dimension", kind: .corruptModel)
                }
                shape.append(dim)
                let (product, overflow) = elementCount.multipliedReportingOverflow(by: dim)
                guard !overflow, product < (1 << 40) else {
                    throw SonoQuantError(source, "tensor \(name): shape \(shape) is too large", kind: .corruptModel)
                }
                elementCount = product
            }
            guard let offsets = info["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = (offsets[0] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }),
                  let end = (offsets[1] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }) else {
                throw SonoQuantError(source, "tensor \(name): missing or malformed data_offsets", kind: .corruptModel)
            }
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw SonoQuantError(source, "tensor \(name): data_offsets [\(begin), \(end)] outside the \(dataLength)-byte data section (truncated file?)", kind: .corruptModel)
            }
            guard end - begin == elementCount * dtype.byteSize else {
                throw SonoQuantError(source, "tensor \(name): \(end - begin) bytes but \(dtype.rawValue) \(shape) needs \(elementCount * dtype.byteSize)", kind: .corruptModel)
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: begin..<end)
        }
        // Tensors must not overlap: a tampered file could alias one tensor's bytes as another's.
        let sorted = entries.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for i in sorted.indices.dropFirst() where sorted[i].value.range.lowerBound < sorted[i - 1].value.range.upperBound {
            throw SonoQuantError(source, "tensors \(sorted[i - 1].key) and \(sorted[i].key) overlap", kind: .corruptModel)
        }
        self.metadata = metadata
        self.modelMetadata = try ModelMetadata(entries: metadata, source: source)
        self.entries = entries
    }

    /// The metadata entries that are not SonoQuant's (a PyTorch export's), which a tool rewriting the file keeps.
    public var otherMetadata: [String: String] { metadata.filter { !$0.key.hasPrefix(ModelMetadata.prefix) } }

    public var names: [String] { entries.keys.sorted() }

    /// An entry's bytes as stored (little-endian, its dtype).
    func rawBytes(of entry: Entry) -> [UInt8] {
        Array(bytes[(dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound)])
    }

    public func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else {
            throw SonoQuantError(source, "missing tensor \(name)", kind: .corruptModel)
        }
        return entry
    }

    /// A floating-point tensor (F32, F16, BF16 or F64) converted to Float.
    public func tensor(_ name: String) throws -> Tensor {
        let entry = try entry(name)
        let count = entry.shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        let base = dataStart + entry.range.lowerBound
        bytes.withUnsafeBytes { raw in
            switch entry.dtype {
            case .f32:
                for i in 0..<count { values[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self).littleEndian) }
            case .f16:
                for i in 0..<count { values[i] = floatFromHalfBits(raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self).littleEndian) }
            case .bf16:
                for i in 0..<count { values[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self).littleEndian) << 16) }
            case .f64:
                for i in 0..<count { values[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: base + 8 * i, as: UInt64.self).littleEndian)) }
            default:
                break
            }
        }
        switch entry.dtype {
        case .f32, .f16, .bf16, .f64: return Tensor(shape: entry.shape, data: values)
        default: throw SonoQuantError(source, "tensor \(name) is \(entry.dtype.rawValue), expected a float dtype (F32, F16, BF16, F64)", kind: .corruptModel)
        }
    }

    /// A floating-point tensor whose shape must be exactly `shape`.
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        let entry = try entry(name)
        guard entry.shape == shape else {
            throw SonoQuantError(source, "tensor \(name) has shape \(entry.shape), expected \(shape)", kind: .corruptModel)
        }
        return try tensor(name)
    }

    public func int8(_ name: String) throws -> [Int8] {
        let entry = try entry(name)
        guard entry.dtype == .i8 else { throw SonoQuantError(source, "tensor \(name) is \(entry.dtype.rawValue), expected I8", kind: .corruptModel) }
        // One bulk copy of the bytes (same bit patterns); a per-element map was a quarter of an int8 model's load.
        let start = dataStart + entry.range.lowerBound
        return [Int8](unsafeUninitializedCapacity: entry.range.count) { buffer, count in
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + entry.range.count)]))
            }
            count = entry.range.count
        }
    }

    public func uint8(_ name: String) throws -> [UInt8] {
        let entry = try entry(name)
        guard entry.dtype == .u8 else { throw SonoQuantError(source, "tensor \(name) is \(entry.dtype.rawValue), expected U8", kind: .corruptModel) }
        return Array(bytes[(dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound)])
    }

    public func int32(_ name: String) throws -> [Int32] {
        let entry = try entry(name)
        guard entry.dtype == .i32 else { throw SonoQuantError(source, "tensor \(name) is \(entry.dtype.rawValue), expected I32", kind: .corruptModel) }
        let count = entry.shape.reduce(1, *)
        let base = dataStart + entry.range.lowerBound
        return bytes.withUnsafeBytes { raw in
            (0..<count).map { Int32(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * $0, as: UInt32.self).littleEndian) }
        }
    }
}

/// IEEE 754 half -> single, exact for every half value (normals, subnormals, infinities, NaN).
@inline(__always)
public func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x03FF)
    if exponent == 0 {
        // Zero or subnormal: value = mantissa * 2^-24.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
}

/// Single -> half with round-to-nearest-even (used to write F16 checkpoints).
public func halfBitsFromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    if value.isNaN { return sign | 0x7E00 }
    let magnitude = abs(value)
    if magnitude >= 65520 { return sign | 0x7C00 }
    if magnitude < Float(sign: .plus, exponent: -14, significand: 1) {
        // Subnormal half: round magnitude / 2^-24 to the nearest integer, ties to even.
        let scaled = (magnitude * Float(sign: .plus, exponent: 24, significand: 1)).rounded(.toNearestOrEven)
        return sign | UInt16(scaled)
    }
    let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
    var mantissa = bits & 0x007F_FFFF
    var halfExponent = UInt32(exponent)
    // Round the 23-bit mantissa to 10 bits, ties to even.
    let remainder = mantissa & 0x1FFF
    mantissa >>= 13
    if remainder > 0x1000 || (remainder == 0x1000 && (mantissa & 1) == 1) {
        mantissa += 1
        if mantissa == 0x400 { mantissa = 0; halfExponent += 1 }
    }
    return sign | UInt16(halfExponent << 10) | UInt16(mantissa)
}

/// Builds a safetensors file in memory and writes it atomically (temporary file + rename),
/// so an interrupted write never leaves a half-written checkpoint under the final name.
public struct SafeTensorsWriter: Sendable {
    private var tensors: [(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8])] = []
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    /// A file carrying SonoQuant's typed metadata, and `other` entries (not `sonoquant.*`) kept from a source file.
    public init(metadata: ModelMetadata, other: [String: String] = [:]) {
        self.metadata = other.filter { !$0.key.hasPrefix(ModelMetadata.prefix) }.merging(metadata.entries) { _, ours in ours }
    }

    public mutating func add(_ name: String, _ tensor: Tensor) {
        add(name, floats: tensor.data, shape: tensor.shape)
    }

    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        tensors.append((name, .f32, shape, littleEndianBytes(floats) { $0.bitPattern }))
    }

    public mutating func add(_ name: String, halves floats: [Float], shape: [Int]) {
        var bytes = [UInt8](); bytes.reserveCapacity(floats.count * 2)
        for v in floats { withUnsafeBytes(of: halfBitsFromFloat(v).littleEndian) { bytes.append(contentsOf: $0) } }
        tensors.append((name, .f16, shape, bytes))
    }

    public mutating func add(_ name: String, int8 values: [Int8], shape: [Int]) {
        tensors.append((name, .i8, shape, values.map { UInt8(bitPattern: $0) }))
    }

    public mutating func add(_ name: String, uint8 values: [UInt8], shape: [Int]) {
        tensors.append((name, .u8, shape, values))
    }

    public mutating func add(_ name: String, int32 values: [Int32], shape: [Int]) {
        tensors.append((name, .i32, shape, littleEndianBytes(values) { $0 }))
    }

    /// The values' bytes in little-endian order (safetensors' byte order): on a little-endian CPU (x86-64,
    /// arm64) their memory as it is, in one copy (a checkpoint with Adam moments is tens of millions of values).
    private func littleEndianBytes<Value, Bits: FixedWidthInteger>(_ values: [Value], _ bits: (Value) -> Bits) -> [UInt8] {
        #if _endian(little)
        return values.withUnsafeBytes { Array($0) }
        #else
        var bytes = [UInt8](); bytes.reserveCapacity(values.count * MemoryLayout<Bits>.size)
        for v in values { withUnsafeBytes(of: bits(v).littleEndian) { bytes.append(contentsOf: $0) } }
        return bytes
        #endif
    }

    /// Adds every tensor of `file` as it is stored (same dtype, shape and bytes): a copy of a model file
    /// with other metadata.
    public mutating func addTensors(of file: SafeTensorsFile) {
        for (name, entry) in file.entries.sorted(by: { $0.key < $1.key }) {
            tensors.append((name, entry.dtype, entry.shape, file.rawBytes(of: entry)))
        }
    }

    /// The complete file contents. Tensors are laid out in name order; the header is padded with spaces
    /// to a multiple of 8 bytes so that data is aligned, as the reference implementation does.
    public func serialized() throws -> [UInt8] {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let ordered = tensors.sorted { $0.name < $1.name }
        for t in ordered {
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
            offset += t.bytes.count
        }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8](); out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for t in ordered { out.append(contentsOf: t.bytes) }
        return out
    }

    public func write(to path: String) throws {
        try writeFileAtomically(path: path, bytes: try serialized())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so readers
/// see either the old file or the complete new one, never a partial write.
public func writeFileAtomically(path: String, bytes: [UInt8]) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw SonoQuantError(path, "is a directory; give a file name to write", kind: .cannotWrite)
    }
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent()
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
        try writeFile(path: temporary.path, bytes: bytes, reportedAs: path)
        // POSIX rename within one directory is atomic: the old file or the new one, never a mix.
        guard rename(temporary.path, path) == 0 else {
            throw SonoQuantError(path, "cannot rename \(temporary.path) into place: \(String(cString: strerror(errno)))", kind: .cannotWrite)
        }
    } catch let error as SonoQuantError {
        try? FileManager.default.removeItem(at: temporary)
        throw error
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw SonoQuantError(path, "cannot write file: \(error.localizedDescription)", kind: .cannotWrite)
    }
}

/// Creates (or truncates) `path` and writes `bytes` from the array's own memory (no intermediate copy); errors
/// name `reportedAs`, the file the user asked for (`path` is its temporary).
private func writeFile(path: String, bytes: [UInt8], reportedAs target: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
    guard descriptor >= 0 else { throw SonoQuantError(target, "cannot create file: \(String(cString: strerror(errno)))", kind: .cannotWrite) }
    var failure: Int32 = 0
    bytes.withUnsafeBytes { buffer in
        var written = 0
        while written < buffer.count {
            let result = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            if result < 0 && errno == EINTR { continue }
            if result <= 0 {  // 0: nothing written and no error, which a regular file should never give
                failure = result < 0 ? errno : EIO
                return
            }
            written += result
        }
    }
    if close(descriptor) != 0 && failure == 0 { failure = errno }
    if failure != 0 { throw SonoQuantError(target, "cannot write file: \(String(cString: strerror(failure)))", kind: .cannotWrite) }
}

public func writeFileAtomically(path: String, text: String) throws {
    try writeFileAtomically(path: path, bytes: Array(text.utf8))
}
