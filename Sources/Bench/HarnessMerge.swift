// One report from several harness outputs (`sonoquant bench merge A B --out C`). A full run that does not
// fit one machine or one stretch of time is trained as several harness runs, each into its own OUT; merging unites
// their rows as they were measured (nothing is trained or measured again) and records where each row came
// from. The inputs must describe the same experiment (split, frame size, epochs, batch, learning rate,
// observer, calibration frames), else the merge refuses: a table mixing them would compare unlike things.
import Foundation
import QuantEngine

/// One harness output a merged report was made from.
public struct HarnessSource: Codable, Equatable {
    public var directory: String
    public var created: String
    public var host: String
    public var command: String
    public var latencyMethod: String
    /// The runs whose rows the merged report took from this output ("D-all seed 0").
    public var runs: [String]

    public init(directory: String, created: String, host: String, command: String, latencyMethod: String, runs: [String]) {
        self.directory = directory; self.created = created; self.host = host; self.command = command
        self.latencyMethod = latencyMethod; self.runs = runs
    }
}

/// OUT/results.json of a harness run.
public func readHarnessResults(directory: String) throws -> HarnessResults {
    let path = directory + "/results.json"
    guard let data = FileManager.default.contents(atPath: path) else {
        throw SonoQuantError(path, FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file (not a harness output directory)")
    }
    do {
        return try JSONDecoder().decode(HarnessResults.self, from: data)
    } catch {
        throw SonoQuantError(path, "not a harness results.json (\(error))")
    }
}

/// "D-all seed 0": how rows and pending runs are named.
func runLabel(strategy: String, seed: UInt64) -> String { "\(strategy) seed \(seed)" }

/// Unites the rows of `inputs` (in order; a later input's row replaces an earlier one's for the same
/// strategy and seed). A run an input lists as pending stays pending unless some input measured it.
public func mergeHarnessResults(_ inputs: [(directory: String, results: HarnessResults)], command: String,
                                created: String) throws -> HarnessResults {
    guard let first = inputs.first else { throw SonoQuantError("--merge", "no harness output directories given") }
    let base = first.results
    for (directory, r) in inputs.dropFirst() {
        let settings: [(name: String, base: String, this: String)] = [
            ("split", URL(fileURLWithPath: base.split).lastPathComponent, URL(fileURLWithPath: r.split).lastPathComponent),
            ("train/test frames", "\(base.trainFrames)/\(base.testFrames)", "\(r.trainFrames)/\(r.testFrames)"),
            ("frame size", "\(base.width)x\(base.height)", "\(r.width)x\(r.height)"),
            ("epochs", String(base.epochs), String(r.epochs)),
            ("batch", String(base.batchSize), String(r.batchSize)),
            ("learning rate", String(format: "%g", base.learningRate), String(format: "%g", r.learningRate)),
            ("observer", base.observer, r.observer),
            ("calibration frames", String(base.calibrationImages), String(r.calibrationImages)),
        ]
        for s in settings where s.base != s.this {
            throw SonoQuantError(directory + "/results.json",
                                 "\(s.name) \(s.this) differs from \(s.base) in \(first.directory): not the same experiment, so not merged")
        }
    }

    var rows: [HarnessRow] = []
    var source: [String: Int] = [:]  // run label -> index of the input its row comes from
    for (index, input) in inputs.enumerated() {
        for row in input.results.rows {
            if let existing = rows.firstIndex(where: { $0.strategy == row.strategy && $0.seed == row.seed }) {
                rows[existing] = row
            } else {
                rows.append(row)
            }
            source[runLabel(strategy: row.strategy, seed: row.seed)] = index
        }
    }
    var pending: [String] = []
    for input in inputs {
        for entry in input.results.pending where !pending.contains(entry) {
            let label = String(entry.prefix { $0 != ":" })
            if source[label] == nil { pending.append(entry) }
        }
    }
    var strategies: [String] = []
    for name in inputs.flatMap(\.results.strategies) where !strategies.contains(name) { strategies.append(name) }
    let sources = inputs.enumerated().map { index, input in
        HarnessSource(directory: input.directory, created: input.results.created, host: input.results.host,
                      command: input.results.command, latencyMethod: input.results.latencyMethod,
                      runs: rows.map { runLabel(strategy: $0.strategy, seed: $0.seed) }.filter { source[$0] == index })
    }
    let hosts = Set(inputs.map(\.results.host)), methods = Set(inputs.map(\.results.latencyMethod))
    return HarnessResults(
        created: created, host: hosts.count == 1 ? base.host : "several (per source below)", command: command, data: base.data,
        split: base.split, width: base.width, height: base.height, epochs: base.epochs, batchSize: base.batchSize,
        learningRate: base.learningRate, seeds: Array(Set(inputs.flatMap(\.results.seeds))).sorted(), strategies: strategies,
        observer: base.observer, calibrationImages: base.calibrationImages,
        threads: Array(Set(inputs.flatMap(\.results.threads))).sorted(),
        latencyMethod: methods.count == 1 ? base.latencyMethod : "as each source measured it (below)",
        trainFrames: base.trainFrames, testFrames: base.testFrames, testFramesSharingFetus: base.testFramesSharingFetus,
        rows: rows, pending: pending, reference: inputs.map(\.results.reference).first { !$0.isEmpty } ?? [], sources: sources)
}

/// Reads each directory's results.json, merges them, copies the rows' frame PNGs into `outDirectory` (a row
/// whose PNG is missing keeps its numbers and loses the picture), and writes the merged report there.
@discardableResult
public func mergeHarnessOutputs(directories: [String], outDirectory: String, command: String) throws -> HarnessResults {
    let inputs = try directories.map { (directory: $0, results: try readHarnessResults(directory: $0)) }
    var merged = try mergeHarnessResults(inputs, command: command, created: ISO8601DateFormatter().string(from: Date()))
    try copyOverlays(of: &merged, inputs: directories, to: outDirectory)
    try writeHarnessResults(merged, to: outDirectory)
    return merged
}

/// Copies each merged row's frame PNGs from the input it came from into `outDirectory` (creating it); a PNG
/// that is missing is dropped from the row.
func copyOverlays(of merged: inout HarnessResults, inputs: [String], to outDirectory: String) throws {
    try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)
    let files = FileManager.default
    for (i, row) in merged.rows.enumerated() {
        let label = runLabel(strategy: row.strategy, seed: row.seed)
        let from = inputs[merged.sources!.firstIndex { $0.runs.contains(label) }!]
        merged.rows[i].overlays = try row.overlays.filter { relative in
            let source = from + "/" + relative, target = outDirectory + "/" + relative
            guard files.fileExists(atPath: source) else { return false }
            let sameFile = URL(fileURLWithPath: source).standardizedFileURL == URL(fileURLWithPath: target).standardizedFileURL
            if !sameFile {
                try files.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try writeFileAtomically(path: target, bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: source))))
            }
            return true
        }
    }
}
