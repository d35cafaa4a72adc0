// Structure-aware libFuzzer harness for the int8 model loader (`Int8Model(file:)`) and the engine built on
// what it accepts. A byte fuzzer cannot get this far on its own: a valid int8 model is 6.8 MB of tensors that
// all have to be present before a scale is even read. So the harness starts from a valid model (the fixture
// D-all checkpoint quantized with fixed ranges) and reads the fuzzer's bytes as a list of edits to it:
// special values written into scales, zero points, biases and weights, edited metadata, header entries with
// another dtype, shape or offsets, tensors removed or added. The contract under test: every edited file is
// either refused with a SonoQuantError or loads and runs a frame without trapping.
import Foundation
import QuantEngine

/// The valid model, serialized once: its header (JSON object) and data blob.
private let base: (header: [String: Any], data: [UInt8]) = {
    let weights = try! ModelWeights(loading: "fixtures/pytorch_D-all_192x128.safetensors", graph: .mobileNetV2UNet())
    let model = Int8Model(quantizing: weights, ranges: [ClosedRange<Float>](repeating: -4...4, count: weights.graph.values.count), info: [:])
    let path = "/dev/shm/sonoquant-fuzz-int8-base-\(getpid()).safetensors"
    try! model.save(to: path)
    let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
    try? FileManager.default.removeItem(atPath: path)
    var length = 0
    for i in 0..<8 { length |= Int(bytes[i]) << (8 * i) }
    let header = try! JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
    return (header, Array(bytes[(8 + length)...]))
}()
private let tensorNames = base.header.keys.filter { $0 != "__metadata__" }.sorted()
private let specialFloats: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, 1e-30, 1e30, -1, .greatestFiniteMagnitude, 1 / 255]
private let specialInts: [Int32] = [.min, .max, -129, 128, 0, -128, 127, 1 << 30, -(1 << 30)]
private let dtypes = ["F32", "F16", "I8", "I32", "U8", "I64", "F64", "BOOL", "X"]

/// Reads the fuzzer's bytes one at a time (0 once they run out).
private struct Cursor {
    let bytes: [UInt8]
    var at = 0
    mutating func next() -> Int { defer { at += 1 }; return at < bytes.count ? Int(bytes[at]) : 0 }
    mutating func int32() -> Int32 { Int32(bitPattern: UInt32(next()) | UInt32(next()) << 8 | UInt32(next()) << 16 | UInt32(next()) << 24) }
    var done: Bool { at >= bytes.count }
}

private func entry(_ header: [String: Any], _ name: String) -> (dtype: String, shape: [Int], offsets: [Int])? {
    guard let e = header[name] as? [String: Any], let d = e["dtype"] as? String, let s = e["shape"] as? [Int],
          let o = e["data_offsets"] as? [Int], o.count == 2 else { return nil }
    return (d, s, o)
}

/// JSON text of one header value, as the valid file writes it.
private func jsonText(_ value: Any) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
}
/// Every header entry of the valid file as JSON text, made once: a run re-serializes only what it edited.
private let baseEntryText: [String: String] = Dictionary(uniqueKeysWithValues: base.header.map { ($0.key, jsonText($0.key) + ":" + jsonText($0.value)) })
private let baseEntryNames = baseEntryText.keys.sorted()
/// Room for the header: the valid one plus edits. The header is padded with spaces to this length (JSON
/// allows trailing whitespace), so the data blob always starts at the same offset and a run can edit it in
/// place instead of copying 6.8 MB.
private let headerRoom = (baseEntryText.reduce(0) { $0 + $1.value.utf8.count + 1 } + 65536 + 7) / 8 * 8
/// The file a run hands to the loader: header length, padded header, data. Shared across runs; a run's data
/// edits are undone afterwards (`restore`).
nonisolated(unsafe) private var file: [UInt8] = {
    var bytes = [UInt8](repeating: 0x20, count: 8 + headerRoom)
    withUnsafeBytes(of: UInt64(headerRoom).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
    return bytes + base.data
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInt8Model(_ pointer: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var cursor = Cursor(bytes: [UInt8](UnsafeBufferPointer(start: pointer, count: size)))
    var edited: [String: Any?] = [:]   // header entries changed by this run (nil: removed)
    var saved: [(at: Int, bytes: [UInt8])] = []   // original data bytes under this run's data edits
    let dataStart = 8 + headerRoom
    func writeData(_ at: Int, _ newBytes: [UInt8]) {
        saved.append((dataStart + at, Array(file[(dataStart + at)..<(dataStart + at + newBytes.count)])))
        file.replaceSubrange((dataStart + at)..<(dataStart + at + newBytes.count), with: newBytes)
    }
    func current(_ name: String) -> Any? { edited.keys.contains(name) ? edited[name]! : base.header[name] }
    for _ in 0..<8 where !cursor.done {
        let name = tensorNames[cursor.next() % tensorNames.count]
        // Data edits go where the valid file keeps the tensor (an earlier edit may have moved its header entry).
        guard let e = entry(base.header, name) else { continue }
        let elements = max(1, e.shape.reduce(1, *))
        switch cursor.next() % 7 {
        case 0 where e.dtype == "F32":  // a special or raw float in a scale tensor
            let i = (cursor.next() | cursor.next() << 8) % elements
            let raw = cursor.int32()
            let value = raw % 3 == 0 ? Float(bitPattern: UInt32(bitPattern: raw)) : specialFloats[Int(UInt32(bitPattern: raw) % UInt32(specialFloats.count))]
            writeData(e.offsets[0] + 4 * i, withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init))
        case 1 where e.dtype == "I32":  // zero points, biases
            let i = (cursor.next() | cursor.next() << 8) % elements
            let value = specialInts[cursor.next() % specialInts.count]
            writeData(e.offsets[0] + 4 * i, withUnsafeBytes(of: value.littleEndian, Array.init))
        case 2 where e.dtype == "I8":  // a weight, often -128
            let i = (cursor.next() | cursor.next() << 8 | cursor.next() << 16) % elements
            writeData(e.offsets[0] + i, [cursor.next() % 2 == 0 ? 0x80 : UInt8(cursor.next())])
        case 3:  // metadata: a value cut, extended or replaced
            var meta = current("__metadata__") as? [String: String] ?? [:]
            let keys = meta.keys.sorted()
            guard !keys.isEmpty else { break }
            let key = keys[cursor.next() % keys.count], value = meta[key]!
            switch cursor.next() % 4 {
            case 0: meta[key] = String(value.prefix(cursor.next() % (value.count + 1)))
            case 1: meta[key] = value + String(UnicodeScalar(UInt8(cursor.next() % 128)))
            case 2: meta[key] = meta[keys[cursor.next() % keys.count]]
            default: meta[key] = nil
            }
            edited["__metadata__"] = meta
        case 4:  // header entry: another dtype, shape or offsets
            guard var entryValue = current(name) as? [String: Any] else { break }
            switch cursor.next() % 3 {
            case 0: entryValue["dtype"] = dtypes[cursor.next() % dtypes.count]
            case 1:
                var shape = e.shape
                if !shape.isEmpty { shape[cursor.next() % shape.count] = [0, 1, shape[0] + 1, 1 << 40, -1][cursor.next() % 5] }
                entryValue["shape"] = shape
            default:
                let shift = cursor.next() - 128
                entryValue["data_offsets"] = [e.offsets[0] + shift, e.offsets[1] + (cursor.next() % 2 == 0 ? shift : 0)]
            }
            edited[name] = entryValue
        case 5: edited[name] = .some(nil)  // a missing tensor
        default:  // an extra tensor
            edited["extra.\(cursor.next())"] = ["dtype": "I8", "shape": [1], "data_offsets": [0, 1]] as [String: Any]
        }
    }
    // The header: the valid file's entries as text, edited ones re-serialized, padded to `headerRoom`.
    var json = "{"
    let added = edited.keys.filter { baseEntryText[$0] == nil }
    for name in added.isEmpty ? baseEntryNames : (baseEntryNames + added).sorted() {
        let text: String
        if let change = edited[name] {
            guard let value = change else { continue }
            text = jsonText(name) + ":" + jsonText(value)
        } else {
            text = baseEntryText[name]!
        }
        if json.utf8.count > 1 { json += "," }   // utf8.count is O(1) on native strings; count is not
        json += text
    }
    json += "}"
    let jsonBytes = Array(json.utf8)
    guard jsonBytes.count <= headerRoom else { return 0 }
    file.replaceSubrange(8..<(8 + jsonBytes.count), with: jsonBytes)
    defer {
        // Undo: data edits in reverse order, header back to spaces (the next run writes its own).
        for edit in saved.reversed() { file.replaceSubrange(edit.at..<(edit.at + edit.bytes.count), with: edit.bytes) }
        file.replaceSubrange(8..<(8 + jsonBytes.count), with: repeatElement(0x20, count: jsonBytes.count))
    }
    runModel()
    return 0
}

/// Loads the current `file`; if accepted, it must run a frame without trapping. A separate function so the
/// loaded model (which shares `file`'s storage) is released before the caller undoes its edits in place.
@inline(never)
private func runModel() {
    guard let loaded = try? SafeTensorsFile(bytes: file, source: "fuzz-int8"), let model = try? Int8Model(file: loaded) else { return }
    let frame = [UInt8](repeating: 128, count: 32 * 32)
    _ = try? Int8UNet(model: model).quantizedLogits(frame: frame, width: 32, height: 32, threads: 1)
}
