import Bench
import Foundation
import HC18
import QuantEngine
import Train
import XCTest
import TestSupport

final class HarnessTests: XCTestCase {
    // MARK: Statistics

    func testBootstrapIntervalOnKnownVector() {
        let s = summarize([1, 2, 3, 4, 5])
        XCTAssertEqual(s.count, 5)
        XCTAssertEqual(s.mean, 3)
        XCTAssertEqual(s.std, 2.0.squareRoot(), accuracy: 1e-15)
        // The normal approximation gives 3 ± 1.96 * sqrt(2) / sqrt(5) = [1.76, 4.24]; the bootstrap of five
        // values is a little narrower. Pinned: SplitMix64 and the seed fix the resamples.
        XCTAssertEqual(s.low, 1.8, accuracy: 1e-12)
        XCTAssertEqual(s.high, 4.2, accuracy: 1e-12)
        XCTAssertEqual(summarize([1, 2, 3, 4, 5]), s, "same values, same interval")
        XCTAssertNotEqual(summarize([1, 2, 3, 4, 5], seed: 1).low, 0)
        // A constant has no spread: the interval collapses onto it.
        let constant = summarize([0.25, 0.25, 0.25])
        XCTAssertEqual([constant.low, constant.mean, constant.high, constant.std], [0.25, 0.25, 0.25, 0])
        // Seeds: sample std (n - 1).
        let seeds = meanAndSampleStd([0.96, 0.97])
        XCTAssertEqual(seeds.mean, 0.965, accuracy: 1e-12)
        XCTAssertEqual(seeds.std, 0.01 / 2.0.squareRoot(), accuracy: 1e-12)
    }

    func testParetoFrontOnKnownPoints() {
        // (cost, accuracy): 2 is beaten by 1 (cheaper and better); 1 and 4 tie exactly, neither beats the other.
        let cost = [1, 2, 3, 4, 2, .nan], accuracy = [0.5, 0.7, 0.6, 0.9, 0.7, 1.0]
        XCTAssertEqual(paretoFront(cost: cost, accuracy: accuracy), [0, 1, 4, 3])
        XCTAssertEqual(paretoFront(cost: [5], accuracy: [0.1]), [0])
        XCTAssertEqual(paretoFront(cost: [1, 1], accuracy: [0.2, 0.3]), [1], "same cost, better accuracy wins")
    }

    // MARK: Report from a fake run directory

    func testReportRowsFromFakeRunDirectory() throws {
        let directory = try temporaryDirectory(self, "fake-run")
        try """
        epoch,train_loss,test_dice,test_dice_std,test_iou,test_pixel_accuracy,test_hc_error_mm,test_no_head_found,train_images_per_s,epoch_seconds
        1,0.600000,0.500000,0.100000,0.400000,0.800000,20.0000,1,5.000,10.0
        2,0.300000,0.900000,0.050000,0.800000,0.950000,3.5000,0,5.000,12.5

        """.write(toFile: directory + "/metrics.csv", atomically: true, encoding: .utf8)
        let curve = try readEpochCurve(path: directory + "/metrics.csv")
        XCTAssertEqual(curve, [EpochPoint(epoch: 1, trainLoss: 0.6, dice: 0.5, hcErrorMM: 20, epochSeconds: 10),
                               EpochPoint(epoch: 2, trainLoss: 0.3, dice: 0.9, hcErrorMM: 3.5, epochSeconds: 12.5)])

        // Two test frames: Dice 0.8 and 1.0, HC errors 2 and 4 mm (int8: one frame a little worse).
        func evaluation(_ dice: [Double], _ hc: [Double], precision: Precision) throws -> EvaluationReport {
            let rows = zip(dice, hc).enumerated().map { i, v in
                "{\"name\":\"f\(i)\",\"dice\":\(v.0),\"iou\":\(v.0 - 0.1),\"pixelAccuracy\":0.99,\"headFound\":true,\"hcMM\":\(100 + v.1),\"referenceHCmm\":100,\"hcErrorMM\":\(v.1)}"
            }
            let decoded = try JSONDecoder().decode([EvaluationRow].self, from: Data(("[" + rows.joined(separator: ",") + "]").utf8))
            return EvaluationReport(rows: decoded, precision: precision, width: 32, height: 32)
        }
        var float = PrecisionResult(precision: .float32, path: directory + "/model.safetensors", fileBytes: 26_692_820,
                                    evaluation: try evaluation([0.8, 1.0], [2, 4], precision: .float32))
        var int8 = PrecisionResult(precision: .int8, path: directory + "/model.int8.safetensors", fileBytes: 6_759_296,
                                   evaluation: try evaluation([0.8, 0.96], [2, 5], precision: .int8))
        float.latency = [HarnessLatency(threads: 1, runs: 3, medianMS: 30, p95MS: 33, cpuMSPerRun: 29)]
        int8.latency = [HarnessLatency(threads: 1, runs: 3, medianMS: 20, p95MS: 22, cpuMSPerRun: 19)]
        float.peakRSSBytes = 101_000_000
        XCTAssertEqual(float.dice.mean, 0.9, accuracy: 1e-12)
        XCTAssertEqual(float.dice.std, 0.1, accuracy: 1e-12)
        XCTAssertEqual(float.dice.low, 0.8, accuracy: 1e-12)  // two values: the resampled means are 0.8, 0.9 or 1.0
        XCTAssertEqual(float.dice.high, 1.0, accuracy: 1e-12)
        let row = HarnessRow(strategy: "D-all", seed: 0, runDirectory: directory, architecture: "unet-mobilenet_v2",
                             trainableGroups: "D0,D1,D2,D3,D4,H", trainableParameters: 4_405_073, totalParameters: 6_628_945,
                             epochs: 2, batchSize: 10, learningRate: 1e-4, curve: curve, float: float, int8: int8, overlays: [],
                             measurementKey: "k")
        XCTAssertEqual(row.trainSeconds, 22.5)
        let reference = try readReferenceResults(path: Fixtures.path("pytorch_reference_results.json"))
        XCTAssertEqual(referenceRows(reference, strategy: "D-all", width: 192, height: 128).map(\.seed), [0, 1])
        XCTAssertEqual(referenceRows(reference, strategy: "rand-frozen-E", width: 192, height: 128).first?.trainable, 4_405_073)
        let results = HarnessResults(
            created: "now", host: "test", command: "sonoquant bench ...", data: "d", split: "s", width: 192, height: 128, epochs: 2,
            batchSize: 10, learningRate: 1e-4, seeds: [0], strategies: ["D-all"], observer: "minmax", calibrationImages: 4, threads: [1],
            latencyMethod: "m", trainFrames: 799, testFrames: 200, testFramesSharingFetus: 62, rows: [row], reference: reference)

        // CSV fields, with commas inside double quotes kept.
        func fields(_ line: Substring) -> [String] {
            var out = [""], quoted = false
            for ch in line {
                if ch == "\"" { quoted.toggle() } else if ch == "," && !quoted { out.append("") } else { out[out.count - 1].append(ch) }
            }
            return out
        }
        let csv = harnessCSV(results).split(separator: "\n").map(fields)
        XCTAssertEqual(csv.count, 2)
        XCTAssertEqual(csv[1].count, csv[0].count, "the groups' commas are quoted, so the row has as many fields as the header")
        let fields = Dictionary(uniqueKeysWithValues: zip(csv[0], csv[1]))
        XCTAssertEqual(fields["strategy"], "D-all")
        XCTAssertEqual(fields["trainable_params"], "4405073")
        XCTAssertEqual(fields["float_dice"], "0.900000")
        XCTAssertEqual(fields["int8_hc_mm"], "3.500000")
        XCTAssertEqual(fields["int8_1t_p95_ms"], "22.000")
        XCTAssertEqual(fields["float_peak_rss_bytes"], "101000000")
        XCTAssertEqual(fields["int8_peak_rss_bytes"], "")
        XCTAssertEqual(fields["trainable_groups"], "D0,D1,D2,D3,D4,H")

        let markdown = harnessMarkdown(results)
        // The paper-shaped row: strategy, groups, params, size, epochs, lr, pixel acc, Dice, IoU, HC, PyTorch reference.
        XCTAssertTrue(markdown.contains("| D-all | D0,D1,D2,D3,D4,H | 4,405,073 | 26.69 MB | 2 | 0.0001 | 0.9900 | 0.9000 ± 0.1000 [0.8000, 1.0000] | 0.8000 | 3.00 ± 1.00 [2.00, 4.00] | 3.00 / 3.80 / 3.90 | 0.9627 ± 0.0002 (2 seeds) | 3.62 ± 0.16 |"), markdown)
        XCTAssertTrue(markdown.contains("also has a frame in the training split: 62 of 200"))
        XCTAssertTrue(markdown.contains("| D-all | 0.8800 ± 0.0800 [0.8000, 0.9600] | -0.0200 | 3.50 ± 1.50 [2.00, 5.00] | 3.50 / 4.70 / 4.85 | 6.76 MB | 30.0 / 33.0 (CPU 29.0) | 20.0 / 22.0 (CPU 19.0) | 101 / ? MB |"), markdown)
        XCTAssertTrue(diceVersusLatencySVG(results).contains("<svg"))
        XCTAssertTrue(epochCurvesSVG(results).contains("<polyline"))
    }

    // MARK: Merging harness outputs

    /// A row whose float Dice over two test frames is `dice` (both frames alike), with one frame PNG.
    private func fakeRow(_ strategy: String, seed: UInt64, dice: Double) throws -> HarnessRow {
        let json = "[" + (0..<2).map { i in
            "{\"name\":\"f\(i)\",\"dice\":\(dice),\"iou\":\(dice),\"pixelAccuracy\":0.99,\"headFound\":true,\"hcMM\":102,\"referenceHCmm\":100,\"hcErrorMM\":2}"
        }.joined(separator: ",") + "]"
        let evaluation = EvaluationReport(rows: try JSONDecoder().decode([EvaluationRow].self, from: Data(json.utf8)),
                                          precision: .float32, width: 32, height: 32)
        let precision = PrecisionResult(precision: .float32, path: "m", fileBytes: 1, evaluation: evaluation)
        return HarnessRow(strategy: strategy, seed: seed, runDirectory: "r", architecture: "unet-mobilenet_v2", trainableGroups: "H",
                          trainableParameters: 145, totalParameters: 6_628_945, epochs: 20, batchSize: 10, learningRate: 1e-4,
                          curve: [], float: precision, int8: precision, overlays: ["\(strategy)-seed\(seed)/frames/f0-int8.png"],
                          measurementKey: "k")
    }

    private func fakeResults(_ rows: [HarnessRow], strategies: [String], seeds: [UInt64], pending: [String] = [],
                             host: String, epochs: Int = 20) -> HarnessResults {
        HarnessResults(created: "2026-11-27", host: host, command: "sonoquant bench --strategies \(strategies.joined(separator: ","))",
                       data: "/x/hc18/training_set", split: "/x/hc18/splits/paper_split.csv", width: 192, height: 128, epochs: epochs,
                       batchSize: 10, learningRate: 1e-4, seeds: seeds, strategies: strategies, observer: "minmax", calibrationImages: 64,
                       threads: [1], latencyMethod: "m", trainFrames: 799, testFrames: 200, testFramesSharingFetus: 62, rows: rows,
                       pending: pending, reference: [])
    }

    func testMergeUnitesRowsCopiesFramesAndRefusesOtherExperiments() throws {
        let root = try temporaryDirectory(self, "merge")
        // Monday trained D-all seed 0 and was stopped during full-ft; Tuesday finished full-ft and re-measured D-all.
        let monday = fakeResults([try fakeRow("D-all", seed: 0, dice: 0.90)], strategies: ["D-all", "full-ft"], seeds: [0],
                                 pending: ["full-ft seed 0: 7 of 20 epochs"], host: "amd")
        let tuesday = fakeResults([try fakeRow("full-ft", seed: 0, dice: 0.95), try fakeRow("D-all", seed: 0, dice: 0.92)],
                                  strategies: ["full-ft", "D-all", "D4"], seeds: [0, 1], pending: ["D4 seed 1: not started"], host: "intel")
        for (name, results) in [("monday", monday), ("tuesday", tuesday)] {
            try writeHarnessResults(results, to: root + "/" + name)
            for row in results.rows {
                let png = root + "/\(name)/" + row.overlays[0]
                try FileManager.default.createDirectory(atPath: (png as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(name.utf8).write(to: URL(fileURLWithPath: png))
            }
        }
        let merged = try mergeHarnessOutputs(directories: [root + "/monday", root + "/tuesday"], outDirectory: root + "/full",
                                             command: "sonoquant bench --merge monday,tuesday --out full")
        XCTAssertEqual(merged.rows.map(\.strategy), ["D-all", "full-ft"])
        XCTAssertEqual(merged.rows[0].float.dice.mean, 0.92, accuracy: 1e-12, "the later output's row replaces the earlier one's")
        XCTAssertEqual(merged.pending, ["D4 seed 1: not started"], "full-ft was measured on Tuesday, so it is no longer pending")
        XCTAssertEqual(merged.strategies, ["D-all", "full-ft", "D4"])
        XCTAssertEqual(merged.seeds, [0, 1])
        XCTAssertEqual(merged.sources?.map(\.runs), [[], ["D-all seed 0", "full-ft seed 0"]])
        XCTAssertEqual(merged.host, "several (per source below)")
        XCTAssertEqual(try String(contentsOfFile: root + "/full/D-all-seed0/frames/f0-int8.png", encoding: .utf8), "tuesday")
        XCTAssertEqual(try readHarnessResults(directory: root + "/full"), merged, "results.json round-trips, sources included")
        let markdown = try String(contentsOfFile: root + "/full/REPORT.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("from 2 harness outputs"), markdown)
        XCTAssertTrue(markdown.contains("`\(root)/tuesday` (written 2026-11-27; host: intel): D-all seed 0, full-ft seed 0."), markdown)
        XCTAssertTrue(markdown.contains("![D-all-seed0/frames/f0-int8.png]"), markdown)

        // Another number of epochs is another experiment: refused, naming the file and the setting.
        try writeHarnessResults(fakeResults([], strategies: ["D4"], seeds: [0], host: "amd", epochs: 1), to: root + "/short")
        XCTAssertThrowsError(try mergeHarnessOutputs(directories: [root + "/monday", root + "/short"], outDirectory: root + "/bad",
                                                     command: "")) { error in
            XCTAssertEqual("\(error)", "\(root)/short/results.json: epochs 1 differs from 20 in \(root)/monday: not the same experiment, so not merged")
        }
        XCTAssertThrowsError(try mergeHarnessOutputs(directories: [root + "/nowhere"], outDirectory: root + "/bad", command: "")) { error in
            XCTAssertEqual("\(error)", "\(root)/nowhere/results.json: no such file (not a harness output directory)")
        }
    }

    // MARK: The harness on two fixture frames: train, skip, resume

    func testHarnessTrainsThenSkipsThenResumes() throws {
        let out = try temporaryDirectory(self, "harness")
        // One training and one test frame of the bundled set, at 32x32: each epoch takes well under a second.
        try "filename,split\n010_HC.png,train\n020_HC.png,test\n".write(toFile: out + "/split.csv", atomically: true, encoding: .utf8)
        var c = HarnessConfiguration(
            dataDirectory: Fixtures.hc18Frames, splitCSV: out + "/split.csv", width: 32, height: 32, epochs: 1,
            strategies: [try Strategy.preset("D4+H")], seeds: [3], outDirectory: out + "/bench",
            initPath: Fixtures.path("mobilenet_v2_imagenet_f16.safetensors"), batchSize: 1, learningRate: 1e-3, threads: [1],
            calibrationImages: 1, latencyWarmup: 0, latencyRounds: 1, latencyRunsPerRound: 1, overlayFrames: 1, command: "test")
        let run = out + "/bench/D4+H-seed3"
        XCTAssertEqual(try trainingState(runDirectory: run, epochs: 1), .notStarted)

        var log: [String] = []
        let first = try runHarness(c, peakRSS: { _ in 42 }, log: { log.append($0) })
        XCTAssertEqual(try trainingState(runDirectory: run, epochs: 1), .finished(epochsDone: 1))
        XCTAssertEqual(first.rows.count, 1)
        let row = first.rows[0]
        XCTAssertEqual(row.epochs, 1)
        XCTAssertEqual(row.curve.map(\.epoch), [1])
        XCTAssertEqual(row.trainableParameters, 7_121)
        XCTAssertEqual(row.float.images, 1)
        XCTAssertEqual(row.int8.precision, .int8)
        XCTAssertEqual(row.float.peakRSSBytes, 42)
        XCTAssertEqual(row.int8.latency.map(\.threads), [1])
        XCTAssertEqual(first.testFramesSharingFetus, 0)
        for file in ["results.csv", "results.json", "REPORT.md", "dice_vs_params.svg", "dice_vs_int8_latency.svg", "epoch_curves.svg",
                     "D4+H-seed3/bench.json", "D4+H-seed3/model.int8.safetensors", "D4+H-seed3/frames/020_HC-int8.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/bench/" + file), file)
        }
        // The float row is the run's own checkpoint, scored like `evaluate` would.
        XCTAssertEqual(row.float.dice.mean, try XCTUnwrap(try readEpochCurve(path: run + "/metrics.csv").last).dice, accuracy: 1e-6)

        // Same command again: nothing trained, nothing measured.
        let resumeDate = try FileManager.default.attributesOfItem(atPath: run + "/resume.safetensors")[.modificationDate] as? Date
        log = []
        let second = try runHarness(c, peakRSS: { _ in XCTFail("no measuring expected"); return nil }, log: { log.append($0) })
        XCTAssertEqual(second.rows, first.rows)
        XCTAssertTrue(log.contains { $0.contains("training done (1 epochs") }, log.joined(separator: "\n"))
        XCTAssertTrue(log.contains { $0.contains("reusing them") }, log.joined(separator: "\n"))
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: run + "/resume.safetensors")[.modificationDate] as? Date, resumeDate)

        // Measuring only, with more epochs asked for than done: nothing trained, the run listed as pending.
        c.epochs = 2
        c.train = false
        let measured = try runHarness(c, peakRSS: { _ in nil }, log: { _ in })
        XCTAssertEqual(measured.rows, [])
        XCTAssertEqual(measured.pending, ["D4+H seed 3: 1 of 2 epochs"])
        XCTAssertTrue(harnessMarkdown(measured).contains("training not finished"))
        XCTAssertEqual(try trainingState(runDirectory: run, epochs: 2), .partial(epochsDone: 1))

        // One more epoch: resumed from epoch 1, measured again.
        c.train = true
        XCTAssertEqual(try trainingState(runDirectory: run, epochs: 2), .partial(epochsDone: 1))
        log = []
        let third = try runHarness(c, peakRSS: { _ in 43 }, log: { log.append($0) })
        XCTAssertTrue(log.contains { $0.contains("resuming") && $0.contains("after epoch 1 of 2") }, log.joined(separator: "\n"))
        XCTAssertEqual(third.rows[0].epochs, 2)
        XCTAssertEqual(third.rows[0].curve.map(\.epoch), [1, 2])
        XCTAssertEqual(third.rows[0].curve[0], row.curve[0], "epoch 1 is kept, not retrained")
        XCTAssertEqual(third.rows[0].float.peakRSSBytes, 43)

        // A run directory made with other settings is refused, naming the file.
        c.learningRate = 5e-4
        c.epochs = 3
        XCTAssertThrowsError(try runHarness(c, peakRSS: { _ in nil }, log: { _ in })) { error in
            XCTAssertTrue("\(error)".contains("resume.safetensors"), "\(error)")
        }
    }
}
