// The strategy x precision report: per model file, accuracy on the test split (HC18 `evaluate`), file size,
// trainable parameters, latency at each thread count (interleaved across models) and peak memory.
// Written as REPORT.md (a markdown table), report.json and plot.svg (Dice vs latency and vs file size).
import Foundation
import HC18
import QuantEngine
import Train

/// One model to benchmark: a display name ("D-all int8") and its file.
public struct BenchModelSpec: Equatable {
    public var name: String
    public var path: String

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// Parses `NAME=PATH` (the name may contain spaces; the first `=` splits).
    public init(parsing text: String) throws {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex, text.index(after: equals) != text.endIndex else {
            throw SonoQuantError("--model \(text)", "expected NAME=PATH, e.g. D-all-int8=runs/dall/model.int8.safetensors")
        }
        self.init(name: String(text[..<equals]), path: String(text[text.index(after: equals)...]))
    }
}

/// Median latency at one thread count.
public struct BenchLatency: Codable, Equatable {
    public var threads: Int
    public var runs: Int
    public var medianMS: Double
    public var p10MS: Double
    public var p90MS: Double
    /// Process CPU time (all threads) per call, averaged over the timed calls: hardly affected by other
    /// processes sharing the cores, unlike wall time.
    public var cpuMSPerRun: Double

    public init(threads: Int, runs: Int, medianMS: Double, p10MS: Double, p90MS: Double, cpuMSPerRun: Double) {
        self.threads = threads
        self.runs = runs
        self.medianMS = medianMS
        self.p10MS = p10MS
        self.p90MS = p90MS
        self.cpuMSPerRun = cpuMSPerRun
    }
}

/// One row of the report.
public struct BenchRow: Codable, Equatable {
    public var name: String
    public var path: String
    public var precision: Precision
    /// Fine-tuning strategy, from the file's metadata (`sonoquant.strategy`) or the model's name.
    public var strategy: String?
    /// Trainable groups (E, D0..D4, H) and their parameter count, when the strategy is known.
    public var trainableGroups: String?
    public var trainableParameters: Int?
    public var fileBytes: Int
    public var images: Int
    public var dice: Double
    public var diceStd: Double
    public var iou: Double
    public var pixelAccuracy: Double
    /// Mean |HC error| in mm (frames with no head found count with their whole reference HC).
    public var hcMAEmm: Double
    /// Median, 90th and 95th percentile of |HC error| in mm (nil in reports written before they were kept).
    public var hcMedianMM: Double?
    public var hcP90MM: Double?
    public var hcP95MM: Double?
    public var noHeadFound: Int
    /// The network input size this model ran at (its own recorded size unless `--size` was given).
    public var width: Int?
    public var height: Int?
    public var latency: [BenchLatency]
    /// Peak resident memory (VmHWM) of a separate process that loads this model and runs one frame.
    public var peakRSSBytes: Int?

    public init(name: String, path: String, precision: Precision, strategy: String?, trainableGroups: String?, trainableParameters: Int?, fileBytes: Int, images: Int, dice: Double, diceStd: Double, iou: Double, pixelAccuracy: Double, hcMAEmm: Double, hcMedianMM: Double? = nil, hcP90MM: Double? = nil, hcP95MM: Double? = nil, noHeadFound: Int, width: Int? = nil, height: Int? = nil, latency: [BenchLatency], peakRSSBytes: Int?) {
        self.name = name
        self.path = path
        self.precision = precision
        self.strategy = strategy
        self.trainableGroups = trainableGroups
        self.trainableParameters = trainableParameters
        self.fileBytes = fileBytes
        self.images = images
        self.dice = dice
        self.diceStd = diceStd
        self.iou = iou
        self.pixelAccuracy = pixelAccuracy
        self.hcMAEmm = hcMAEmm
        self.hcMedianMM = hcMedianMM
        self.hcP90MM = hcP90MM
        self.hcP95MM = hcP95MM
        self.noHeadFound = noHeadFound
        self.width = width
        self.height = height
        self.latency = latency
        self.peakRSSBytes = peakRSSBytes
    }

    public func medianMS(threads: Int) -> Double? { latency.first { $0.threads == threads }?.medianMS }

    /// "192x128", or nil for a row of a report written before rows recorded their size.
    public var size: String? { width.flatMap { w in height.map { InputSize(width: w, height: $0).description } } }
}

/// The whole report, as written to report.json.
public struct BenchReport: Codable, Equatable {
    public var created: String
    public var host: String
    public var command: String
    public var data: String
    public var split: String
    /// The size every model ran at; nil when each ran at its own (then each row has its size).
    public var width: Int?
    public var height: Int?
    public var threads: [Int]
    public var latencyMethod: String
    public var rows: [BenchRow]

    public init(created: String, host: String, command: String, data: String, split: String, width: Int?, height: Int?, threads: [Int], latencyMethod: String, rows: [BenchRow]) {
        self.created = created
        self.host = host
        self.command = command
        self.data = data
        self.split = split
        self.width = width
        self.height = height
        self.threads = threads
        self.latencyMethod = latencyMethod
        self.rows = rows
    }
}

/// What the benchmark needs besides the models.
public struct BenchConfiguration {
    public var models: [BenchModelSpec]
    public var dataDirectory: String
    public var splitCSV: String
    /// The size to run every model at; nil: each at the size its file records (`SegmentationModel.inputSize`).
    public var size: InputSize?
    /// Run an int8 model at a `size` other than its calibration size.
    public var allowingOtherSize: Bool
    public var threads: [Int]
    /// Latency: `rounds` passes over all models, each timing `runsPerRound` calls per model, after a warm-up.
    public var rounds: Int
    public var runsPerRound: Int
    public var command: String

    public init(models: [BenchModelSpec], dataDirectory: String, splitCSV: String, size: InputSize?, allowingOtherSize: Bool = false,
                threads: [Int], rounds: Int = 10, runsPerRound: Int = 3, command: String = "") {
        self.models = models
        self.dataDirectory = dataDirectory
        self.splitCSV = splitCSV
        self.size = size
        self.allowingOtherSize = allowingOtherSize
        self.threads = threads
        self.rounds = rounds
        self.runsPerRound = runsPerRound
        self.command = command
    }
}

/// Strategy and trainable parameters of a model file: metadata first (`sonoquant.trainable` groups,
/// `sonoquant.strategy`), else the model's display name when it starts with a preset name ("D-all int8").
public func trainableFacts(metadata: ModelMetadata, name: String) -> (strategy: String?, groups: String?, parameters: Int?) {
    var strategy = metadata.strategy.flatMap { $0 == "unknown" ? nil : $0 }
    if strategy == nil {
        // The longest preset name that starts the display name, so "D-all-frozenbn" wins over "D-all".
        let lower = name.lowercased()
        strategy = Strategy.presetNames.filter { lower.hasPrefix($0.lowercased()) }.max { $0.count < $1.count }
    }
    var groups: Set<ParameterGroup>? = metadata.trainable.flatMap { try? Strategy.groups($0) }
    if groups == nil, let strategy { groups = (try? Strategy.preset(strategy))?.trainable }
    guard let groups else { return (strategy, nil, nil) }
    // Counted on the file's own architecture (a unet-baseline file used to get MobileNetV2 U-Net counts).
    let architecture = metadata.architecture ?? strategy.flatMap({ try? Strategy.preset($0).architecture }) ?? .mobileNetV2UNet
    let graph = architecture.graph()
    return (strategy, Strategy.describe(groups), graph.parameterCount(groups: groups))
}

/// Peak resident set size of this process so far (Linux VmHWM), in bytes; nil where /proc is absent.
public func peakResidentBytes() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if fields.count >= 2, let kilobytes = Int(fields[1]) { return kilobytes * 1024 }
    }
    return nil
}

/// Runs the benchmark. `peakRSS` measures one model's one-frame peak memory in a fresh process (the
/// command re-runs itself); `progress` gets a line per step.
public func runBench(_ c: BenchConfiguration, peakRSS: (BenchModelSpec, InputSize) -> Int?, progress: (String) -> Void) throws -> BenchReport {
    precondition(!c.models.isEmpty && !c.threads.isEmpty && c.rounds >= 1 && c.runsPerRound >= 1)
    let dataset = try HC18Dataset(directory: c.dataDirectory, splitCSV: c.splitCSV)
    guard !dataset.test.isEmpty else { throw SonoQuantError(c.splitCSV, "no test frames in this split") }
    // The test frames at each size a model runs at, loaded once per size.
    var preparedBySize: [InputSize: [PreparedSample]] = [:]

    var networks: [SegmentationModel] = []
    var sizes: [InputSize] = []
    var rows: [BenchRow] = []
    for spec in c.models {
        let network = try loadSegmentationModel(path: spec.path)
        let size = try network.inputSize(requested: c.size, allowingOtherSize: c.allowingOtherSize, subject: spec.path)
        if preparedBySize[size] == nil {
            progress("loading \(dataset.test.count) test frames at \(size)")
            preparedBySize[size] = try loadSamples(dataset.test, width: size.width, height: size.height, threads: c.threads.max()!)
        }
        let prepared = preparedBySize[size]!
        let metadata = (try? SafeTensorsFile(path: spec.path))?.modelMetadata ?? ModelMetadata()
        let facts = trainableFacts(metadata: metadata, name: spec.name)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: spec.path)[.size] as? NSNumber)??.intValue ?? 0
        progress("\(spec.name): evaluating \(network.precision) on \(prepared.count) frames")
        let report = try evaluate(model: network, prepared: prepared, threads: c.threads.max()!)
        networks.append(network)
        sizes.append(size)
        rows.append(BenchRow(name: spec.name, path: spec.path, precision: network.precision, strategy: facts.strategy,
                             trainableGroups: facts.groups, trainableParameters: facts.parameters, fileBytes: bytes,
                             images: report.images, dice: report.meanDice, diceStd: report.diceStd, iou: report.meanIoU,
                             pixelAccuracy: report.meanPixelAccuracy, hcMAEmm: report.meanHCErrorMM,
                             hcMedianMM: report.medianHCErrorMM, hcP90MM: report.p90HCErrorMM, hcP95MM: report.p95HCErrorMM,
                             noHeadFound: report.noHeadFound, width: size.width, height: size.height, latency: [], peakRSSBytes: nil))
    }

    // Latency, interleaved: every round times each model in turn, so load from other processes falls on
    // all models alike; the median over all rounds is reported.
    for threads in c.threads {
        progress("latency at \(threads) thread(s): \(c.rounds) rounds x \(c.runsPerRound) runs per model")
        // 4 untimed calls per model (the first plans its arena).
        let measured = try interleavedLatency(Array(zip(networks, sizes)).map { (model: $0.0, size: $0.1) }, threads: threads,
                                              warmup: 4, rounds: c.rounds, runsPerRound: c.runsPerRound)
        for (i, stats) in measured.enumerated() {
            rows[i].latency.append(BenchLatency(threads: threads, runs: stats.runs, medianMS: stats.medianMS,
                                                p10MS: stats.p10MS, p90MS: stats.p90MS, cpuMSPerRun: stats.cpuMSPerRun))
        }
    }
    for i in rows.indices {
        progress("\(rows[i].name): peak memory of a one-frame run")
        rows[i].peakRSSBytes = peakRSS(c.models[i], sizes[i])
    }

    let formatter = ISO8601DateFormatter()
    let common = Set(sizes).count == 1 ? sizes[0] : nil
    return BenchReport(created: formatter.string(from: Date()), host: hostDescription(), command: c.command,
                       data: c.dataDirectory, split: c.splitCSV, width: common?.width, height: common?.height, threads: c.threads,
                       latencyMethod: "synthetic gray frame at the model's size; 4 warm-up calls, then \(c.rounds) rounds x \(c.runsPerRound) timed calls per model, models interleaved; median",
                       rows: rows)
}

/// "x86_64, 2 cores, AMD EPYC 7B13" from uname and /proc/cpuinfo.
public func hostDescription() -> String {
    var system = utsname()
    uname(&system)
    let machine = withUnsafeBytes(of: &system.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    var cpu = ""
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
       let colon = line.firstIndex(of: ":") {
        cpu = ", " + line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return "\(machine), \(availableCores) cores\(cpu)"
}

// MARK: - Writing

/// Writes REPORT.md, report.json and plot.svg into `directory`, each atomically.
public func writeBenchReport(_ report: BenchReport, to directory: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeFileAtomically(path: directory + "/report.json", bytes: [UInt8](try encoder.encode(report)))
    try writeFileAtomically(path: directory + "/REPORT.md", text: benchMarkdown(report))
    try writeFileAtomically(path: directory + "/plot.svg", text: benchSVG(report))
}

extension BenchReport {
    /// "192x128", or "each model's own size" when the models ran at different sizes.
    public var sizeDescription: String {
        if let width, let height { return InputSize(width: width, height: height).description }
        return "each model's own size"
    }
}

/// The markdown report: one table row per model, then how it was measured.
public func benchMarkdown(_ r: BenchReport) -> String {
    var lines = [
        "# SonoQuant bench: strategy x precision",
        "",
        "Test split: \(r.rows.first?.images ?? 0) frames of `\(r.split)` at \(r.sizeDescription). Host: \(r.host). \(r.created).",
        "",
    ]
    let latencyHeads = r.threads.map { "latency \($0)T ms (CPU ms)" }
    lines.append("| model | size | precision | strategy | trainable params | file size | Dice | IoU | pixel acc | HC error mean / median / p90 / p95 (mm) | "
                 + latencyHeads.joined(separator: " | ") + " | peak RSS |")
    lines.append("|" + String(repeating: "---|", count: 11 + latencyHeads.count))
    for row in r.rows {
        // Built in parts: Swift 6.0's type checker gives up on this as one array literal.
        let spread: [String] = [row.hcMedianMM, row.hcP90MM, row.hcP95MM].map { $0.map { String(format: "%.2f", $0) } ?? "?" }
        let noHead: String = row.noHeadFound > 0 ? " (\(row.noHeadFound) no head)" : ""
        let hcError: String = ([String(format: "%.2f", row.hcMAEmm)] + spread).joined(separator: " / ") + noHead
        let model: [String] = [row.name, row.size ?? r.sizeDescription, row.precision.rawValue, row.strategy ?? "?",
                               row.trainableParameters.map(grouped) ?? "?", megabytes(row.fileBytes)]
        let accuracy: [String] = [String(format: "%.4f ± %.3f", row.dice, row.diceStd), String(format: "%.4f", row.iou),
                                  String(format: "%.4f", row.pixelAccuracy), hcError]
        var cells = model + accuracy
        cells += r.threads.map { t in
            row.latency.first { $0.threads == t }.map { String(format: "%.1f (%.1f)", $0.medianMS, $0.cpuMSPerRun) } ?? "?"
        }
        cells.append(row.peakRSSBytes.map(megabytes) ?? "?")
        lines.append("| " + cells.joined(separator: " | ") + " |")
    }
    lines += [
        "",
        "- Dice, IoU and pixel accuracy: per image at the model's input size (prediction = logit > 0), mean over images (± population std of Dice).",
        "- HC error: |measured - reference| per frame: the ellipse fitted to the head's boundary, mapped to the original frame, times the pixel size (and the model's HC factor, if it carries one); frames with no head found count with their whole reference HC.",
        "- Trainable parameters: of the strategy (from the file's `sonoquant.trainable` / `sonoquant.strategy` metadata, or the model name); the int8 file stores all parameters.",
        "- Latency: \(r.latencyMethod). In brackets: process CPU time per call (all threads), which other load on the machine hardly changes.",
        "- Peak RSS: VmHWM of a separate `sonoquant` process that loads the model and runs one frame.",
        "",
        "Command: `\(r.command)`",
        "",
        "![Dice vs latency and file size](plot.svg)",
        "",
    ]
    return lines.joined(separator: "\n")
}

/// Two scatter panels side by side: Dice vs median latency at the lowest thread count, and Dice vs file
/// size. Float models are circles, int8 models squares; each point is labelled with the model's name.
public func benchSVG(_ r: BenchReport) -> String {
    let panelWidth = 420.0, panelHeight = 320.0, margin = (left: 60.0, right: 20.0, top: 40.0, bottom: 50.0)
    let threads = r.threads.min() ?? 1
    let points = r.rows.map { (row: $0, latency: $0.medianMS(threads: threads) ?? 0, size: Double($0.fileBytes) / 1e6) }
    let dices = points.map(\.row.dice)
    var lo = (dices.min() ?? 0), hi = (dices.max() ?? 1)
    if hi - lo < 0.01 { lo -= 0.005; hi += 0.005 }
    let pad = (hi - lo) * 0.1
    let dice = (lo - pad, hi + pad)

    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// One scatter panel. Values spanning more than 10x (models of several sizes and architectures) get a
    /// log-scale axis, so the small models do not collapse into one corner. `front`: indices of the Pareto front.
    func panel(x0: Double, title: String, xLabel: String, values: [Double], front: [Int] = []) -> String {
        let positive = values.filter { $0 > 0 }
        let logX = (positive.max() ?? 1) / (positive.min() ?? 1) > 10 && positive.count == values.count
        let xMin = logX ? positive.min()! / 1.5 : 0
        let xMax = logX ? positive.max()! * 2 : max(values.max() ?? 1, 1e-9) * 1.3  // room for the labels
        let plotW = panelWidth - margin.left - margin.right, plotH = panelHeight - margin.top - margin.bottom
        func px(_ v: Double) -> Double {
            let t = logX ? (log(v) - log(xMin)) / (log(xMax) - log(xMin)) : v / xMax
            return x0 + margin.left + t * plotW
        }
        func py(_ d: Double) -> Double { margin.top + (1 - (d - dice.0) / (dice.1 - dice.0)) * plotH }
        var s = "<g>\n"
        s += "<text x=\"\(f(x0 + panelWidth / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(escapeXML(title))</text>\n"
        s += "<rect x=\"\(f(x0 + margin.left))\" y=\"\(f(margin.top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#444\"/>\n"
        for k in 0...4 {
            let xv = logX ? exp(log(xMin) + (log(xMax) - log(xMin)) * Double(k) / 4) : xMax * Double(k) / 4
            let dv = dice.0 + (dice.1 - dice.0) * Double(k) / 4
            s += "<text x=\"\(f(px(xv)))\" y=\"\(f(margin.top + plotH + 16))\" text-anchor=\"middle\" font-size=\"10\">\(String(format: xv < 10 ? "%.1f" : "%.0f", xv))</text>\n"
            s += "<text x=\"\(f(x0 + margin.left - 6))\" y=\"\(f(py(dv) + 3))\" text-anchor=\"end\" font-size=\"10\">\(String(format: "%.3f", dv))</text>\n"
            s += "<line x1=\"\(f(x0 + margin.left))\" y1=\"\(f(py(dv)))\" x2=\"\(f(x0 + margin.left + plotW))\" y2=\"\(f(py(dv)))\" stroke=\"#ddd\"/>\n"
        }
        if front.count > 1 {
            let path = front.sorted { values[$0] < values[$1] }.map { "\(f(px(values[$0]))),\(f(py(points[$0].row.dice)))" }
            s += "<polyline points=\"\(path.joined(separator: " "))\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"1.5\"/>\n"
        }
        for i in front { s += "<circle cx=\"\(f(px(values[i])))\" cy=\"\(f(py(points[i].row.dice)))\" r=\"8\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"1.5\"/>\n" }
        s += "<text x=\"\(f(x0 + margin.left + plotW / 2))\" y=\"\(f(panelHeight - 12))\" text-anchor=\"middle\" font-size=\"12\">\(escapeXML(xLabel + (logX ? ", log scale" : "")))</text>\n"
        s += "<text transform=\"translate(\(f(x0 + 16)),\(f(margin.top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">Dice</text>\n"
        for (p, v) in zip(points, values) {
            let (cx, cy) = (px(v), py(p.row.dice))
            if p.row.precision == .int8 {
                s += "<rect x=\"\(f(cx - 4))\" y=\"\(f(cy - 4))\" width=\"8\" height=\"8\" fill=\"#d62728\"/>\n"
            } else {
                s += "<circle cx=\"\(f(cx))\" cy=\"\(f(cy))\" r=\"4.5\" fill=\"#1f77b4\"/>\n"
            }
            s += "<text x=\"\(f(cx + 7))\" y=\"\(f(cy - 6))\" font-size=\"10\">\(escapeXML(p.row.name))</text>\n"
        }
        return s + "</g>\n"
    }

    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(2 * panelWidth))\" height=\"\(f(panelHeight + 20))\" font-family=\"sans-serif\">\n"
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    // The Pareto front: the models no other model beats on both latency and Dice (ringed and joined in green).
    let front = paretoFront(cost: points.map(\.latency), accuracy: dices)
    svg += panel(x0: 0, title: "Dice vs latency (\(threads) thread\(threads == 1 ? "" : "s"), \(r.sizeDescription))",
                 xLabel: "median latency (ms)", values: points.map(\.latency), front: front)
    svg += panel(x0: panelWidth, title: "Dice vs model file size", xLabel: "file size (MB)", values: points.map(\.size))
    svg += "<text x=\"\(f(panelWidth))\" y=\"\(f(panelHeight + 12))\" text-anchor=\"middle\" font-size=\"11\">circle = float32, square = int8; green: Pareto front (no other model both faster and more accurate)</text>\n"
    return svg + "</svg>\n"
}
