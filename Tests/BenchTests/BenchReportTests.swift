import Bench
import Foundation
import HC18
#if canImport(FoundationXML)
import FoundationXML
#endif
import QuantEngine
import XCTest
import TestSupport

final class BenchReportTests: XCTestCase {
    /// The trained D-all float model (PyTorch reference weights), loaded once.
    static let dAll: SegmentationModel = try! loadSegmentationModel(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))

    func testModelSpecParsing() throws {
        XCTAssertEqual(try BenchModelSpec(parsing: "D-all int8=a/b=c.safetensors"), BenchModelSpec(name: "D-all int8", path: "a/b=c.safetensors"))
        for bad in ["model.safetensors", "=x", "name="] {
            assertSonoQuantError(try BenchModelSpec(parsing: bad), contains: "NAME=PATH")
        }
    }

    func testTrainableParametersFromMetadataOrName() {
        XCTAssertEqual(trainableFacts(metadata: try ModelMetadata(entries: ["sonoquant.strategy": "D-all", "sonoquant.trainable": "D0,D1,D2,D3,D4,H"], source: "test"), name: "x").parameters, 4_405_073)
        XCTAssertEqual(trainableFacts(metadata: try ModelMetadata(entries: ["sonoquant.trainable": "E,D3,H"], source: "test"), name: "custom").groups, "E,D3,H")
        let fromName = trainableFacts(metadata: ModelMetadata(), name: "D-all int8")
        XCTAssertEqual(fromName.strategy, "D-all")
        XCTAssertEqual(fromName.parameters, 4_405_073)
        XCTAssertEqual(trainableFacts(metadata: ModelMetadata(), name: "D-all-frozenbn float").strategy, "D-all-frozenbn")
        XCTAssertEqual(trainableFacts(metadata: ModelMetadata(), name: "full-ft").parameters, 6_628_945)
        XCTAssertEqual(trainableFacts(metadata: try ModelMetadata(entries: ["sonoquant.strategy": "D234"], source: "test"), name: "x").parameters, 164_032)
        XCTAssertEqual(trainableFacts(metadata: try ModelMetadata(entries: ["sonoquant.strategy": "unknown"], source: "test"), name: "E int8").parameters, 2_223_872)
        // A unet-baseline file is counted on its own architecture (31,037,633 parameters), from its metadata
        // or its preset.
        XCTAssertEqual(trainableFacts(metadata: try ModelMetadata(entries: ["sonoquant.architecture": "unet-baseline", "sonoquant.strategy": "unet-baseline",
                                                 "sonoquant.trainable": "E,D0,D1,D2,D3,H"], source: "test"), name: "x").parameters, 31_037_633)
        XCTAssertEqual(trainableFacts(metadata: ModelMetadata(), name: "unet-baseline int8").parameters, 31_037_633)
        let unknown = trainableFacts(metadata: ModelMetadata(), name: "my model")
        XCTAssertNil(unknown.strategy)
        XCTAssertNil(unknown.parameters)
    }

    /// The whole command path on the bundled fixture split (8 test frames): numbers, files, formats.
    func testBenchOnFixtureSplit() throws {
        let model = Fixtures.path("pytorch_D-all_192x128.safetensors")
        let configuration = BenchConfiguration(
            models: [BenchModelSpec(name: "D-all float", path: model)], dataDirectory: Fixtures.hc18Frames,
            splitCSV: Fixtures.path("hc18/split.csv"), size: InputSize(width: 192, height: 128), threads: [1, 2],
            rounds: 1, runsPerRound: 1, command: "test")
        var lines: [String] = []
        let report = try runBench(configuration, peakRSS: { _, _ in 123_000_000 }, progress: { lines.append($0) })
        XCTAssertEqual(report.rows.count, 1)
        let row = report.rows[0]
        XCTAssertEqual(row.images, 8)
        XCTAssertEqual(row.precision, .float32)
        XCTAssertEqual(row.strategy, "D-all")
        XCTAssertEqual(row.trainableParameters, 4_405_073)
        XCTAssertEqual(row.fileBytes, 13_362_242)
        // Exactly HC18's evaluation of the same model and frames (measured once: Dice 0.873 on these 8).
        let dataset = try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: Fixtures.path("hc18/split.csv"))
        let expected = try evaluate(model: Self.dAll, dataset: dataset, samples: dataset.test, width: 192, height: 128, threads: 2)
        XCTAssertEqual(row.dice, expected.meanDice)
        XCTAssertEqual(row.hcMAEmm, expected.meanHCErrorMM)
        XCTAssertEqual(row.hcMedianMM, expected.medianHCErrorMM)
        XCTAssertEqual(row.hcP95MM, expected.p95HCErrorMM)
        XCTAssertEqual(row.size, "192x128")
        XCTAssertEqual(row.iou, expected.meanIoU)
        XCTAssertEqual(row.dice, 0.873, accuracy: 0.01)
        XCTAssertEqual(row.latency.map(\.threads), [1, 2])
        XCTAssertEqual(row.latency.map(\.runs), [1, 1])
        XCTAssertEqual(row.peakRSSBytes, 123_000_000)
        XCTAssertFalse(lines.isEmpty)

        let dir = try temporaryDirectory(self, "bench")
        try writeBenchReport(report, to: dir)
        let json = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/report.json"))
        XCTAssertEqual(try JSONDecoder().decode(BenchReport.self, from: json), report)
        let markdown = try String(contentsOfFile: dir + "/REPORT.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("| D-all float | 192x128 | float32 | D-all | 4,405,073 | 13.36 MB | "), markdown)
        XCTAssertTrue(markdown.contains(String(format: "%.4f ± %.3f", row.dice, row.diceStd)))
        XCTAssertTrue(markdown.contains("| 123.00 MB |"))
        try assertWellFormedSVG(String(contentsOfFile: dir + "/plot.svg", encoding: .utf8), points: 1)
    }

    /// Without --size each model runs at the size its file records: an int8 model calibrated at 192x128 and
    /// a float checkpoint trained at 224x160 in one report, each scored exactly as `evaluate` scores it at its size.
    func testModelsOfDifferentSizesRunAtTheirOwn() throws {
        let dir = try temporaryDirectory(self, "bench-sizes")
        let larger = dir + "/larger.safetensors"
        var metadata = ModelMetadata()
        metadata.size = InputSize(width: 224, height: 160)
        try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet()).save(to: larger, metadata: metadata)
        let int8 = Fixtures.packageRoot + "/models/D-all.int8.safetensors"
        let configuration = BenchConfiguration(
            models: [BenchModelSpec(name: "int8", path: int8), BenchModelSpec(name: "float 224x160", path: larger)],
            dataDirectory: Fixtures.hc18Frames, splitCSV: Fixtures.path("hc18/split.csv"), size: nil, threads: [1],
            rounds: 1, runsPerRound: 1, command: "test")
        let report = try runBench(configuration, peakRSS: { _, _ in nil }, progress: { _ in })
        XCTAssertEqual(report.rows.map(\.size), ["192x128", "224x160"])
        XCTAssertNil(report.width)
        let dataset = try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: Fixtures.path("hc18/split.csv"))
        let expected = try evaluate(model: loadSegmentationModel(path: larger), dataset: dataset, samples: dataset.test, width: 224, height: 160, threads: 1)
        XCTAssertEqual(report.rows[1].dice, expected.meanDice)
        XCTAssertEqual(report.rows[1].hcMAEmm, expected.meanHCErrorMM)
        XCTAssertTrue(benchMarkdown(report).contains("at each model's own size"))
        XCTAssertTrue(benchMarkdown(report).contains("| float 224x160 | 224x160 | float32 |"))
        // --size runs every model at one size, and an int8 model only at its calibration size.
        var oneSize = configuration
        oneSize.size = InputSize(width: 224, height: 160)
        assertSonoQuantError(try runBench(oneSize, peakRSS: { _, _ in nil }, progress: { _ in }), subject: int8,
                             contains: "calibrated at 192x128, asked to run at 224x160")
    }

    func testSVGMarksFloatAndInt8Differently() throws {
        func row(_ name: String, _ precision: Precision, dice: Double, ms: Double, bytes: Int) -> BenchRow {
            BenchRow(name: name, path: name, precision: precision, strategy: nil, trainableGroups: nil, trainableParameters: nil,
                     fileBytes: bytes, images: 1, dice: dice, diceStd: 0, iou: 0, pixelAccuracy: 0, hcMAEmm: 0, noHeadFound: 0,
                     latency: [BenchLatency(threads: 1, runs: 1, medianMS: ms, p10MS: ms, p90MS: ms, cpuMSPerRun: ms)], peakRSSBytes: nil)
        }
        let report = BenchReport(created: "now", host: "test", command: "c", data: "d", split: "s", width: 192, height: 128,
                                 threads: [1], latencyMethod: "m",
                                 rows: [row("a <float>", .float32, dice: 0.96, ms: 40, bytes: 26_000_000),
                                        row("a & int8", .int8, dice: 0.958, ms: 15, bytes: 6_800_000)])
        let svg = benchSVG(report)
        try assertWellFormedSVG(svg, points: 2)
        XCTAssertEqual(svg.components(separatedBy: "fill=\"#1f77b4\"").count - 1, 2)  // float in both panels
        // Both are on the Pareto front of the latency panel (the int8 model is faster, the float one more accurate).
        XCTAssertEqual(svg.components(separatedBy: "stroke=\"#2ca02c\" stroke-width=\"1.5\"/>").count - 1, 3)  // 2 rings + the line
        XCTAssertEqual(svg.components(separatedBy: "<rect x=").count - 1, 2 + 2)  // two frames + int8 in both panels
        XCTAssertTrue(svg.contains("a &lt;float&gt;") && svg.contains("a &amp; int8"))
        XCTAssertTrue(benchMarkdown(report).contains("| a & int8 | 192x128 | int8 | ? | ? | 6.80 MB | 0.9580 ± 0.000 |"))
    }

    private func assertWellFormedSVG(_ svg: String, points: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let parser = XMLParser(data: Data(svg.utf8))
        XCTAssertTrue(parser.parse(), "plot.svg is not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""), file: file, line: line)
        XCTAssertEqual(svg.components(separatedBy: "font-size=\"10\">").count - 1 >= 2 * points, true, file: file, line: line)
    }
}
