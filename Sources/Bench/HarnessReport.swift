// The harness's outputs: results.csv (one line per strategy and seed), results.json, REPORT.md (tables in
// the paper's shape, the PyTorch reference beside ours) and SVG plots, each written atomically.
import Foundation
import HC18
import QuantEngine

// MARK: - The PyTorch reference

/// One row of ../shared/reference/pytorch_reference_results.json (a copy is in fixtures/).
public struct ReferenceResult: Codable, Equatable {
    public var strategy: String
    public var seed: Int
    public var width: Int
    public var height: Int
    public var epochs: Int
    public var trainable: Int
    /// Dice per test image after the last epoch, mean and std.
    public var dice: Double
    public var diceStd: Double
    public var iou: Double
    public var pixelAccuracy: Double
    public var hcMAEmm: Double

    enum CodingKeys: String, CodingKey {
        case strategy, seed, width = "W", height = "H", epochs, trainable, dice = "final_dice_img_mean"
        case diceStd = "final_dice_img_std", iou = "final_iou_img_mean", pixelAccuracy = "final_pa", hcMAEmm = "hc_mae_mm"
    }
}

public func readReferenceResults(path: String) throws -> [ReferenceResult] {
    guard let data = FileManager.default.contents(atPath: path) else { throw SonoQuantError(path, "no such file") }
    do { return try JSONDecoder().decode([ReferenceResult].self, from: data) } catch {
        throw SonoQuantError(path, "not a PyTorch reference results file: \(error)")
    }
}

/// The reference names our random-encoder presets differently: rand-E|D = random encoder frozen, decoder
/// trained (our rand-frozen-E); rand-D|E = random encoder trained, decoder frozen (our rand-frozen-D).
public func referenceName(ofStrategy name: String) -> String {
    switch name {
    case "rand-frozen-E": return "rand-E|D"
    case "rand-frozen-D": return "rand-D|E"
    default: return name
    }
}

/// The reference rows for a strategy at a size (all its seeds).
public func referenceRows(_ reference: [ReferenceResult], strategy: String, width: Int, height: Int) -> [ReferenceResult] {
    reference.filter { $0.strategy == referenceName(ofStrategy: strategy) && $0.width == width && $0.height == height }
}

// MARK: - Aggregation over seeds

/// One strategy's rows (its seeds), in the order strategies were given.
public func rowsByStrategy(_ rows: [HarnessRow]) -> [(strategy: String, rows: [HarnessRow])] {
    var order: [String] = []
    var groups: [String: [HarnessRow]] = [:]
    for row in rows {
        if groups[row.strategy] == nil { order.append(row.strategy) }
        groups[row.strategy, default: []].append(row)
    }
    return order.map { ($0, groups[$0]!) }
}

/// A cell for a per-frame metric: with one seed "mean ± std over frames [95% bootstrap interval]";
/// with several, "mean ± std over seeds (n seeds)" of the seeds' means.
func metricCell(_ summaries: [Summary], digits: Int) -> String {
    guard let first = summaries.first else { return "?" }
    let f = "%.\(digits)f"
    if summaries.count == 1 {
        return String(format: "\(f) ± \(f) [\(f), \(f)]", first.mean, first.std, first.low, first.high)
    }
    let (mean, std) = meanAndSampleStd(summaries.map(\.mean))
    return String(format: "\(f) ± \(f) (%d seeds)", mean, std, summaries.count)
}

/// "median / p90 / p95", each the mean over seeds; "—" if a run has none (an older report.json).
func quantilesCell(_ quantiles: [HCErrorQuantiles?]) -> String {
    let known = quantiles.compactMap { $0 }
    guard !known.isEmpty, known.count == quantiles.count else { return "—" }
    func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
    return String(format: "%.2f / %.2f / %.2f", mean(known.map(\.median)), mean(known.map(\.p90)), mean(known.map(\.p95)))
}

func meanCell(_ values: [Double], format: String) -> String {
    guard !values.isEmpty else { return "?" }
    let (mean, std) = meanAndSampleStd(values)
    return values.count == 1 ? String(format: format, mean) : String(format: format + " ± " + format, mean, std)
}

func grouped(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return out
}

func megabytes(_ bytes: Int) -> String { String(format: "%.2f MB", Double(bytes) / 1e6) }

// MARK: - Files

/// Writes results.csv, results.json, REPORT.md and the plots into `directory`, each atomically.
public func writeHarnessResults(_ results: HarnessResults, to directory: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeFileAtomically(path: directory + "/results.json", bytes: [UInt8](try encoder.encode(results)))
    try writeFileAtomically(path: directory + "/results.csv", text: harnessCSV(results))
    try writeFileAtomically(path: directory + "/dice_vs_params.svg", text: diceVersusParametersSVG(results))
    try writeFileAtomically(path: directory + "/dice_vs_int8_latency.svg", text: diceVersusLatencySVG(results))
    try writeFileAtomically(path: directory + "/epoch_curves.svg", text: epochCurvesSVG(results))
    try writeFileAtomically(path: directory + "/REPORT.md", text: harnessMarkdown(results))
}

/// One line per strategy and seed; latency columns per thread count.
public func harnessCSV(_ r: HarnessResults) -> String {
    var header = ["strategy", "seed", "architecture", "trainable_groups", "trainable_params", "total_params", "epochs", "batch", "lr",
                  "size", "train_seconds"]
    for p in ["float", "int8"] {
        header += ["\(p)_bytes", "\(p)_pixel_acc", "\(p)_dice", "\(p)_dice_std", "\(p)_dice_ci_low", "\(p)_dice_ci_high", "\(p)_iou",
                   "\(p)_hc_mm", "\(p)_hc_std", "\(p)_hc_ci_low", "\(p)_hc_ci_high", "\(p)_no_head"]
        for t in r.threads { header += ["\(p)_\(t)t_median_ms", "\(p)_\(t)t_p95_ms", "\(p)_\(t)t_cpu_ms"] }
        header.append("\(p)_peak_rss_bytes")
    }
    var lines = [header.joined(separator: ",")]
    for row in r.rows {
        var cells = [row.strategy, String(row.seed), row.architecture, "\"\(row.trainableGroups)\"", String(row.trainableParameters),
                     String(row.totalParameters), String(row.epochs), String(row.batchSize), String(format: "%g", row.learningRate),
                     "\(r.width)x\(r.height)", String(format: "%.1f", row.trainSeconds)]
        for p in [row.float, row.int8] {
            cells += [String(p.fileBytes)] + [p.pixelAccuracy.mean, p.dice.mean, p.dice.std, p.dice.low, p.dice.high, p.iou.mean,
                                              p.hcErrorMM.mean, p.hcErrorMM.std, p.hcErrorMM.low, p.hcErrorMM.high].map { String(format: "%.6f", $0) }
            cells.append(String(p.noHeadFound))
            for t in r.threads {
                if let l = p.latency(threads: t) {
                    cells += [l.medianMS, l.p95MS, l.cpuMSPerRun].map { String(format: "%.3f", $0) }
                } else { cells += ["", "", ""] }
            }
            cells.append(p.peakRSSBytes.map(String.init) ?? "")
        }
        lines.append(cells.joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
}

/// REPORT.md: accuracy in the paper's shape with the PyTorch reference, then int8, latency and memory, then
/// per-seed rows, plots, frames and how everything was measured.
public func harnessMarkdown(_ r: HarnessResults) -> String {
    let strategies = rowsByStrategy(r.rows)
    let seedText = r.seeds.map(String.init).joined(separator: ", ")
    var lines = [
        "# SonoQuant bench: fine-tuning strategies x precision",
        "",
        "Data: `\(r.data)`, split `\(r.split)`: \(r.trainFrames) training / \(r.testFrames) test frames, squashed to \(r.width)x\(r.height). "
            + "Test frames whose fetus also has a frame in the training split: \(r.testFramesSharingFetus) of \(r.testFrames)"
            + (r.testFramesSharingFetus > 0 ? " (for those, the numbers are optimistic about unseen patients)." : " (patient-grouped split)."),
        "Training: \(r.epochs) epochs, batch \(r.batchSize), Adam lr \(String(format: "%g", r.learningRate)), seeds \(seedText). "
            + "int8: \(r.observer) observer, \(r.calibrationImages) calibration frames from the training split.",
        r.sources == nil
            ? "Host: \(r.host). Report written \(r.created); \(r.rows.count) of \(r.strategies.count * r.seeds.count) runs done "
                + "(strategies: \(r.strategies.joined(separator: ", ")))."
            : "Merged \(r.created) from \(r.sources!.count) harness outputs (\"Sources\" at the end says which run came from which, "
                + "on which host): \(r.rows.count) runs.",
        "",
    ]
    if !r.pending.isEmpty {
        lines += [(r.sources == nil ? "Not measured, training not finished (this report was made without training): "
                                    : "Asked of a source but measured by none: ") + r.pending.joined(separator: "; ") + ".", ""]
    }
    if let cells = r.cells {
        let notDone = cells.filter { $0.state != .done }
        lines += ["## Cells of the plan",
                  "",
                  notDone.isEmpty ? "All \(cells.count) cells with this size and split are done."
                                  : "\(cells.count - notDone.count) of \(cells.count) cells with this size and split are done; "
                                    + "the rows of the others are missing from every table below.",
                  "",
                  "| cell | name | state | attempts | note |",
                  "|---|---|---|---|---|"]
        lines += cells.map { "| \($0.cell) | \($0.name) | \($0.state.rawValue) | \($0.attempts) | \($0.note.replacingOccurrences(of: "|", with: "\\|")) |" }
        lines.append("")
    }
    lines += [
        "## Accuracy (float32, test frames)",
        "",
        "| strategy | trainable groups | trainable params | model size | epochs | lr | pixel acc | Dice | IoU | HC error (mm) | HC error median / p90 / p95 (mm) | PyTorch ref. Dice | PyTorch ref. HC (mm) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (strategy, rows) in strategies {
        let first = rows[0]
        let reference = referenceRows(r.reference, strategy: strategy, width: r.width, height: r.height)
        let referenceDice = reference.isEmpty ? "—" : meanCell(reference.map(\.dice), format: "%.4f") + " (\(reference.count) seed\(reference.count == 1 ? "" : "s"))"
        let referenceHC = reference.isEmpty ? "—" : meanCell(reference.map(\.hcMAEmm), format: "%.2f")
        lines.append("| " + [
            strategy, first.trainableGroups, grouped(first.trainableParameters), megabytes(first.float.fileBytes),
            rows.map { String($0.epochs) }.joined(separator: "/"), String(format: "%g", first.learningRate),
            meanCell(rows.map(\.float.pixelAccuracy.mean), format: "%.4f"), metricCell(rows.map(\.float.dice), digits: 4),
            meanCell(rows.map(\.float.iou.mean), format: "%.4f"), metricCell(rows.map(\.float.hcErrorMM), digits: 2)
                + noHeadNote(rows.map(\.float.noHeadFound)),
            quantilesCell(rows.map(\.float.hcErrorQuantilesMM)),
            referenceDice, referenceHC,
        ].joined(separator: " | ") + " |")
    }

    let latencyHeads = r.threads.flatMap { ["float \($0)T ms", "int8 \($0)T ms"] }
    lines += [
        "",
        "## int8 vs float32: accuracy, size, latency, memory",
        "",
        "| strategy | int8 Dice | Dice int8 - float | int8 HC error (mm) | int8 HC error median / p90 / p95 (mm) | int8 size | " + latencyHeads.joined(separator: " | ") + " | peak RSS float / int8 |",
        "|---|---|---|---|---|---|" + String(repeating: "---|", count: latencyHeads.count) + "---|",
    ]
    for (strategy, rows) in strategies {
        var cells = [strategy, metricCell(rows.map(\.int8.dice), digits: 4),
                     meanCell(rows.map { $0.int8.dice.mean - $0.float.dice.mean }, format: "%+.4f"),
                     metricCell(rows.map(\.int8.hcErrorMM), digits: 2) + noHeadNote(rows.map(\.int8.noHeadFound)),
                     quantilesCell(rows.map(\.int8.hcErrorQuantilesMM)),
                     megabytes(rows[0].int8.fileBytes)]
        for t in r.threads {
            for precision in [\HarnessRow.float, \HarnessRow.int8] {
                let l = rows.compactMap { $0[keyPath: precision].latency(threads: t) }
                cells.append(l.isEmpty ? "?" : String(format: "%.1f / %.1f (CPU %.1f)", median(l.map(\.medianMS)), median(l.map(\.p95MS)),
                                                      median(l.map(\.cpuMSPerRun))))
            }
        }
        let rss = { (p: PrecisionResult) in p.peakRSSBytes.map { String(format: "%.0f", Double($0) / 1e6) } ?? "?" }
        cells.append("\(rss(rows[0].float)) / \(rss(rows[0].int8)) MB")
        lines.append("| " + cells.joined(separator: " | ") + " |")
    }

    if r.seeds.count > 1 {
        lines += ["", "## Every run", "",
                  "| strategy | seed | epochs | train time | float Dice [95% CI] | float HC mm [95% CI] | int8 Dice [95% CI] | int8 HC mm [95% CI] |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in r.rows {
            lines.append("| " + [row.strategy, String(row.seed), String(row.epochs), String(format: "%.0f s", row.trainSeconds),
                                 metricCell([row.float.dice], digits: 4), metricCell([row.float.hcErrorMM], digits: 2),
                                 metricCell([row.int8.dice], digits: 4), metricCell([row.int8.hcErrorMM], digits: 2)].joined(separator: " | ") + " |")
        }
    }

    lines += [
        "",
        "## Plots",
        "",
        "![Dice vs trainable parameters](dice_vs_params.svg)",
        "![Dice vs int8 latency, Pareto front](dice_vs_int8_latency.svg)",
        "![Test Dice after each epoch](epoch_curves.svg)",
    ]
    // Each strategy's frames from its first measured seed.
    let framed = rowsByStrategy(r.rows).compactMap { $0.rows.first { !$0.overlays.isEmpty } }
    if !framed.isEmpty {
        lines += ["", "## Test frames (int8 prediction)", "",
                  "Tinted: predicted head region; green: ellipse fitted to the prediction; blue: ellipse fitted to the sonographer's outline.", ""]
        for row in framed {
            lines.append("\(row.strategy) (seed \(row.seed)): " + row.overlays.map { "![\($0)](\($0))" }.joined(separator: " "))
            lines.append("")
        }
    }
    lines += [
        "",
        "## How this was measured",
        "",
        "- Dice, IoU, pixel accuracy: per test frame at \(r.width)x\(r.height) (prediction = logit > 0), then the mean over frames. "
            + "Cells with one seed: mean ± std over frames [95% bootstrap interval of the mean: \(Bootstrap.resamples) resamples of the frames, "
            + "SplitMix64 seed \(Bootstrap.seed), percentile method]. Cells with several seeds: mean ± sample std of the seeds' means; "
            + "the per-seed intervals are in \"Every run\".",
        "- HC error: |HC - reference HC| per frame, mm: ellipse fitted to the largest predicted region, mapped back to the original "
            + "frame, times the pixel size; a frame with no head found counts with its whole reference HC. Median / p90 / p95: "
            + "quantiles over frames (linear between closest ranks), the mean over seeds when several.",
        "- Trainable params: parameters in the strategy's trainable groups (E = encoder, D0..D4 = decoder blocks, H = head); "
            + "model size: the float32 checkpoint file; the int8 file holds every parameter in int8.",
        "- Latency: \(r.latencyMethod); cells are median / p95 ms per frame, and process CPU ms per frame (all threads), "
            + "which other load on the machine hardly changes. Median over seeds when several.",
        "- Peak RSS: VmHWM of a separate `sonoquant` process that loads the model and runs one frame (first seed).",
        "- PyTorch ref.: ../shared/reference/pytorch_reference_results.json (copy: fixtures/pytorch_reference_results.json), "
            + "same strategy at the same size, Dice per image after the last epoch; mean ± std over its seeds. \"—\" = no reference run.",
        "- The paper's Table 2 numbers are not in ../shared or this repository, so no column shows them (none are typed in from memory).",
        "",
        "Command: `\(r.command)`",
        "",
    ]
    if let sources = r.sources {
        lines += ["## Sources", "",
                  "Each source measured latency and memory on its own machine at its own time: compare those only between runs of one source.", ""]
        for s in sources {
            lines += ["- `\(s.directory)` (written \(s.created); host: \(s.host)): "
                          + (s.runs.isEmpty ? "no runs taken from it" : s.runs.joined(separator: ", ")) + ".",
                      "  Command: `\(s.command)`. Latency: \(s.latencyMethod)."]
        }
        lines.append("")
    }
    return lines.joined(separator: "\n")
}

private func noHeadNote(_ counts: [Int]) -> String {
    let total = counts.reduce(0, +)
    return total > 0 ? " (\(total) no head)" : ""
}

private func median(_ values: [Double]) -> Double { quantile(values.sorted(), 0.5) }

// MARK: - Plots (plain SVG)

/// A point of a scatter plot.
struct PlotPoint {
    var x: Double
    var y: Double
    var label: String
    /// Filled circle (float32) or square (int8).
    var square: Bool
}

/// Text made safe inside SVG/XML (both reports' plots use it).
func escapeXML(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}

private func f1(_ v: Double) -> String { String(format: "%.1f", v) }

/// Axes and ticks of one plot; `x` and `y` map data to pixels (x optionally log10).
struct PlotFrame {
    let width = 640.0, height = 360.0
    let left = 70.0, right = 30.0, top = 52.0, bottom = 50.0
    var xRange: (Double, Double)
    var yRange: (Double, Double)
    var logX: Bool
    /// Ticks at whole numbers (epochs) instead of five even steps.
    var integerX = false

    init(xs: [Double], ys: [Double], logX: Bool) {
        self.logX = logX
        let tx = xs.filter(\.isFinite).map { logX ? log10(max($0, 1e-12)) : $0 }
        var (x0, x1) = (tx.min() ?? 0, tx.max() ?? 1)
        if x1 - x0 < 1e-9 { x0 -= logX ? 0.5 : max(abs(x0) * 0.1, 1); x1 += logX ? 0.5 : max(abs(x1) * 0.1, 1) }
        let xPad = (x1 - x0) * 0.12
        xRange = (logX ? x0 - xPad : max(0, x0 - xPad), x1 + xPad * 2)  // room on the right for labels
        let fy = ys.filter(\.isFinite)
        var (y0, y1) = (fy.min() ?? 0, fy.max() ?? 1)
        if y1 - y0 < 0.01 { y0 -= 0.005; y1 += 0.005 }
        let yPad = (y1 - y0) * 0.1
        yRange = (y0 - yPad, y1 + yPad)
    }

    func x(_ v: Double) -> Double {
        let t = logX ? log10(max(v, 1e-12)) : v
        return left + (t - xRange.0) / (xRange.1 - xRange.0) * (width - left - right)
    }
    func y(_ v: Double) -> Double { top + (1 - (v - yRange.0) / (yRange.1 - yRange.0)) * (height - top - bottom) }

    func axes(title: String, xLabel: String, yLabel: String) -> String {
        let plotW = width - left - right, plotH = height - top - bottom
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f1(width))\" height=\"\(f1(height))\" font-family=\"sans-serif\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f1(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(escapeXML(title))</text>\n"
        s += "<rect x=\"\(f1(left))\" y=\"\(f1(top))\" width=\"\(f1(plotW))\" height=\"\(f1(plotH))\" fill=\"none\" stroke=\"#444\"/>\n"
        for k in 0...4 {
            let yv = yRange.0 + (yRange.1 - yRange.0) * Double(k) / 4
            s += "<line x1=\"\(f1(left))\" y1=\"\(f1(y(yv)))\" x2=\"\(f1(left + plotW))\" y2=\"\(f1(y(yv)))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f1(left - 6))\" y=\"\(f1(y(yv) + 3))\" text-anchor=\"end\" font-size=\"10\">\(String(format: "%.3f", yv))</text>\n"
        }
        if logX {
            for e in Int(xRange.0.rounded(.up))...max(Int(xRange.0.rounded(.up)), Int(xRange.1.rounded(.down))) {
                let v = pow(10, Double(e))
                s += "<text x=\"\(f1(x(v)))\" y=\"\(f1(top + plotH + 16))\" text-anchor=\"middle\" font-size=\"10\">1e\(e)</text>\n"
                s += "<line x1=\"\(f1(x(v)))\" y1=\"\(f1(top))\" x2=\"\(f1(x(v)))\" y2=\"\(f1(top + plotH))\" stroke=\"#eee\"/>\n"
            }
        } else if integerX {
            let step = max(1, Int(xRange.1 - xRange.0) / 8)
            for xv in stride(from: Int(xRange.0.rounded(.up)), through: Int(xRange.1), by: step) {
                s += "<text x=\"\(f1(x(Double(xv))))\" y=\"\(f1(top + plotH + 16))\" text-anchor=\"middle\" font-size=\"10\">\(xv)</text>\n"
            }
        } else {
            for k in 0...4 {
                let xv = xRange.0 + (xRange.1 - xRange.0) * Double(k) / 4
                s += "<text x=\"\(f1(x(xv)))\" y=\"\(f1(top + plotH + 16))\" text-anchor=\"middle\" font-size=\"10\">\(String(format: xv < 10 ? "%.1f" : "%.0f", xv))</text>\n"
            }
        }
        s += "<text x=\"\(f1(left + plotW / 2))\" y=\"\(f1(height - 12))\" text-anchor=\"middle\" font-size=\"12\">\(escapeXML(xLabel))</text>\n"
        s += "<text transform=\"translate(16,\(f1(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">\(escapeXML(yLabel))</text>\n"
        return s
    }
}

private func scatterSVG(title: String, xLabel: String, yLabel: String, points: [PlotPoint], logX: Bool, front: [Int] = [], note: String) -> String {
    let frame = PlotFrame(xs: points.map(\.x), ys: points.map(\.y), logX: logX)
    var s = frame.axes(title: title, xLabel: xLabel, yLabel: yLabel)
    if front.count > 1 {
        let path = front.map { "\(f1(frame.x(points[$0].x))),\(f1(frame.y(points[$0].y)))" }.joined(separator: " ")
        s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\n"
    }
    for (i, p) in points.enumerated() where p.x.isFinite && p.y.isFinite {
        let (cx, cy) = (frame.x(p.x), frame.y(p.y))
        if front.contains(i) {
            s += "<circle cx=\"\(f1(cx))\" cy=\"\(f1(cy))\" r=\"9\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\"/>\n"
        }
        s += p.square
            ? "<rect x=\"\(f1(cx - 4))\" y=\"\(f1(cy - 4))\" width=\"8\" height=\"8\" fill=\"#d62728\"/>\n"
            : "<circle cx=\"\(f1(cx))\" cy=\"\(f1(cy))\" r=\"4.5\" fill=\"#1f77b4\"/>\n"
        s += "<text x=\"\(f1(cx + 8))\" y=\"\(f1(cy - 6))\" font-size=\"10\">\(escapeXML(p.label))</text>\n"
    }
    s += "<text x=\"\(f1(frame.width / 2))\" y=\"40\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">\(escapeXML(note))</text>\n"
    return s + "</svg>\n"
}

/// Dice (mean over seeds) against trainable parameters (log scale), float32 circles and int8 squares.
public func diceVersusParametersSVG(_ r: HarnessResults) -> String {
    var points: [PlotPoint] = []
    for (strategy, rows) in rowsByStrategy(r.rows) {
        let x = Double(rows[0].trainableParameters)
        points.append(PlotPoint(x: x, y: meanAndSampleStd(rows.map(\.float.dice.mean)).mean, label: strategy, square: false))
        points.append(PlotPoint(x: x, y: meanAndSampleStd(rows.map(\.int8.dice.mean)).mean, label: "", square: true))
    }
    return scatterSVG(title: "Test Dice vs trainable parameters (\(r.width)x\(r.height))", xLabel: "trainable parameters (log scale)",
                      yLabel: "Dice", points: points, logX: true, note: "circle = float32, square = int8")
}

/// int8 Dice against int8 median latency at the lowest thread count; the Pareto front (no other strategy
/// is both faster and more accurate) is circled and joined.
public func diceVersusLatencySVG(_ r: HarnessResults) -> String {
    let threads = r.threads.min() ?? 1
    // A strategy not timed at this thread count (possible in a merged report) is left out.
    let points = rowsByStrategy(r.rows).compactMap { strategy, rows -> PlotPoint? in
        let latencies = rows.compactMap { $0.int8.latency(threads: threads)?.medianMS }
        guard !latencies.isEmpty else { return nil }
        return PlotPoint(x: median(latencies), y: meanAndSampleStd(rows.map(\.int8.dice.mean)).mean, label: strategy, square: true)
    }
    let front = paretoFront(cost: points.map(\.x), accuracy: points.map(\.y))
    return scatterSVG(title: "int8: Dice vs latency (\(threads) thread\(threads == 1 ? "" : "s"), \(r.width)x\(r.height))",
                      xLabel: "median int8 latency per frame (ms)", yLabel: "Dice", points: points, logX: false, front: front,
                      note: "green: Pareto front. Strategies of one architecture share one network: their latencies differ by noise.")
}

/// Test Dice after each epoch, one line per run.
public func epochCurvesSVG(_ r: HarnessResults) -> String {
    let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    let all = r.rows.flatMap(\.curve)
    var frame = PlotFrame(xs: all.map { Double($0.epoch) } + [0], ys: all.map(\.dice), logX: false)
    frame.xRange = (0, Double(max(all.map(\.epoch).max() ?? 1, 1)) + 0.5)
    frame.integerX = true
    var s = frame.axes(title: "Test Dice after each epoch (\(r.width)x\(r.height))", xLabel: "epoch", yLabel: "Dice")
    for (i, row) in r.rows.enumerated() where !row.curve.isEmpty {
        let color = palette[i % palette.count]
        // Past ten runs the colours repeat, so the later runs' lines are dashed.
        let dash = i >= palette.count ? " stroke-dasharray=\"6 3\"" : ""
        let path = row.curve.map { "\(f1(frame.x(Double($0.epoch)))),\(f1(frame.y($0.dice)))" }.joined(separator: " ")
        s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
        for p in row.curve { s += "<circle cx=\"\(f1(frame.x(Double(p.epoch))))\" cy=\"\(f1(frame.y(p.dice)))\" r=\"2.5\" fill=\"\(color)\"/>\n" }
        // Legend bottom right: the curves rise towards the top right.
        let legendY = frame.height - frame.bottom - 10 - Double(r.rows.count - 1 - i) * 14
        s += "<line x1=\"\(f1(frame.width - frame.right - 150))\" y1=\"\(f1(legendY - 4))\" x2=\"\(f1(frame.width - frame.right - 130))\" y2=\"\(f1(legendY - 4))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
        s += "<text x=\"\(f1(frame.width - frame.right - 125))\" y=\"\(f1(legendY))\" font-size=\"10\">\(escapeXML("\(row.strategy) seed \(row.seed)"))</text>\n"
    }
    return s + "</svg>\n"
}
